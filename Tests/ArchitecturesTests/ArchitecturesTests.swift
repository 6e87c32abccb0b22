import Architectures
import Formats
import TensorGraph
import TestSupport
import XCTest

final class TablesTests: XCTestCase {
    func testEmbeddedTablesMatchFormatsFolder() throws {
        let r = try TestSupport.python(["scripts/embed_tables.py", "--check"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    }

    func testRegistry() throws {
        XCTAssertEqual(try ArchitectureRegistry.spec(hfModelType: "mistral").architecture, "llama")
        XCTAssertEqual(try ArchitectureRegistry.spec(gguf: "qwen2").hfClass, "Qwen2ForCausalLM")
        XCTAssertThrowsError(try ArchitectureRegistry.spec(hfModelType: "bert")) { e in
            XCTAssertTrue("\(e)".contains("architecture 'bert' is not supported"), "\(e)")
        }
    }

    func testNamePatterns() {
        let p = NamePattern("model.layers.{bid}.mlp.up_proj.weight")
        XCTAssertEqual(p.match("model.layers.17.mlp.up_proj.weight"), 17)
        XCTAssertNil(p.match("model.layers.x.mlp.up_proj.weight"))
        XCTAssertNil(p.match("model.layers..mlp.up_proj.weight"))
        XCTAssertEqual(p.fill(3), "model.layers.3.mlp.up_proj.weight")
        let spec = try! ArchitectureRegistry.spec(gguf: "llama")
        XCTAssertEqual(spec.ggufName(forHF: "model.layers.2.self_attn.q_proj.weight")?.name, "blk.2.attn_q.weight")
        XCTAssertEqual(spec.ggufName(forHF: "model.layers.2.self_attn.q_proj.weight")?.transform, .ropePermuteQ)
        XCTAssertEqual(spec.hfName(forGGUF: "output_norm.weight")?.name, "model.norm.weight")
    }

    func testRopePermutationIsABijectionAndInverse() {
        for headDim in [2, 8, 64] {
            let rows = 3 * headDim
            let forward = (0..<rows).map { RopePermutation.hfRow(forGGUFRow: $0, headDim: headDim) }
            XCTAssertEqual(Set(forward).count, rows)
            for r in 0..<rows {
                XCTAssertEqual(RopePermutation.ggufRow(forHFRow: forward[r], headDim: headDim), r)
            }
        }
        // Head 0 of a head_dim 4 block: GGUF rows are HF rows 0, 2, 1, 3 (pairs interleaved).
        XCTAssertEqual((0..<4).map { RopePermutation.hfRow(forGGUFRow: $0, headDim: 4) }, [0, 2, 1, 3])
    }
}

/// The tiny random-weight models made by transformers (golden/make_tiny_models.py).
final class TinyModelRoundTripTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("arch") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func tiny(_ arch: String) -> String { TestSupport.path("golden/tiny/\(arch)") }

    func config(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    func assertSameTensors(_ a: TensorGraph, _ b: TensorGraph, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(Set(a.tensors.map(\.name)), Set(b.tensors.map(\.name)), file: file, line: line)
        for t in a.tensors {
            guard let u = b[t.name] else { continue }
            XCTAssertEqual(t.dtype, u.dtype, t.name, file: file, line: line)
            XCTAssertEqual(t.shape, u.shape, t.name, file: file, line: line)
            XCTAssertEqual(try t.storage.readAll(), try u.storage.readAll(), "bytes of \(t.name)", file: file, line: line)
        }
    }

    func roundTrip(_ arch: String, dtype: String?) throws {
        let gguf = "\(dir)/\(arch).gguf", back = "\(dir)/\(arch)-back"
        var source = tiny(arch)
        if let dtype {
            source = "\(dir)/\(arch)-\(dtype)"
            XCTAssertEqual(try TestSupport.smelt(["convert", tiny(arch), source, "--dtype", dtype]).status, 0)
        }
        let extra = dtype.map { ["--dtype", $0] } ?? []
        var r = try TestSupport.smelt(["convert", source, gguf] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt(["convert", gguf, back] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)

        // Tensors bit for bit. 1-D tensors travel as f32 in GGUF (as llama.cpp keeps them) and
        // come back in the requested type exactly, since they started in it.
        let original = try HFFolder.read(source), returned = try HFFolder.read(back)
        var renamed = try TensorGraph()
        for t in original.tensors where !(arch == "gpt2" && (t.name.hasSuffix(".attn.bias") || t.name == "lm_head.weight")) {
            var u = t
            if arch == "gpt2" && !u.name.hasPrefix("transformer.") { u.name = "transformer." + u.name }
            try renamed.append(u)
        }
        try assertSameTensors(renamed, returned)

        // config.json: the same architecture-defining values.
        let a = try config("\(source)/config.json"), b = try config("\(back)/config.json")
        XCTAssertEqual(b["model_type"] as? String, a["model_type"] as? String)
        XCTAssertEqual(b["architectures"] as? [String], a["architectures"] as? [String])
        let keys = arch == "gpt2"
            ? ["n_embd", "n_layer", "n_head", "n_positions", "vocab_size", "layer_norm_epsilon"]
            : ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
               "max_position_embeddings", "vocab_size", "rms_norm_eps", "tie_word_embeddings"]
        for k in keys {
            XCTAssertEqual("\(b[k] ?? "missing")", "\(a[k] ?? "missing")", "\(arch) config \(k)")
        }
        if arch != "gpt2" {
            let theta = (a["rope_theta"] ?? (a["rope_parameters"] as? [String: Any])?["rope_theta"]) as? Double
            XCTAssertEqual(b["rope_theta"] as? Double, theta)
        }

        // The tokenizer we wrote encodes like the original (Python tokenizers package).
        r = try TestSupport.python(["golden/check_tokenizer.py", "\(source)/tokenizer.json", "\(back)/tokenizer.json", TestSupport.wikiText])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)

        // GGUF → HF → GGUF: identical tensor bytes.
        let gguf2 = "\(dir)/\(arch)-again.gguf"
        r = try TestSupport.smelt(["convert", back, gguf2] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        try assertSameTensors(try GGUFReader.read(gguf), try GGUFReader.read(gguf2))
    }

    func testGPT2() throws { try roundTrip("gpt2", dtype: nil) }
    func testLlama() throws { try roundTrip("llama", dtype: nil) }
    func testQwen2() throws { try roundTrip("qwen2", dtype: nil) }
    func testLlamaF16() throws { try roundTrip("llama", dtype: "f16") }
    func testQwen2BF16() throws { try roundTrip("qwen2", dtype: "bf16") }
    func testQwen3() throws {
        try roundTrip("qwen3", dtype: nil)
        // head_dim (16) is not hidden ÷ heads (8): it travels as attention.key_length.
        let back = try config("\(dir)/qwen3-back/config.json")
        XCTAssertEqual(back["head_dim"] as? Int, 16)
        XCTAssertEqual(try GGUFReader.read("\(dir)/qwen3.gguf").metadata["qwen3.attention.key_length"], .uint32(16))
    }

    /// One tensor per expert in the checkpoint ↔ stacked `ffn_*_exps` in GGUF, both ways.
    func testQwen3Moe() throws {
        try roundTrip("qwen3moe", dtype: nil)
        let back = try config("\(dir)/qwen3moe-back/config.json")
        XCTAssertEqual(back["num_experts"] as? Int, 4)
        XCTAssertEqual(back["moe_intermediate_size"] as? Int, 24)
        XCTAssertEqual(back["norm_topk_prob"] as? Bool, true)
        let g = try GGUFReader.read("\(dir)/qwen3moe.gguf")
        XCTAssertEqual(g["blk.1.ffn_down_exps.weight"]?.shape, [4, 32, 24])
    }

    /// Per-expert checkpoint tensors that cannot stack are refused, naming the tensor: a gap in
    /// the expert numbers, an expert of another shape, fewer experts than the configuration.
    func testQwen3MoeBadExpertsAreRefused() throws {
        let hf = try HFFolder.read(tiny("qwen3moe"))
        func converting(_ edit: (Tensor) throws -> Tensor?) throws -> String {
            var kept: [Tensor] = []
            for t in hf.tensors { if let u = try edit(t) { kept.append(u) } }
            let g = try TensorGraph(architecture: hf.architecture, hyperparameters: hf.hyperparameters, metadata: hf.metadata,
                                    tokenizer: hf.tokenizer, tensors: kept)
            do {
                _ = try HFToGGUF.convert(g)
                return "converted"
            } catch { return "\(error)" }
        }
        let gap = try converting { $0.name.contains("layers.0.mlp.experts.2.") ? nil : $0 }
        XCTAssertTrue(gap.contains("model.layers.0.mlp.experts.3.") && gap.contains("experts.2."), gap)
        let shape = try converting { t in
            guard t.name == "model.layers.1.mlp.experts.1.up_proj.weight" else { return t }
            return try Tensor(name: t.name, dtype: .f32, shape: [12, 32], storage: MemoryStorage([UInt8](repeating: 0, count: 12 * 32 * 4)))
        }
        XCTAssertTrue(shape.contains("model.layers.1.mlp.experts.1.up_proj.weight") && shape.contains("[12, 32]"), shape)
        let count = try converting { $0.name.contains("mlp.experts.3.") ? nil : $0 }
        XCTAssertTrue(count.contains("3 experts") && count.contains("4"), count)
    }

    func testGGUFLayoutMatchesLlamaCppConventions() throws {
        let r = try TestSupport.smelt(["convert", tiny("gpt2"), "\(dir)/g.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let g = try GGUFReader.read("\(dir)/g.gguf")
        let hf = try HFFolder.read(tiny("gpt2"))
        // Conv1D [in, out] → [out, in]; the tied head is written as output.weight.
        let cAttn = try XCTUnwrap(hf["transformer.h.0.attn.c_attn.weight"] ?? hf["h.0.attn.c_attn.weight"])
        XCTAssertEqual(g["blk.0.attn_qkv.weight"]?.shape, [cAttn.shape[1], cAttn.shape[0]])
        XCTAssertEqual(try g["output.weight"]?.storage.readAll(), try g["token_embd.weight"]?.storage.readAll())
        XCTAssertEqual(g.metadata["gpt2.feed_forward_length"], .uint32(128))
        XCTAssertEqual(g.metadata["tokenizer.ggml.pre"], .string("gpt-2"))
        // Llama with a separate head keeps output.weight; Qwen2 tied omits it.
        _ = try TestSupport.smelt(["convert", tiny("llama"), "\(dir)/l.gguf"])
        _ = try TestSupport.smelt(["convert", tiny("qwen2"), "\(dir)/q.gguf"])
        XCTAssertNotNil(try GGUFReader.read("\(dir)/l.gguf")["output.weight"])
        let q = try GGUFReader.read("\(dir)/q.gguf")
        XCTAssertNil(q["output.weight"])
        XCTAssertNotNil(q["blk.1.attn_k.bias"])
        XCTAssertEqual(q.metadata["tokenizer.ggml.pre"], .string("qwen2"))
        XCTAssertEqual(q.metadata["tokenizer.chat_template"]?.stringValue?.hasPrefix("{% for m in messages %}"), true)
    }

    func testUnsupportedArchitectureIsAnErrorUnlessContainer() throws {
        try TestSupport.requireModel(TestSupport.miniLMWeights)
        var r = try TestSupport.smelt(["convert", TestSupport.miniLM, "\(dir)/bert.gguf"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("architecture 'bert' is not supported"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--container"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/bert.gguf"))
        r = try TestSupport.smelt(["convert", "--container", TestSupport.miniLM, "\(dir)/bert.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("note: container conversion of architecture 'bert'"), r.stderr)
        XCTAssertNotNil(try GGUFReader.read("\(dir)/bert.gguf")["encoder.layer.0.attention.self.query.weight"])
    }
}

/// The real model: SmolLM2-135M-Instruct Q4_1 GGUF → Hugging Face folder → GGUF.
final class SmolLM2ConversionTests: XCTestCase {
    func testGGUFToHFAndBack() throws {
        try TestSupport.requireModel(TestSupport.smolLM2)
        let dir = TestSupport.tempDir("smollm2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = try TestSupport.smelt(["convert", TestSupport.smolLM2, "\(dir)/hf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let hf = try HFFolder.read("\(dir)/hf")
        XCTAssertEqual(hf.tensors.count, 272)
        XCTAssertNil(hf["lm_head.weight"], "SmolLM2 ties its head: no lm_head")
        XCTAssertEqual(hf["model.layers.0.self_attn.k_proj.weight"]?.shape, [192, 576])
        XCTAssertEqual(hf["model.embed_tokens.weight"]?.shape, [49152, 576])
        XCTAssertTrue(hf.tensors.allSatisfy { $0.dtype == .f32 })
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/hf/config.json"))) as! [String: Any]
        XCTAssertEqual(cfg["num_key_value_heads"] as? Int, 3)
        XCTAssertEqual(cfg["tie_word_embeddings"] as? Bool, true)
        XCTAssertEqual(cfg["rope_theta"] as? Double, 100000)

        r = try TestSupport.smelt(["convert", "\(dir)/hf", "\(dir)/back.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let original = try GGUFReader.read(TestSupport.smolLM2), back = try GGUFReader.read("\(dir)/back.gguf")
        XCTAssertEqual(back.tensors.count, 272)
        for t in original.tensors where !t.dtype.isQuantized {
            XCTAssertEqual(try back[t.name]?.storage.readAll(), try t.storage.readAll(), t.name)
        }
        for key in ["llama.block_count", "llama.attention.head_count_kv", "llama.rope.freq_base", "tokenizer.ggml.pre",
                    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.merges",
                    "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.chat_template"] {
            XCTAssertEqual(back.metadata[key], original.metadata[key], key)
        }
    }
}

/// What a conversion does when a tensor's values are needed but its type cannot be decoded.
final class ConversionTests: XCTestCase {
    func testUndecodableTypeFailsNamingTensorAndType() throws {
        let dir = TestSupport.tempDir("conv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try Tensor(name: "blk.0.odd.weight", dtype: .iq2_XXS, shape: [2, 256], storage: MemoryStorage([UInt8](repeating: 1, count: 132)))
        var g = try TensorGraph(tensors: [t])
        GGUFMetadata.apply(to: &g)
        let gguf = "\(dir)/odd.gguf"
        try GGUFWriter.write(g, to: gguf)
        // Copying keeps the bytes (no values needed)…
        var r = try TestSupport.smelt(["convert", gguf, "\(dir)/copy.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try GGUFReader.read("\(dir)/copy.gguf")["blk.0.odd.weight"]?.storage.readAll(), [UInt8](repeating: 1, count: 132))
        // …but safetensors needs values.
        r = try TestSupport.smelt(["convert", gguf, "\(dir)/x.safetensors"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("blk.0.odd.weight"), r.stderr)
        XCTAssertTrue(r.stderr.contains("IQ2_XXS"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/x.safetensors"))
    }
}

/// HF → GGUF against what llama.cpp's convert_hf_to_gguf.py writes for the same tiny folder
/// (golden/llamacpp/, made by golden/make_llamacpp_reference.py): every tensor's bytes, type and
/// shape, every key outside tokenizer.* and general.*.
final class LlamaCppReferenceTests: XCTestCase {
    func check(_ arch: String) throws {
        let dir = TestSupport.tempDir("llamacpp-ref")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/\(arch)"), "\(dir)/\(arch).gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", "\(dir)/\(arch).gguf", "golden/llamacpp/\(arch).json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    }

    func testQwen2() throws { try check("qwen2") }
    func testQwen3() throws { try check("qwen3") }
    /// Per-expert tensors stacked into ffn_{gate,up,down}_exps, the qwen3moe.expert_* keys.
    func testQwen3Moe() throws { try check("qwen3moe") }
    func testLlama() throws { try check("llama") }
    /// rope_freqs.weight generated byte for byte as llama.cpp's converter makes it.
    func testLlama3() throws { try check("llama3") }
    func testLinearRopeScaling() throws { try check("llama-linear") }
    func testYarnRopeScaling() throws { try check("llama-yarn") }
    /// Norm weights stored + 1, gemma3.* keys (sliding window, local rope base, soft-capping).
    func testGemma3() throws { try check("gemma3") }
}

/// Rope scaling across GGUF → Hugging Face: Llama 3's rope_freqs.weight becomes rope_scaling again
/// only when regenerating it gives the same bytes.
final class RopeScalingConversionTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("rope") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func config(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    /// A copy of the tiny Llama 3 folder whose original context is `original`.
    func llama3Folder(original: Int) throws -> String {
        let folder = "\(dir)/llama3-\(original)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for f in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: TestSupport.path("golden/tiny/llama3/\(f)"), toPath: "\(folder)/\(f)")
        }
        let text = try String(contentsOfFile: TestSupport.path("golden/tiny/llama3/config.json"), encoding: .utf8)
        try text.replacingOccurrences(of: "\"original_max_position_embeddings\": 64", with: "\"original_max_position_embeddings\": \(original)")
            .write(toFile: "\(folder)/config.json", atomically: true, encoding: .utf8)
        return folder
    }

    func testLlama31DefaultsAreRestored() throws {
        let src = try llama3Folder(original: 8192)
        XCTAssertEqual(try TestSupport.smelt(["convert", src, "\(dir)/a.gguf"]).status, 0)
        XCTAssertNotNil(try GGUFReader.read("\(dir)/a.gguf")["rope_freqs.weight"])
        let r = try TestSupport.smelt(["convert", "\(dir)/a.gguf", "\(dir)/back"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let back = try HFFolder.read("\(dir)/back")
        XCTAssertNil(back["rope_freqs.weight"])
        let scaling = try XCTUnwrap(try config("\(dir)/back/config.json")["rope_scaling"] as? [String: Any])
        XCTAssertEqual(scaling["rope_type"] as? String, "llama3")
        XCTAssertEqual(scaling["factor"] as? Double, 8)
        XCTAssertEqual(scaling["original_max_position_embeddings"] as? Int, 8192)
        // …and back to GGUF: the same rope_freqs.weight.
        XCTAssertEqual(try TestSupport.smelt(["convert", "\(dir)/back", "\(dir)/again.gguf"]).status, 0)
        XCTAssertEqual(try GGUFReader.read("\(dir)/again.gguf")["rope_freqs.weight"]?.storage.readAll(),
                       try GGUFReader.read("\(dir)/a.gguf")["rope_freqs.weight"]?.storage.readAll())
    }

    func testOtherScalingIsRefusedWithoutItsConfig() throws {
        XCTAssertEqual(try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/llama3"), "\(dir)/a.gguf"]).status, 0)
        let r = try TestSupport.smelt(["convert", "\(dir)/a.gguf", "\(dir)/back"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("rope_freqs.weight") && r.stderr.contains("original context 8192"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/back/model.safetensors"))
    }

    func testScalingFromTheHFConfigTheGGUFCarries() throws {
        XCTAssertEqual(try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/llama3"), "\(dir)/a.gguf"]).status, 0)
        var g = try GGUFReader.read("\(dir)/a.gguf")
        g.metadata["hf.config.json"] = .string(try String(contentsOfFile: TestSupport.path("golden/tiny/llama3/config.json"), encoding: .utf8))
        try GGUFWriter.write(g, to: "\(dir)/carrying.gguf")
        let r = try TestSupport.smelt(["convert", "\(dir)/carrying.gguf", "\(dir)/back"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let scaling = try XCTUnwrap(try config("\(dir)/back/config.json")["rope_scaling"] as? [String: Any])
        XCTAssertEqual(scaling["original_max_position_embeddings"] as? Int, 64)
    }

    func testLinearScalingRoundTrips() throws {
        XCTAssertEqual(try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/llama-linear"), "\(dir)/a.gguf"]).status, 0)
        let g = try GGUFReader.read("\(dir)/a.gguf")
        XCTAssertEqual(g.metadata["llama.rope.scaling.type"], .string("linear"))
        XCTAssertEqual(g.metadata["llama.rope.scaling.factor"], .float32(2))
        XCTAssertEqual(try TestSupport.smelt(["convert", "\(dir)/a.gguf", "\(dir)/back"]).status, 0)
        let scaling = try XCTUnwrap(try config("\(dir)/back/config.json")["rope_scaling"] as? [String: Any])
        XCTAssertEqual(scaling["rope_type"] as? String, "linear")
        XCTAssertEqual(scaling["factor"] as? Double, 2)
    }

    func testBothConfigLayoutsReadTheSame() throws {
        let legacy = #"{"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "rope_theta": 500000.0, "rope_scaling": {"rope_type": "linear", "factor": 4.0}}"#
        let v5 = #"{"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "linear", "factor": 4.0}}"#
        let a = try Llama.configuration(hfConfig: legacy), b = try Llama.configuration(hfConfig: v5)
        XCTAssertEqual(a.decoder.ropeScaling, b.decoder.ropeScaling)
        XCTAssertEqual(a.decoder.ropeTheta, 500000)
        XCTAssertEqual(b.decoder.ropeTheta, 500000)
        // Each writes back the layout it came in.
        XCTAssertNotNil(try a.hfConfigEntries().first { $0.0 == "rope_scaling" })
        XCTAssertNotNil(try b.hfConfigEntries().first { $0.0 == "rope_parameters" })
        XCTAssertThrowsError(try Llama.configuration(hfConfig: v5.replacingOccurrences(of: "linear", with: "dynamic"))) { e in
            XCTAssertTrue("\(e)".contains("rope_parameters.rope_type") && "\(e)".contains("dynamic"), "\(e)")
        }
    }
}

/// What an architecture's configuration says when it is missing or wrong.
final class ArchitectureConfigurationTests: XCTestCase {
    func testUnknownArchitectureIsNamedWithTheSupportedOnes() {
        XCTAssertThrowsError(try ArchitectureRegistry.unit(gguf: "mamba")) { e in
            XCTAssertTrue("\(e)".contains("'mamba'"), "\(e)")
            for name in ["gpt2", "llama", "qwen2", "qwen3"] { XCTAssertTrue("\(e)".contains(name), "\(e)") }
        }
    }

    func testMissingKeyIsNamedInTheSourcesTerms() throws {
        XCTAssertThrowsError(try Qwen3.configuration(hfConfig: #"{"hidden_size": 32, "num_attention_heads": 4}"#)) { e in
            XCTAssertTrue("\(e)".contains("'num_hidden_layers'"), "\(e)")
        }
        var m = Metadata()
        m["general.architecture"] = .string("qwen3")
        m["qwen3.embedding_length"] = .uint32(32)
        m["qwen3.block_count"] = .uint32(2)
        XCTAssertThrowsError(try Qwen3.configuration(gguf: m)) { e in
            XCTAssertTrue("\(e)".contains("'qwen3.attention.head_count'"), "\(e)")
        }
        m["qwen3.attention.head_count"] = .uint32(4)
        m["qwen3.attention.head_count_kv"] = .uint32(3)
        XCTAssertThrowsError(try Qwen3.configuration(gguf: m).forwardPlan()) { e in
            XCTAssertTrue("\(e)".contains("3 key/value heads do not divide 4"), "\(e)")
        }
    }

    func testGGUFKeysReadBackToTheSameConfiguration() throws {
        let text = try String(contentsOfFile: TestSupport.path("golden/tiny/qwen3/config.json"), encoding: .utf8)
        let hf = try Qwen3.configuration(hfConfig: text)
        var m = Metadata()
        for (k, v) in try hf.ggufKeys() { m[k] = v }
        let back = try Qwen3.configuration(gguf: m)
        // vocab_size has no qwen3.* key (llama.cpp writes none): the vocabulary is the tokenizer's.
        // Nor does the config layout (rope_parameters or rope_theta + rope_scaling).
        var expected = hf.decoder
        expected.vocabSize = nil
        expected.ropeParametersLayout = false
        XCTAssertEqual(back.decoder, expected)
        XCTAssertEqual(try back.forwardPlan().headDim, 16)
        XCTAssertEqual(try back.forwardPlan().qkNorm, true)
    }
}

/// Gemma 3 across formats: GGUF → HF → GGUF gives the same bytes; HF → GGUF → HF gives the same
/// tensors except the norms, which travel as w + 1 (within one float32 step of 1 of the original).
final class Gemma3ConversionTests: XCTestCase {
    func floats(_ t: Tensor) throws -> [Float] {
        let b = try (t.dtype == .f32 ? t : t.cast(to: .f32)).storage.readAll()
        return stride(from: 0, to: b.count, by: 4).map {
            Float(bitPattern: UInt32(b[$0]) | UInt32(b[$0 + 1]) << 8 | UInt32(b[$0 + 2]) << 16 | UInt32(b[$0 + 3]) << 24)
        }
    }

    func testRoundTrips() throws {
        let dir = TestSupport.tempDir("gemma3")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = TestSupport.path("golden/tiny/gemma3")
        for (a, b) in [(src, "\(dir)/a.gguf"), ("\(dir)/a.gguf", "\(dir)/back"), ("\(dir)/back", "\(dir)/again.gguf")] {
            let r = try TestSupport.smelt(["convert", a, b])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let g1 = try GGUFReader.read("\(dir)/a.gguf"), g2 = try GGUFReader.read("\(dir)/again.gguf")
        XCTAssertEqual(g1.tensors.map(\.name), g2.tensors.map(\.name))
        for t in g1.tensors { XCTAssertEqual(try t.storage.readAll(), try g2[t.name]?.storage.readAll(), t.name) }
        let original = try HFFolder.read(src), back = try HFFolder.read("\(dir)/back")
        XCTAssertEqual(Set(original.tensors.map(\.name)), Set(back.tensors.map(\.name)))
        var norms = 0
        for t in original.tensors {
            let u = try XCTUnwrap(back[t.name], t.name)
            if t.name.hasSuffix("norm.weight") {
                norms += 1
                for (x, y) in zip(try floats(t), try floats(u)) { XCTAssertEqual(x, y, accuracy: Float(1).ulp, t.name) }
            } else {
                XCTAssertEqual(try t.storage.readAll(), try u.storage.readAll(), t.name)
            }
        }
        XCTAssertEqual(norms, 6 * 6 + 1)
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/back/config.json"))) as! [String: Any]
        XCTAssertEqual(cfg["model_type"] as? String, "gemma3_text")
        XCTAssertEqual(cfg["sliding_window"] as? Int, 8)
        XCTAssertEqual(cfg["head_dim"] as? Int, 16)
        XCTAssertEqual(cfg["rope_local_base_freq"] as? Double, 10000)
        XCTAssertEqual((cfg["rope_scaling"] as? [String: Any])?["factor"] as? Double, 2)
        XCTAssertEqual(cfg["final_logit_softcapping"] as? Double, 10)
        XCTAssertEqual(g1.metadata["gemma3.attention.sliding_window"], .uint32(8))
        XCTAssertEqual(g1.metadata["gemma3.rope.freq_base_swa"], .float32(10000))
    }
}
