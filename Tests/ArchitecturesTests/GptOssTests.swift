import Architectures
import Formats
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// gpt-oss conversion on the tiny model of golden/gptoss/ (golden/make_gptoss_tiny.py: the same
/// weights as an MXFP4 checkpoint and as a bf16 one): HF → GGUF against llama.cpp's converter
/// (golden/llamacpp/gptoss-*.json), GGUF → HF in both forms, and hostile checkpoints.
final class GptOssConversionTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("gptoss") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    let mxfp4 = TestSupport.path("golden/gptoss/mxfp4")
    let bf16 = TestSupport.path("golden/gptoss/bf16")

    /// A float tensor's values as f32 (−0 and +0 equal: the checkpoint's FP4 code 8 is −0 in
    /// transformers' table and +0 in ggml's, which Smelt's decoder follows).
    func values(_ t: Tensor) throws -> [Float] {
        let bytes = try (t.dtype == .f32 ? t : t.dtype.isQuantized ? t.dequantized(to: .f32) : t.cast(to: .f32)).storage.readAll()
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Byte equality without printing megabytes on failure.
    func assertSameBytes(_ a: Tensor?, _ b: Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try a?.storage.readAll(), y = try b.storage.readAll()
        XCTAssertTrue(x == y, "\(b.name): bytes differ", file: file, line: line)
    }

    func convert(_ args: [String]) throws {
        let r = try TestSupport.smelt(["convert"] + args)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// Every tensor's type, shape and bytes and every gpt-oss.* key as convert_hf_to_gguf.py
    /// writes them (`--outtype f32` and `bf16`; the MXFP4 experts stay MXFP4, moved without an
    /// f32 round trip).
    func checkAgainstConverter(_ form: String, folder: String) throws {
        try convert([folder, "\(dir)/\(form).gguf", "--dtype", "f32"])
        var r = try TestSupport.python(["golden/check_llamacpp_reference.py", "\(dir)/\(form).gguf", "golden/llamacpp/gptoss-\(form).json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let g = try GGUFReader.read("\(dir)/\(form).gguf")
        // general.file_type as the converter sets it: MOSTLY_MXFP4_MOE (38) for MXFP4 experts.
        XCTAssertEqual(g.metadata["general.file_type"]?.intValue, form == "mxfp4" ? 38 : 0)
        XCTAssertEqual(g.tokenizer.preTokenizer, "gpt-4o")
        // `--outtype bf16`: biases (2-D expert ones too), norms and the router stay f32.
        try convert([folder, "\(dir)/\(form).bf16.gguf", "--dtype", "bf16"])
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", "\(dir)/\(form).bf16.gguf", "golden/llamacpp/gptoss-\(form).bf16.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertEqual(try GGUFReader.read("\(dir)/\(form).bf16.gguf").metadata["general.file_type"]?.intValue, form == "mxfp4" ? 38 : 32)
    }

    func testHFToGGUFFromMXFP4MatchesConverter() throws { try checkAgainstConverter("mxfp4", folder: mxfp4) }
    func testHFToGGUFFromBF16MatchesConverter() throws { try checkAgainstConverter("bf16", folder: bf16) }

    /// The two checkpoint forms are one model: the MXFP4 experts decode to the float form's.
    func testBothFormsGiveTheSameExperts() throws {
        try convert([mxfp4, "\(dir)/m.gguf", "--dtype", "f32"])
        try convert([bf16, "\(dir)/b.gguf", "--dtype", "f32"])
        let m = try GGUFReader.read("\(dir)/m.gguf"), b = try GGUFReader.read("\(dir)/b.gguf")
        var checked = 0
        for t in m.tensors {
            let other = try XCTUnwrap(b[t.name], t.name)
            XCTAssertEqual(t.shape, other.shape, t.name)
            if t.dtype == .mxfp4 {
                XCTAssertTrue(try values(t) == values(other), "\(t.name): values differ")
                checked += 1
            } else {
                try assertSameBytes(t, other)
            }
        }
        XCTAssertEqual(checked, 9)  // gate, up, down × 3 layers
    }

    /// GGUF → HF writes MXFP4 pairs by default: the blocks and scales are the checkpoint's bytes,
    /// config.json says quantization_config mxfp4, and converting back gives the same GGUF.
    func testGGUFToHFMXFP4PairsByDefault() throws {
        try convert([mxfp4, "\(dir)/a.gguf"])
        try convert(["\(dir)/a.gguf", "\(dir)/back"])
        let orig = try HFFolder.read(mxfp4), back = try HFFolder.read("\(dir)/back")
        XCTAssertEqual(Set(orig.tensors.map(\.name)), Set(back.tensors.map(\.name)))
        for t in orig.tensors {
            let u = try XCTUnwrap(back[t.name], t.name)
            XCTAssertEqual(u.shape, t.shape, t.name)
            if t.dtype == .u8 {
                XCTAssertEqual(u.dtype, .u8, t.name)
                try assertSameBytes(u, t)
            } else {
                // 1-D tensors went to f32 in the GGUF: same values.
                XCTAssertTrue(try values(u) == values(t), "\(t.name): values differ")
            }
        }
        let config = try JSONParser.parse(String(contentsOfFile: "\(dir)/back/config.json", encoding: .utf8))
        XCTAssertEqual(config["quantization_config"]?["quant_method"]?.stringValue, "mxfp4")
        XCTAssertEqual(config["rope_parameters"]?["truncate"]?.boolValue, false)
        XCTAssertEqual(config["rope_parameters"]?["rope_type"]?.stringValue, "yarn")
        try convert(["\(dir)/back", "\(dir)/again.gguf"])
        let a = try GGUFReader.read("\(dir)/a.gguf"), again = try GGUFReader.read("\(dir)/again.gguf")
        XCTAssertEqual(a.tensors.map(\.name), again.tensors.map(\.name))
        for t in a.tensors {
            XCTAssertEqual(again[t.name]?.dtype, t.dtype, t.name)
            try assertSameBytes(again[t.name], t)
        }
    }

    /// `--dtype bf16`: the float form, the bf16 checkpoint's tensors: byte for byte except the
    /// experts' zeros, whose sign follows ggml's FP4 table (+0 for code 8) where transformers'
    /// has −0; the values are equal.
    func testGGUFToHFBF16Form() throws {
        try convert([mxfp4, "\(dir)/a.gguf"])
        try convert(["\(dir)/a.gguf", "\(dir)/back", "--dtype", "bf16"])
        let want = try HFFolder.read(bf16), back = try HFFolder.read("\(dir)/back")
        XCTAssertEqual(Set(want.tensors.map(\.name)), Set(back.tensors.map(\.name)))
        for t in want.tensors {
            let u = try XCTUnwrap(back[t.name], t.name)
            XCTAssertEqual(u.dtype, .bf16, t.name)
            XCTAssertEqual(u.shape, t.shape, t.name)
            if t.name.hasSuffix("_proj") {
                XCTAssertTrue(try values(u) == values(t), "\(t.name): values differ")
            } else {
                try assertSameBytes(u, t)
            }
        }
        let config = try String(contentsOfFile: "\(dir)/back/config.json", encoding: .utf8)
        XCTAssertFalse(config.contains("quantization_config"))
    }

    /// The grouped tensors are produced range by range: any split of a read gives the same bytes.
    func testGroupedTensorsReadInPieces() throws {
        func check(_ g: TensorGraph) throws {
            var checked = 0
            for t in g.tensors where t.name.contains("exps") || t.name.contains("experts") {
                let whole = try t.storage.readAll()
                for piece in [1, 13, 100] {
                    var parts: [UInt8] = []
                    var offset = 0
                    while offset < whole.count {
                        var b = [UInt8](repeating: 0, count: min(piece, whole.count - offset))
                        try b.withUnsafeMutableBytes { try t.storage.read(offset: offset, into: $0) }
                        parts += b
                        offset += b.count
                    }
                    XCTAssertTrue(parts == whole, "\(t.name) in pieces of \(piece)")
                }
                checked += 1
            }
            XCTAssertGreaterThan(checked, 0)
        }
        let gguf = try HFToGGUF.convert(try HFFolder.read(mxfp4))
        try check(gguf)
        try check(try HFToGGUF.convert(try HFFolder.read(bf16)))
        try convert([mxfp4, "\(dir)/a.gguf"])
        let g = try GGUFReader.read("\(dir)/a.gguf")
        try check(try GGUFToHF.convert(g))
        try check(try GGUFToHF.convert(g, dtype: .bf16))
    }

    // MARK: Hostile checkpoints

    /// A copy of the MXFP4 checkpoint with `replace` applied to its tensors.
    func hostile(_ label: String, _ replace: (Tensor) throws -> Tensor?) throws -> String {
        let g = try HFFolder.read(mxfp4)
        let tensors = try g.tensors.compactMap(replace)
        let out = try TensorGraph(architecture: g.architecture, hyperparameters: g.hyperparameters, metadata: g.metadata, tokenizer: g.tokenizer, tensors: tensors)
        let path = "\(dir)/\(label)"
        try HFFolder.write(out, to: path)
        return path
    }

    func zeros(_ t: Tensor, shape: [Int]) throws -> Tensor {
        try Tensor(name: t.name, dtype: t.dtype, shape: shape, storage: MemoryStorage([UInt8](repeating: 0, count: try t.dtype.byteCount(shape: shape))))
    }

    func refused(_ folder: String, naming tensor: String, _ words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try TestSupport.smelt(["convert", folder, "\(dir)/out.gguf"])
        XCTAssertEqual(r.status, 2, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(tensor), r.stderr, file: file, line: line)
        for w in words { XCTAssertTrue(r.stderr.contains(w), "\(w) not in: \(r.stderr)", file: file, line: line) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/out.gguf"), file: file, line: line)
    }

    func testScalesThatDoNotMatchBlocksAreRefused() throws {
        let name = "model.layers.1.mlp.experts.down_proj_scales"
        let f = try hostile("scales") { t in t.name == name ? try self.zeros(t, shape: [4, 64, 2]) : t }
        try refused(f, naming: name, ["[4, 64, 2]"])
    }

    func testExpertTensorsThatDisagreeAreRefused() throws {
        // Three experts in one layer's down projection, four everywhere else.
        let blocks = "model.layers.2.mlp.experts.down_proj_blocks", scales = "model.layers.2.mlp.experts.down_proj_scales"
        let f = try hostile("experts") { t in
            if t.name == blocks { return try self.zeros(t, shape: [3, 64, 1, 16]) }
            if t.name == scales { return try self.zeros(t, shape: [3, 64, 1]) }
            return t
        }
        try refused(f, naming: "model.layers.2.mlp.experts.down_proj_", ["3 experts", "has 4"])
        // A gate_up whose rows are not the configuration's 2 × ffn.
        let gu = "model.layers.0.mlp.experts.gate_up_proj_blocks", gus = "model.layers.0.mlp.experts.gate_up_proj_scales"
        let g = try hostile("rows") { t in
            if t.name == gu { return try self.zeros(t, shape: [4, 48, 2, 16]) }
            if t.name == gus { return try self.zeros(t, shape: [4, 48, 2]) }
            return t
        }
        try refused(g, naming: "model.layers.0.mlp.experts.gate_up_proj_", ["[4, 64, 2"])
    }

    func testRouterNamingAMissingExpertIsRefused() throws {
        let name = "model.layers.0.mlp.router.weight"
        let f = try hostile("router") { t in t.name == name ? try self.zeros(t, shape: [5, 64]) : t }
        try refused(f, naming: name, ["5 experts", "has 4"])
    }

    func testBlocksWithoutScalesAreRefused() throws {
        let name = "model.layers.1.mlp.experts.gate_up_proj_scales"
        let f = try hostile("noscales") { t in t.name == name ? nil : t }
        try refused(f, naming: "model.layers.1.mlp.experts.gate_up_proj_blocks", [name])
    }
}

/// Quantizing gpt-oss: `MXFP4_MOE` as llama-quantize makes it from the tiny model's F32 GGUF
/// (golden/llamacpp/gptoss-MXFP4_MOE.json, made by golden/make_gptoss_quant_reference.py), and
/// the other types on 3-D expert tensors (one matrix per expert).
final class GptOssQuantizeTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("gptoss-q") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func f32GGUF() throws -> String {
        let path = "\(dir)/f32.gguf"
        let r = try TestSupport.smelt(["convert", TestSupport.path("golden/gptoss/bf16"), path, "--dtype", "f32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return path
    }

    func testMXFP4MOEMatchesLlamaQuantize() throws {
        let src = try f32GGUF()
        var r = try TestSupport.smelt(["quantize", src, "\(dir)/q.gguf", "--type", "MXFP4_MOE"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", "\(dir)/q.gguf", "golden/llamacpp/gptoss-MXFP4_MOE.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let g = try GGUFReader.read("\(dir)/q.gguf")
        XCTAssertEqual(g.metadata["general.file_type"]?.intValue, 38)
        XCTAssertEqual(g.tensors.filter { $0.dtype == .mxfp4 }.count, 9)
    }

    /// Q8_0, Q4_0 and Q4_K_M (--exact-ggml) as llama-quantize makes them: the 3-D expert tensors
    /// quantized per expert, and a feed-forward tensor's position counted over the weights only
    /// (not the 2-D expert biases), as llama-quantize counts it.
    func testOtherFileTypesMatchLlamaQuantize() throws {
        let src = try f32GGUF()
        for type in ["Q8_0", "Q4_0", "Q4_K_M"] {
            var r = try TestSupport.smelt(["quantize", src, "\(dir)/\(type).gguf", "--type", type, "--exact-ggml"])
            XCTAssertEqual(r.status, 0, r.stderr)
            r = try TestSupport.python(["golden/check_llamacpp_reference.py", "\(dir)/\(type).gguf", "golden/llamacpp/gptoss-\(type).json"])
            XCTAssertEqual(r.status, 0, type + ": " + r.stdout + r.stderr)
        }
    }

    /// Q8_0, Q4_0, Q4_1 and Q4_K on the expert tensors: each expert's rows encoded as that
    /// expert's matrix alone would be.
    func testOtherTypesQuantizeExpertsPerExpert() throws {
        let src = try f32GGUF()
        let f32 = try GGUFReader.read(src)
        for type in ["Q8_0", "Q4_0", "Q4_1", "Q4_K_M"] {
            let out = "\(dir)/\(type).gguf"
            let r = try TestSupport.smelt(["quantize", src, out, "--type", type, "--pure"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let g = try GGUFReader.read(out)
            for name in ["blk.1.ffn_gate_exps.weight", "blk.2.ffn_down_exps.weight"] {
                let t = try XCTUnwrap(g[name]), source = try XCTUnwrap(f32[name])
                XCTAssertEqual(t.shape, source.shape, name)
                XCTAssertTrue(t.dtype.isQuantized, "\(type) \(name): \(t.dtype)")
                // Expert by expert: the 2-D slice quantized alone gives the same bytes.
                let bytes = try t.storage.readAll(), values = try source.storage.readAll()
                let per = bytes.count / source.shape[0], perValues = values.count / source.shape[0]
                for e in 0..<source.shape[0] {
                    let slice = try Tensor(name: "e", dtype: .f32, shape: Array(source.shape.dropFirst()),
                                           storage: MemoryStorage(Array(values[e * perValues..<(e + 1) * perValues])))
                    let alone = try slice.quantized(to: t.dtype).storage.readAll()
                    XCTAssertTrue(alone == Array(bytes[e * per..<(e + 1) * per]), "\(type) \(name) expert \(e)")
                }
            }
        }
    }
}
