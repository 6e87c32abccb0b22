import Calibration
import Evaluator
import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

final class GPTQModelTests: XCTestCase {
    static let tinyLlama = TestSupport.path("golden/tiny/llama")

    /// The partial forward passes GPTQ relies on give the same logits as a whole pass.
    func testResidualStreamSpans() throws {
        for arch in ["llama", "gpt2", "qwen2"] {
            let (model, _) = try ModelLoader.load(TestSupport.path("golden/tiny/\(arch)"), threads: 2)
            let tokens: [Int32] = (0..<24).map { Int32(($0 * 37 + 5) % 300) }
            let full = try model.logits(tokens: tokens, outputRows: 0..<tokens.count)
            let s0 = try model.residualStream(tokens: tokens, layers: 0..<0, from: nil)
            let s1 = try model.residualStream(tokens: tokens, layers: 0..<1, from: s0)
            let s2 = try model.residualStream(tokens: tokens, layers: 1..<2, from: s1)
            XCTAssertEqual(try model.residualStream(tokens: tokens, layers: 0..<2, from: nil), s2, arch)
            XCTAssertEqual(try model.logits(tokens: tokens, outputRows: 0..<tokens.count, fromLayer: 2, input: s2), full, arch)
            XCTAssertEqual(try model.logits(tokens: tokens, outputRows: 0..<tokens.count, fromLayer: 1, input: s1), full, arch)
            XCTAssertEqual(try model.logits(tokens: tokens, outputRows: 0..<tokens.count), full, "\(arch): state left behind")
            XCTAssertThrowsError(try model.residualStream(tokens: tokens, layers: 1..<2, from: nil))
            XCTAssertThrowsError(try model.residualStream(tokens: tokens, layers: 0..<1, from: [1, 2]))
        }
    }

    /// GPTQ through the CLI on the tiny Llama: a valid Q4_0 GGUF whose logits on the calibration
    /// text stay closer to the f32 model's than round-to-nearest's do.
    func testGPTQModelIsCloserThanRTN() throws {
        let dir = TestSupport.tempDir("gptq-cli")
        let text = "\(dir)/text.txt"
        let content = String(repeating: "The quick brown fox jumps over the lazy dog. It's 12345 café 東京! ", count: 40)
        try content.write(toFile: text, atomically: true, encoding: .utf8)
        let rtn = "\(dir)/rtn.gguf", gptq = "\(dir)/gptq.gguf"
        let a = try TestSupport.smelt(["quantize", Self.tinyLlama, rtn, "--type", "q4_0"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try TestSupport.smelt([
            "quantize", Self.tinyLlama, gptq, "--type", "q4_0", "--method", "gptq", "--calibration-text", text, "--ctx", "32",
            "--chunks", "16", "--threads", "2", "--json",
        ])
        XCTAssertEqual(b.status, 0, b.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((summary["gptq_relative_error"] as? [String: Any])?.count, 15)
        let g = try GGUFReader.read(gptq)
        XCTAssertEqual(g.metadata["general.file_type"], .uint32(2))
        XCTAssertEqual(g.metadata["smelt.quantize.method"], .string("gptq"))
        for t in g.tensors { XCTAssertEqual(t.dtype, t.shape.count == 2 ? .q4_0 : .f32, t.name) }

        let (base, graph) = try ModelLoader.load(Self.tinyLlama, threads: 2)
        let tokens = try BPEText.tokens(content, graph: graph)
        XCTAssertGreaterThanOrEqual(tokens.count, 16 * 32)
        let chunks = try Perplexity.chunks(of: tokens, ctx: 32, limit: 16, bos: nil)
        func error(_ path: String) throws -> Double {
            let (m, _) = try ModelLoader.load(path, threads: 2)
            var s = 0.0
            for c in chunks {
                let x = try base.logits(tokens: c, outputRows: 0..<c.count), y = try m.logits(tokens: c, outputRows: 0..<c.count)
                for i in 0..<x.count { s += Double(x[i] - y[i]) * Double(x[i] - y[i]) }
            }
            return s
        }
        let eRTN = try error(rtn), eGPTQ = try error(gptq)
        print("tiny llama Q4_0 logit squared error on the calibration text: RTN \(eRTN), GPTQ \(eGPTQ)")
        XCTAssertLessThan(eGPTQ, eRTN * 0.8)
    }

    /// A one-layer random Llama whose rows divide into 256-value super-blocks (hidden 256,
    /// feed-forward 512), as an HF folder with the tiny Llama's tokenizer.
    static func superBlockLlama(in dir: String) throws -> String {
        let folder = "\(dir)/llama256"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(tinyLlama)/config.json"))) as! [String: Any]
        config["hidden_size"] = 256
        config["intermediate_size"] = 512
        config["head_dim"] = 64
        config["num_hidden_layers"] = 1
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: "\(folder)/config.json"))
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: "\(tinyLlama)/\(f)", toPath: "\(folder)/\(f)")
        }
        var rng = SeededRandom(29)
        var tensors: [Tensor] = []
        func add(_ name: String, _ shape: [Int], norm: Bool = false) throws {
            let n = shape.reduce(1, *)
            tensors.append(try Fixtures.f32Tensor(name, shape: shape, (0..<n).map { _ in norm ? 1 : rng.normal() * 0.05 }))
        }
        try add("model.embed_tokens.weight", [320, 256])
        try add("lm_head.weight", [320, 256])
        try add("model.norm.weight", [256], norm: true)
        let p = "model.layers.0."
        try add(p + "input_layernorm.weight", [256], norm: true)
        try add(p + "post_attention_layernorm.weight", [256], norm: true)
        try add(p + "self_attn.q_proj.weight", [256, 256])
        try add(p + "self_attn.k_proj.weight", [128, 256])
        try add(p + "self_attn.v_proj.weight", [128, 256])
        try add(p + "self_attn.o_proj.weight", [256, 256])
        try add(p + "mlp.gate_proj.weight", [512, 256])
        try add(p + "mlp.up_proj.weight", [512, 256])
        try add(p + "mlp.down_proj.weight", [256, 512])
        try SafetensorsWriter.write(try TensorGraph(tensors: tensors), to: "\(folder)/model.safetensors")
        return folder
    }

    /// `--method gptq --type Q4_K_M` end to end on a model whose rows take K-quant super-blocks:
    /// the file holds Q4_K and Q6_K tensors GPTQ produced, and its logits on the calibration text
    /// stay closer to the f32 model's than llama-quantize's round-to-nearest Q4_K_M does.
    func testGPTQQ4_K_MOnSuperBlocks() throws {
        let dir = TestSupport.tempDir("gptq-k")
        let model = try Self.superBlockLlama(in: dir)
        let text = "\(dir)/text.txt"
        let content = String(repeating: "The quick brown fox jumps over the lazy dog. It's 12345 café 東京! ", count: 40)
        try content.write(toFile: text, atomically: true, encoding: .utf8)
        let rtn = "\(dir)/rtn.gguf", gptq = "\(dir)/gptq.gguf"
        let a = try TestSupport.smelt(["quantize", model, rtn, "--type", "Q4_K_M"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try TestSupport.smelt([
            "quantize", model, gptq, "--type", "Q4_K_M", "--method", "gptq", "--calibration-text", text, "--ctx", "32",
            "--chunks", "16", "--threads", "2", "--json",
        ])
        XCTAssertEqual(b.status, 0, b.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        let errors = summary["gptq_relative_error"] as? [String: Any] ?? [:]
        // The seven linear weights and the output head.
        XCTAssertEqual(errors.count, 8, "\(errors.keys.sorted())")
        let g = try GGUFReader.read(gptq)
        let types = Dictionary(uniqueKeysWithValues: g.tensors.map { ($0.name, $0.dtype) })
        XCTAssertEqual(types["blk.0.attn_q.weight"], .q4_K)
        XCTAssertEqual(types["blk.0.ffn_down.weight"], .q6_K)
        XCTAssertEqual(types["output.weight"], .q6_K)
        XCTAssertEqual(g.metadata["smelt.quantize.method"], .string("gptq"))
        let r = try GGUFReader.read(rtn)
        XCTAssertEqual(r.tensors.map(\.dtype), g.tensors.map(\.dtype))

        let (base, graph) = try ModelLoader.load(model, threads: 2)
        let tokens = try BPEText.tokens(content, graph: graph)
        let chunks = try Perplexity.chunks(of: tokens, ctx: 32, limit: 16, bos: nil)
        func error(_ path: String) throws -> Double {
            let (m, _) = try ModelLoader.load(path, threads: 2)
            var s = 0.0
            for c in chunks {
                let x = try base.logits(tokens: c, outputRows: 0..<c.count), y = try m.logits(tokens: c, outputRows: 0..<c.count)
                for i in 0..<x.count { s += Double(x[i] - y[i]) * Double(x[i] - y[i]) }
            }
            return s
        }
        let eRTN = try error(rtn), eGPTQ = try error(gptq)
        print("random 256-wide llama Q4_K_M logit squared error on the calibration text: RTN \(eRTN), GPTQ \(eGPTQ)")
        XCTAssertLessThan(eGPTQ, eRTN)
    }
}
