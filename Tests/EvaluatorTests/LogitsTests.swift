@testable import Evaluator
import Formats
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
        let dir = TestSupport.path(arch.contains("/") ? "golden/\(arch)" : "golden/tiny/\(arch)")
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
        let out = "\(dir)/\(arch.replacingOccurrences(of: "/", with: "-")).gguf"
        let r = try TestSupport.smelt(["convert", TestSupport.path(arch.contains("/") ? "golden/\(arch)" : "golden/tiny/\(arch)"), out])
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
    // Qwen3-MoE: the same MoE block as gpt-oss with softmax routing renormalized over the top 2
    // of 4 experts, SwiGLU experts without biases, per-expert checkpoint tensors.
    func testQwen3MoeFromFolder() throws { try check("qwen3moe", path: TestSupport.path("golden/tiny/qwen3moe")) }
    func testQwen3MoeFromGGUF() throws { try check("qwen3moe", path: try ggufOf("qwen3moe")) }
    /// A configuration whose expert count the tensors do not have is refused, naming the tensor.
    func testExpertCountMismatchIsRefused() throws {
        var graph = try GGUFReader.read(try ggufOf("qwen3moe"))
        graph.metadata["qwen3moe.expert_count"] = .uint32(5)
        let model = try LanguageModel(graph: graph, threads: 2)
        XCTAssertThrowsError(try model.logits(tokens: [1, 2, 3], outputRows: 0..<3)) { e in
            XCTAssertTrue("\(e)".contains("blk.0.ffn_gate_inp.weight") && "\(e)".contains("[4, 32]"), "\(e)")
        }
    }

    // gpt-oss (golden/gptoss, made by golden/make_gptoss_tiny.py): attention sinks, Q/K/V/O
    // biases, sliding window 8 on layers 0 and 2 of a 30-token text, YaRN factor 4 with
    // truncate false, 4 experts top-2 with router and expert biases, the clamped SwiGLU hit by
    // 15% of gate values; the MXFP4 checkpoint form and the bf16 form of the same weights.
    func testGptOssMXFP4FromFolder() throws { try check("gptoss/mxfp4", path: TestSupport.path("golden/gptoss/mxfp4")) }
    func testGptOssBF16FromFolder() throws { try check("gptoss/bf16", path: TestSupport.path("golden/gptoss/bf16")) }
    func testGptOssMXFP4FromGGUF() throws { try check("gptoss/mxfp4", path: try ggufOf("gptoss/mxfp4")) }
    func testGptOssBF16FromGGUF() throws { try check("gptoss/bf16", path: try ggufOf("gptoss/bf16")) }
    /// Large matrices stored in another type than f32 are decoded and multiplied a block of rows
    /// at a time: forced here on the bf16 gpt-oss (64-row tiles), the logits stay the same.
    func testRowTilesGiveTheSameLogits() throws {
        let ref = try reference("gptoss/bf16")
        let (model, _) = try ModelLoader.load(TestSupport.path("golden/gptoss/bf16"), threads: 2)
        let whole = try model.logits(tokens: ref.ids, outputRows: 0..<ref.ids.count)
        let saved = Weights.tileBytes
        Weights.tileBytes = 1024
        defer { Weights.tileBytes = saved }
        let tiled = try model.logits(tokens: ref.ids, outputRows: 0..<ref.ids.count)
        // Narrower products may take other sgemm kernels (another summation order): not bit for bit.
        XCTAssertLessThan(relativeError(tiled, whole), 1e-5)
        XCTAssertLessThan(relativeError(tiled, ref.logits), 1e-4)
    }

    /// llama.cpp's YaRN (correction range always rounded) is a different model from the
    /// configuration's (truncate false): with the option, the logits are transformers' for
    /// `truncate: true` (golden/gptoss/yarn-rounded, golden/make_gptoss_logits.py), which moves
    /// them by 0.94 of the largest logit on this tiny model.
    func testGptOssYarnRoundedAsLlamaCpp() throws {
        let ref = try reference("gptoss/yarn-rounded")
        for path in [TestSupport.path("golden/gptoss/mxfp4"), try ggufOf("gptoss/mxfp4")] {
            let (model, _) = try ModelLoader.load(path, threads: 2)
            model.yarnAlwaysRound = true
            let err = relativeError(try model.logits(tokens: ref.ids, outputRows: 0..<ref.ids.count), ref.logits)
            print("logits gptoss/mxfp4 from \(path), YaRN range rounded: max error relative to the largest logit \(err)")
            XCTAssertLessThan(err, 1e-4, path)
        }
    }

    // Phi-3: fused attn_qkv and ffn_up taken as views; LongRoPE with the long factors (48 tokens
    // past an original context of 16) and an attention factor of √(1 + ln 4 / ln 16).
    func testPhi3FromFolder() throws { try check("phi3", path: TestSupport.path("golden/tiny/phi3")) }
    func testPhi3FromGGUF() throws { try check("phi3", path: try ggufOf("phi3")) }
    // Phi-3 with rotary over half of each head (Phi-4-mini's partial_rotary_factor) and a sliding
    // window of 8 over every layer.
    func testPhi3PartialRotaryFromFolder() throws { try check("phi3-partial", path: TestSupport.path("golden/tiny/phi3-partial")) }
    func testPhi3PartialRotaryFromGGUF() throws { try check("phi3-partial", path: try ggufOf("phi3-partial")) }

    /// The Phi-3 reference takes the long factors: with the short ones in their place the logits
    /// move far past the tolerance.
    func testPhi3UsesTheLongFactors() throws {
        let path = try ggufOf("phi3")
        var g = try GGUFReader.read(path)
        var short = try XCTUnwrap(g["rope_factors_short.weight"])
        short.name = "rope_factors_long.weight"
        try g.mapTensors { $0.name == short.name ? short : $0 }
        let swapped = path.replacingOccurrences(of: ".gguf", with: "-short.gguf")
        try GGUFWriter.write(g, to: swapped)
        let ref = try reference("phi3")
        let (model, _) = try ModelLoader.load(swapped, threads: 2)
        let err = relativeError(try model.logits(tokens: ref.ids, outputRows: 0..<ref.ids.count), ref.logits)
        XCTAssertGreaterThan(err, 1e-3, "short factors in place of the long ones changed the logits by only \(err)")
    }
}
