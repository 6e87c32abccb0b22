@testable import Evaluator
import Foundation
import TestSupport
import XCTest

/// Logits against PyTorch (transformers) for the tiny random-weight models in golden/tiny.
final class LogitsTests: XCTestCase {
    struct Reference {
        let ids: [Int32]
        let rows: Int
        let vocab: Int
        let logits: [Float]
    }

    func reference(_ arch: String) throws -> Reference {
        let dir = TestSupport.path("golden/tiny/\(arch)")
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/logits.json"))) as! [String: Any]
        let ids = (meta["ids"] as! [Int]).map(Int32.init)
        let shape = meta["shape"] as! [Int]
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/logits.f32"))
        let logits = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(logits.count, shape[0] * shape[1])
        return Reference(ids: ids, rows: shape[0], vocab: shape[1], logits: logits)
    }

    /// Largest difference relative to the largest reference logit.
    func relativeError(_ ours: [Float], _ ref: [Float]) -> Float {
        let scale = ref.map(abs).max() ?? 1
        return zip(ours, ref).map { abs($0 - $1) }.max()! / scale
    }

    func check(_ arch: String, path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let ref = try reference(arch)
        let (model, _) = try ModelLoader.load(path, threads: 2)
        let logits = try model.logits(tokens: ref.ids, outputRows: 0..<ref.ids.count)
        XCTAssertEqual(logits.count, ref.logits.count, file: file, line: line)
        let err = relativeError(logits, ref.logits)
        print("logits \(arch) from \(path): max error relative to the largest logit \(err)")
        XCTAssertLessThan(err, 1e-4, "\(arch) from \(path): relative error \(err)", file: file, line: line)
        // A subrange of output rows gives the same rows.
        let tail = try model.logits(tokens: ref.ids, outputRows: 10..<ref.ids.count)
        let tailErr = relativeError(tail, Array(logits[(10 * ref.vocab)...]))
        XCTAssertLessThan(tailErr, 1e-6, "output rows 10… differ from the full run by \(tailErr)", file: file, line: line)
    }

    func ggufOf(_ arch: String) throws -> String {
        let dir = TestSupport.tempDir("logits")
        let out = "\(dir)/\(arch).gguf"
        let r = try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/\(arch)"), out])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    func testGPT2FromFolder() throws { try check("gpt2", path: TestSupport.path("golden/tiny/gpt2")) }
    func testLlamaFromFolder() throws { try check("llama", path: TestSupport.path("golden/tiny/llama")) }
    func testQwen2FromFolder() throws { try check("qwen2", path: TestSupport.path("golden/tiny/qwen2")) }
    func testGPT2FromGGUF() throws { try check("gpt2", path: try ggufOf("gpt2")) }
    func testLlamaFromGGUF() throws { try check("llama", path: try ggufOf("llama")) }
    func testQwen2FromGGUF() throws { try check("qwen2", path: try ggufOf("qwen2")) }
    // Qwen3: per-head Q/K RMSNorm, head_dim 16 where hidden ÷ heads is 8.
    func testQwen3FromFolder() throws { try check("qwen3", path: TestSupport.path("golden/tiny/qwen3")) }
    func testQwen3FromGGUF() throws { try check("qwen3", path: try ggufOf("qwen3")) }
    // Llama 3.1 rope scaling (rope_freqs.weight in GGUF) and linear scaling, head_dim 16.
    func testLlama3FromFolder() throws { try check("llama3", path: TestSupport.path("golden/tiny/llama3")) }
    func testLlama3FromGGUF() throws { try check("llama3", path: try ggufOf("llama3")) }
    func testLinearRopeFromFolder() throws { try check("llama-linear", path: TestSupport.path("golden/tiny/llama-linear")) }
    func testLinearRopeFromGGUF() throws { try check("llama-linear", path: try ggufOf("llama-linear")) }
    func testYarnRopeFromFolder() throws { try check("llama-yarn", path: TestSupport.path("golden/tiny/llama-yarn")) }
    func testYarnRopeFromGGUF() throws { try check("llama-yarn", path: try ggufOf("llama-yarn")) }
    // Gemma 3: sandwich norms, (1 + w) norms stored + 1 in GGUF, √hidden embedding scale, GELU
    // gate, sliding window 8 on 5 of 6 layers with their own rope base, linear scaling on the
    // global one, soft-capped logits.
    func testGemma3FromFolder() throws { try check("gemma3", path: TestSupport.path("golden/tiny/gemma3")) }
    func testGemma3FromGGUF() throws { try check("gemma3", path: try ggufOf("gemma3")) }
}
