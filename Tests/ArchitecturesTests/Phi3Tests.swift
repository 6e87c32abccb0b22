import Architectures
import Formats
import TensorGraph
import TestSupport
import XCTest

/// Phi-3 (golden/tiny/phi3, made by golden/make_tiny_models.py): fused qkv_proj / gate_up_proj kept
/// as attn_qkv / ffn_up, LongRoPE factors as rope_factors_long/short, against llama.cpp's converter;
/// GGUF → Hugging Face → GGUF keeps every byte and takes the factors back into rope_scaling.
final class Phi3Tests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("phi3") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    let folder = TestSupport.path("golden/tiny/phi3")

    func testHFToGGUFMatchesLlamaCpp() throws {
        let gguf = "\(dir)/phi3.gguf"
        var r = try TestSupport.smelt(["convert", folder, gguf])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", gguf, "golden/llamacpp/phi3.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        // Its converter's own vocabulary rules (tokenizer.json's added tokens: control or
        // user-defined, score −1000).
        r = try TestSupport.python(["golden/llamacpp_tokenizer_keys.py", "check", gguf, "golden/llamacpp/tokenizer/phi3.keys.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let g = try GGUFReader.read(gguf)
        let hf = try HFFolder.read(folder)
        // Fused as the folder has them: [q; k; v] rows and [gate; up] rows, unchanged.
        XCTAssertEqual(try g["blk.0.attn_qkv.weight"]?.storage.readAll(), try hf["model.layers.0.self_attn.qkv_proj.weight"]?.storage.readAll())
        XCTAssertEqual(try g["blk.1.ffn_up.weight"]?.storage.readAll(), try hf["model.layers.1.mlp.gate_up_proj.weight"]?.storage.readAll())
        XCTAssertEqual(g["rope_factors_long.weight"]?.shape, [4])
    }

    /// Partial rotary (rope.dimension_count 4 of 8) and a sliding window: the converter's keys.
    func testPartialRotaryAndSlidingWindowMatchLlamaCpp() throws {
        let gguf = "\(dir)/pp.gguf"
        var r = try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/phi3-partial"), gguf])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", gguf, "golden/llamacpp/phi3-partial.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let g = try GGUFReader.read(gguf)
        XCTAssertEqual(g.metadata["phi3.rope.dimension_count"], .uint32(4))
        XCTAssertEqual(g.metadata["phi3.attention.sliding_window"], .uint32(8))
    }

    func testGGUFToHFAndBack() throws {
        let gguf = "\(dir)/phi3.gguf", back = "\(dir)/back", again = "\(dir)/again.gguf"
        XCTAssertEqual(try TestSupport.smelt(["convert", folder, gguf]).status, 0)
        var r = try TestSupport.smelt(["convert", gguf, back])
        XCTAssertEqual(r.status, 0, r.stderr)
        let original = try HFFolder.read(folder), returned = try HFFolder.read(back)
        XCTAssertEqual(Set(returned.tensors.map(\.name)), Set(original.tensors.map(\.name)))
        for t in original.tensors { XCTAssertEqual(try returned[t.name]?.storage.readAll(), try t.storage.readAll(), t.name) }
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(back)/config.json"))) as! [String: Any]
        let src = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/config.json"))) as! [String: Any]
        XCTAssertEqual(cfg["original_max_position_embeddings"] as? Int, src["original_max_position_embeddings"] as? Int)
        let scaling = try XCTUnwrap(cfg["rope_scaling"] as? [String: Any])
        let srcRope = src["rope_parameters"] as! [String: Any]
        XCTAssertEqual(scaling["rope_type"] as? String, "longrope")
        for key in ["long_factor", "short_factor"] {
            // Through GGUF's f32 tensors: the same values to float32 precision.
            XCTAssertEqual((scaling[key] as? [Double])?.map(Float.init), (srcRope[key] as? [Double])?.map(Float.init), key)
        }
        XCTAssertEqual(cfg["pad_token_id"] as? Int, src["pad_token_id"] as? Int)
        r = try TestSupport.smelt(["convert", back, again])
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try GGUFReader.read(gguf), b = try GGUFReader.read(again)
        XCTAssertEqual(Set(a.tensors.map(\.name)), Set(b.tensors.map(\.name)))
        for t in a.tensors { XCTAssertEqual(try b[t.name]?.storage.readAll(), try t.storage.readAll(), t.name) }
        for (k, v) in a.metadata.entries where k.hasPrefix("phi3.") { XCTAssertEqual(b.metadata[k], v, k) }
    }

    func testInspectShowsLongRoPE() throws {
        let r = try TestSupport.smelt(["inspect", "--json", folder])
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let d = try XCTUnwrap(report["architecture_config"] as? [String: Any], "\(report)")
        XCTAssertEqual(d["fused_qkv"] as? Bool, true)
        XCTAssertEqual(d["fused_gate_up"] as? Bool, true)
        let s = try XCTUnwrap(d["rope_scaling"] as? [String: Any])
        XCTAssertEqual(s["type"] as? String, "longrope")
        XCTAssertEqual(s["long_factor_count"] as? Int, 4)
        XCTAssertEqual(d["rope_long_after"] as? Int, 16)
    }
}
