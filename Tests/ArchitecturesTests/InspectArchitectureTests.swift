import Foundation
import TestSupport
import XCTest

/// `smelt inspect` shows each architecture's own hyperparameters (from the unit's configuration),
/// checked against the tiny models' config.json values, from the folder and from our GGUF of it.
final class InspectArchitectureTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("inspect-arch") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func tiny(_ m: String) -> String { TestSupport.path("golden/tiny/\(m)") }

    func config(_ m: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(tiny(m))/config.json"))) as! [String: Any]
    }

    /// `inspect --json`'s architecture_config for `path`.
    func details(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = try TestSupport.smelt(["inspect", "--json", path])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        return try XCTUnwrap(report["architecture_config"] as? [String: Any], "\(report["architecture_error"] ?? "no details")", file: file, line: line)
    }

    func gguf(_ m: String) throws -> String {
        let out = "\(dir)/\(m).gguf"
        let r = try TestSupport.smelt(["convert", tiny(m), out])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    func testGemma3SlidingWindowPatternRopeAndNorms() throws {
        let c = try config("gemma3")
        let rope = c["rope_parameters"] as! [String: Any]
        let full = rope["full_attention"] as! [String: Any], local = rope["sliding_attention"] as! [String: Any]
        let types = c["layer_types"] as! [String]
        let globalLayers = types.enumerated().filter { $0.element == "full_attention" }.map(\.offset)
        for path in [tiny("gemma3"), try gguf("gemma3")] {
            let d = try details(path)
            XCTAssertEqual(d["unit"] as? String, "gemma3", path)
            XCTAssertEqual(d["head_dim"] as? Int, c["head_dim"] as? Int, path)
            XCTAssertEqual(d["heads"] as? Int, c["num_attention_heads"] as? Int, path)
            XCTAssertEqual(d["kv_heads"] as? Int, c["num_key_value_heads"] as? Int, path)
            XCTAssertEqual(d["sliding_window"] as? Int, c["sliding_window"] as? Int, path)
            XCTAssertEqual(d["global_layers"] as? [Int], globalLayers, path)
            XCTAssertEqual(d["sliding_pattern"] as? String, "\(globalLayers[0]) local : 1 global", path)
            XCTAssertEqual(d["rope_base"] as? Double, full["rope_theta"] as? Double, path)
            XCTAssertEqual(d["local_rope_base"] as? Double, local["rope_theta"] as? Double, path)
            let scaling = try XCTUnwrap(d["rope_scaling"] as? [String: Any], path)
            XCTAssertEqual(scaling["type"] as? String, full["rope_type"] as? String, path)
            XCTAssertEqual(scaling["factor"] as? Double, full["factor"] as? Double, path)
            XCTAssertEqual(d["qk_norm"] as? Bool, true, path)
            XCTAssertEqual(d["sandwich_norms"] as? Bool, true, path)
            XCTAssertEqual(d["final_logit_softcap"] as? Double, c["final_logit_softcapping"] as? Double, path)
            XCTAssertEqual(d["attention_scale"] as? Double, 1 / Double(c["query_pre_attn_scalar"] as! Int).squareRoot(), path)
            XCTAssertEqual(d["mlp"] as? String, "gated gelu_tanh", path)
        }
        let text = try TestSupport.smelt(["inspect", tiny("gemma3")]).stdout
        XCTAssertTrue(text.contains("architecture details (gemma3 unit):"), text)
        XCTAssertTrue(text.contains("  sliding_pattern: 5 local : 1 global"), text)
        XCTAssertTrue(text.contains("  rope_scaling: type linear, factor 2.0"), text)
    }

    func testLlamaRopeScalingKinds() throws {
        for m in ["llama3", "llama-yarn", "llama-linear"] {
            let c = try config(m)
            let p = (c["rope_parameters"] ?? c["rope_scaling"]) as! [String: Any]
            let d = try details(tiny(m))
            XCTAssertEqual(d["rope"] as? String, "interleaved", m)
            let s = try XCTUnwrap(d["rope_scaling"] as? [String: Any], m)
            XCTAssertEqual(s["type"] as? String, p["rope_type"] as? String, m)
            XCTAssertEqual(s["factor"] as? Double, p["factor"] as? Double, m)
            XCTAssertEqual(s["original_context"] as? Int, p["original_max_position_embeddings"] as? Int, m)
            if m == "llama3" {
                XCTAssertEqual(s["low_freq_factor"] as? Double, p["low_freq_factor"] as? Double)
                XCTAssertEqual(s["high_freq_factor"] as? Double, p["high_freq_factor"] as? Double)
            }
        }
        // From GGUF: linear and YaRN travel as keys; Llama 3's scaling is rope_freqs.weight, whose
        // range (1 … factor) is shown when the GGUF does not state the parameters that made it.
        let yarn = try details(try gguf("llama-yarn"))["rope_scaling"] as? [String: Any]
        XCTAssertEqual(yarn?["type"] as? String, "yarn")
        XCTAssertEqual(yarn?["factor"] as? Double, 4)
        let l3 = try details(try gguf("llama3"))
        let freqs = try XCTUnwrap(l3["rope_freqs"] as? [String: Any], "\(l3)")
        XCTAssertEqual(freqs["count"] as? Int, (try config("llama3")["head_dim"] as! Int) / 2)
        XCTAssertEqual(freqs["min"] as? Double, 1)
        XCTAssertEqual(freqs["max"] as? Double, (try config("llama3")["rope_parameters"] as! [String: Any])["factor"] as? Double)
    }

    func testQwen3HeadSizeAndQKNorm() throws {
        let c = try config("qwen3")
        for path in [tiny("qwen3"), try gguf("qwen3")] {
            let d = try details(path)
            XCTAssertEqual(d["head_dim"] as? Int, c["head_dim"] as? Int, path)
            XCTAssertNotEqual(d["head_dim"] as? Int, (c["hidden_size"] as! Int) / (c["num_attention_heads"] as! Int))
            XCTAssertNotNil(d["head_dim_note"], path)
            XCTAssertEqual(d["qk_norm"] as? Bool, true, path)
            XCTAssertEqual(d["rope"] as? String, "neox", path)
            XCTAssertNil(d["rope_scaling"], path)
        }
        let gpt2 = try details(tiny("gpt2"))
        XCTAssertEqual(gpt2["positions"] as? String, "learned")
        XCTAssertEqual(gpt2["fused_qkv"] as? Bool, true)
        XCTAssertNil(gpt2["rope"])
    }

    /// Mixtures of experts: counts from the configuration, from the folder and from GGUF.
    func testExpertCounts() throws {
        for (folder, countKey, usedKey) in [("golden/gptoss/bf16", "num_local_experts", "num_experts_per_tok"),
                                            ("golden/tiny/qwen3moe", "num_local_experts", "num_experts_per_tok")] {
            let path = TestSupport.path(folder)
            let c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(path)/config.json"))) as! [String: Any]
            let gguf = "\(dir)/\(folder.split(separator: "/").last!).gguf"
            XCTAssertEqual(try TestSupport.smelt(["convert", path, gguf]).status, 0)
            for p in [path, gguf] {
                let moe = try XCTUnwrap(try details(p)["experts"] as? [String: Any], p)
                XCTAssertEqual(moe["count"] as? Int, c[countKey] as? Int, p)
                XCTAssertEqual(moe["used"] as? Int, c[usedKey] as? Int, p)
            }
        }
        XCTAssertEqual(try details(TestSupport.path("golden/gptoss/bf16"))["attention_sinks"] as? Bool, true)
    }

    func testUnknownArchitectureIsStillInspected() throws {
        let src = "\(dir)/mamba"
        try FileManager.default.copyItem(atPath: tiny("llama"), toPath: src)
        let url = URL(fileURLWithPath: "\(src)/config.json")
        var c = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        c["model_type"] = "mamba2"
        try JSONSerialization.data(withJSONObject: c).write(to: url)
        let r = try TestSupport.smelt(["inspect", "--json", src])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertTrue(report["architecture_config"] is NSNull)
        XCTAssertTrue((report["architecture_error"] as? String)?.contains("architecture 'mamba2' is not supported") == true, "\(report)")
        let text = try TestSupport.smelt(["inspect", src])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.stdout.contains("architecture details: unavailable: architecture 'mamba2' is not supported"), text.stdout)
    }
}
