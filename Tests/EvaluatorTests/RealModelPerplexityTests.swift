import Foundation
import TestSupport
import XCTest

/// SmolLM2-135M-Instruct on the first 10 chunks of WikiText-2 (ctx 512), against the external
/// reference figures in corpus/README.md: PyTorch (transformers) 26.6157 and llama.cpp
/// 26.6161 on the F32 weights. Ours must agree within 0.05%, from the F32 file and from the Q4_1
/// file (dequantized weights, f32 activations).
final class RealModelPerplexityTests: XCTestCase {
    static let pytorch = 26.6157
    static let llamaCppF32 = 26.6161

    func perplexity(_ model: String, _ extra: [String] = []) throws -> Double {
        let r = try TestSupport.smelt(["perplexity", model, "--text", TestSupport.wikiText,
                                       "--ctx", "512", "--chunks", "10", "--json"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["tokens_scored"] as? Int, 10 * 255)
        return json["ppl"] as! Double
    }

    func testAgreesWithPyTorchAndLlamaCppFromF32AndQ4_1() throws {
        try TestSupport.requireModel(TestSupport.smolLM2)
        let dir = TestSupport.tempDir("ppl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f32 = "\(dir)/smollm2-f32.gguf"
        let c = try TestSupport.smelt(["convert", TestSupport.smolLM2, f32, "--dtype", "f32"])
        XCTAssertEqual(c.status, 0, c.stderr)
        for (label, model, extra) in [("F32", f32, [String]()), ("Q4_1", TestSupport.smolLM2, ["--cache-weights"])] {
            let ppl = try perplexity(model, extra)
            print("SmolLM2 \(label): PPL \(ppl) (PyTorch \(Self.pytorch), llama.cpp F32 \(Self.llamaCppF32))")
            XCTAssertEqual(ppl, Self.pytorch, accuracy: Self.pytorch * 0.0005, label)
            XCTAssertEqual(ppl, Self.llamaCppF32, accuracy: Self.llamaCppF32 * 0.0005, label)
        }
    }
}
