@testable import Formats
import Foundation
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// MLX quantized safetensors (Formats/MLX): exact moves to and from ggml block types, the
/// affine decode against ggml's, packing from floats, and hostile folders.
final class MLXFlavourTests: XCTestCase {
    var rng = SystemRandomNumberGenerator()

    /// Random blocks of `type` (f16 scales drawn from a sane range, so none is inf or NaN).
    func randomBlocks(_ type: DType, rows: Int, cols: Int, pairedGroups: Int = 1) -> [UInt8] {
        let blockBytes = type.bytesPerBlock
        var out: [UInt8] = []
        var shared: [UInt8] = []
        for b in 0..<(rows * cols / 32) {
            var block = (0..<blockBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
            switch type {
            case .q4_0, .q8_0, .q4_1:
                let h = Half.f16Bits(Float.random(in: -0.05...0.05, using: &rng))
                block[0] = UInt8(h & 0xFF)
                block[1] = UInt8(h >> 8)
                if type == .q4_1 {
                    let m = Half.f16Bits(Float.random(in: -0.5...0.5, using: &rng))
                    block[2] = UInt8(m & 0xFF)
                    block[3] = UInt8(m >> 8)
                }
            default:  // mxfp4: exponents near 127
                block[0] = UInt8.random(in: 110...135, using: &rng)
            }
            // Blocks of one group share the first block's scale fields.
            let scaleBytes = type == .q4_1 ? 4 : type == .mxfp4 ? 1 : 2
            if b % pairedGroups == 0 { shared = Array(block[0..<scaleBytes]) } else { block.replaceSubrange(0..<scaleBytes, with: shared) }
            out += block
        }
        return out
    }

    func tensor(_ name: String, _ type: DType, _ shape: [Int], _ bytes: [UInt8]) throws -> Tensor {
        try Tensor(name: name, dtype: type, shape: shape, storage: MemoryStorage(bytes))
    }

    /// Q4_0, Q4_1, Q8_0 and MXFP4 → MLX → back: the same bytes, the same type, and the MLX
    /// decode equal bit for bit to ggml's decode of the blocks.
    func testBlocksRoundTripThroughMLX() throws {
        for type in [DType.q4_0, .q4_1, .q8_0, .mxfp4] {
            let shape = [3, 128]
            let bytes = randomBlocks(type, rows: 3, cols: 128)
            let t = try tensor("l.weight", type, shape, bytes)
            XCTAssertTrue(MLXBlockMoves.fits(t, groupSize: 32, scales: try MLXBlockMoves.blockScales(t)), "\(type)")
            let parts = try MLXBlockMoves.toMLX(t, base: "l", groupSize: 32)
            let w = try MLXWeight(base: "l", grid: parts.grid, packed: parts.packed, scales: parts.scales, biases: parts.biases)
            XCTAssertEqual(w.shape, shape)
            XCTAssertEqual(try MLXBlockMoves.exactBlockType(w), type)
            let back = try MLXBlockMoves.toBlocks(w, type)
            XCTAssertEqual(try back.storage.readAll(), bytes, "\(type) round trip")
            let ggml = try bytes.withUnsafeBytes { try Dequantize.toF32(type, $0) }
            let mlx = try w.decodeRows(0..<3)
            // Equal as numbers: Q4_0's (q − 8) × d gives −0 for a negative d where scale × q + bias gives +0.
            XCTAssertEqual(mlx, ggml, "\(type): MLX decode differs from ggml's")
            XCTAssertEqual(mlx.filter { $0 != 0 }.map(\.bitPattern), ggml.filter { $0 != 0 }.map(\.bitPattern))
        }
    }

    /// A group of 64 (128) is 2 (4) blocks sharing a scale: blocks that share move to it and
    /// back exactly; blocks that do not refuse it.
    func testGroupsOfSeveralBlocks() throws {
        for (type, per) in [(DType.q4_1, 2), (.q4_0, 4), (.q8_0, 2)] {
            let bytes = randomBlocks(type, rows: 2, cols: 256, pairedGroups: per)
            let t = try tensor("l.weight", type, [2, 256], bytes)
            let scales = try MLXBlockMoves.blockScales(t)
            XCTAssertTrue(MLXBlockMoves.fits(t, groupSize: 32 * per, scales: scales))
            XCTAssertFalse(MLXBlockMoves.fits(t, groupSize: 64 * per, scales: scales), "\(type) groups of \(64 * per) should not fit")
            let parts = try MLXBlockMoves.toMLX(t, base: "l", groupSize: 32 * per)
            XCTAssertEqual(parts.scales.shape, [2, 256 / (32 * per)])
            let w = try MLXWeight(base: "l", grid: parts.grid, packed: parts.packed, scales: parts.scales, biases: parts.biases)
            XCTAssertEqual(try MLXBlockMoves.toBlocks(w, try XCTUnwrap(MLXBlockMoves.exactBlockType(w))).storage.readAll(), bytes)
        }
        // Unpaired Q4_0 blocks: only groups of 32 fit.
        let t = try tensor("l.weight", .q4_0, [2, 128], randomBlocks(.q4_0, rows: 2, cols: 128))
        let s = try MLXBlockMoves.blockScales(t)
        XCTAssertTrue(MLXBlockMoves.fits(t, groupSize: 32, scales: s))
        XCTAssertFalse(MLXBlockMoves.fits(t, groupSize: 64, scales: s))
    }

    func floatGraph(_ values: [Float], shape: [Int]) throws -> TensorGraph {
        var g = try TensorGraph(tensors: [
            try tensor("model.w.weight", .f32, shape, values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }),
            try tensor("model.norm.weight", .f32, [shape.last!], [UInt8](repeating: 0, count: 4 * shape.last!)),
        ])
        g.metadata["hf.config.json"] = .string(#"{"model_type": "llama"}"#)
        return g
    }

    /// Floats packed onto an MLX grid: the config says the grid, the move summary says the
    /// largest change (and it is the true one), --exact refuses, and a symmetric 4-bit grid
    /// unpacks to Q4_0 exactly.
    func testPackFromFloats() throws {
        let values = (0..<(4 * 128)).map { _ in Float.random(in: -1...1, using: &rng) }
        let g = try floatGraph(values, shape: [4, 128])
        var moves: [TensorMove] = []
        XCTAssertThrowsError(try MLXFlavour.pack(g, FlavourRequest(exact: true), moves: &moves)) { e in
            XCTAssertTrue("\(e)".contains("model.w.weight") && "\(e)".contains("not exact"), "\(e)")
        }
        for (sym, want) in [(false, DType.q4_1), (true, .q4_0)] {
            moves = []
            let packed = try MLXFlavour.pack(g, FlavourRequest(symmetric: sym), moves: &moves)
            XCTAssertEqual(packed.tensors.map(\.name), ["model.w.weight", "model.w.scales", "model.w.biases", "model.norm.weight"])
            XCTAssertEqual(packed["model.w.scales"]?.shape, [4, 2])
            XCTAssertEqual(moves.count, 1)
            XCTAssertFalse(moves[0].exact)
            XCTAssertTrue(MLXFlavour.recognises(packed))
            let q = FlavourRegistry.config(packed)?["quantization"]
            XCTAssertEqual(q?["bits"]?.intValue, 4)
            XCTAssertEqual(q?["group_size"]?.intValue, 64)
            var back: [TensorMove] = []
            let plain = try MLXFlavour.unpack(packed, FlavourRequest(), moves: &back)
            XCTAssertEqual(plain["model.w.weight"]?.dtype, want)
            XCTAssertEqual(back.map(\.exact), [true])
            XCTAssertNil(FlavourRegistry.config(plain)?["quantization"])
            let decoded = try plain["model.w.weight"]!.dequantized(to: .f32).storage.readAll().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let change = zip(decoded, values).map { Double(abs($0 - $1)) }.max()!
            XCTAssertEqual(change, moves[0].maxChange, accuracy: 1e-9)
            XCTAssertLessThan(change, sym ? 1.0 / 7 + 0.01 : 1.0 / 15 + 0.01)
        }
    }

    /// Widths other than 4 and 8 decode (to f32 exactly) but have no block type: to f16 the
    /// move is reported with its largest change and --exact refuses it.
    func testOtherWidthsDecode() throws {
        let values = (0..<(2 * 64)).map { _ in Float.random(in: -1...1, using: &rng) }
        var inexact = 0
        for bits in [2, 3, 5, 6] {
            var moves: [TensorMove] = []
            let packed = try MLXFlavour.pack(try floatGraph(values, shape: [2, 64]), FlavourRequest(bits: bits, groupSize: 32), moves: &moves)
            XCTAssertEqual(packed["model.w.weight"]?.shape, [2, 64 * bits / 32])
            var back: [TensorMove] = []
            let f32 = try MLXFlavour.unpack(packed, FlavourRequest(), moves: &back)
            XCTAssertEqual(f32["model.w.weight"]?.dtype, .f32)
            XCTAssertEqual(back.first?.exact, true)
            let decoded = try f32["model.w.weight"]!.storage.readAll().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            XCTAssertEqual(zip(decoded, values).map { Double(abs($0 - $1)) }.max()!, moves[0].maxChange, accuracy: 1e-9, "\(bits) bits")
            back = []
            let f16 = try MLXFlavour.unpack(packed, FlavourRequest(floatType: .f16), moves: &back)
            XCTAssertEqual(back.first?.to, "F16")
            let halves = try f16["model.w.weight"]!.cast(to: .f32).storage.readAll().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let rounding = zip(halves, decoded).map { Double(abs($0 - $1)) }.max()!
            XCTAssertEqual(back.first?.maxChange, rounding)
            XCTAssertEqual(back.first?.exact, rounding == 0)
            if rounding > 0 {
                inexact += 1
                XCTAssertThrowsError(try MLXFlavour.unpack(packed, FlavourRequest(exact: true, floatType: .f16), moves: &back)) { e in
                    XCTAssertTrue("\(e)".contains("--exact refuses"), "\(e)")
                }
            }
        }
        XCTAssertGreaterThan(inexact, 0, "no width had a value f16 cannot hold: the refusal went untested")
    }

    // MARK: hostile folders

    /// A graph with one 4-bit weight (packed [rows, packedCols]) and the config `quantization`.
    func mlxGraph(
        quantization: String, packed: [Int] = [2, 16], scales: [Int]? = [2, 2], biases: [Int]? = [2, 2], extraU32: Bool = false
    ) throws -> TensorGraph {
        var ts = [try tensor("m.weight", .u32, packed, [UInt8](repeating: 0x11, count: packed.reduce(4, *)))]
        if let scales { ts.append(try tensor("m.scales", .f16, scales, [UInt8](repeating: 0, count: scales.reduce(2, *)))) }
        if let biases { ts.append(try tensor("m.biases", .f16, biases, [UInt8](repeating: 0, count: biases.reduce(2, *)))) }
        if extraU32 { ts.append(try tensor("n.weight", .u32, [2, 16], [UInt8](repeating: 0, count: 128))) }
        var g = try TensorGraph(tensors: ts)
        g.metadata["hf.config.json"] = .string(#"{"model_type": "llama", "quantization": \#(quantization)}"#)
        return g
    }

    func assertRefused(_ g: TensorGraph, _ fragments: [String], line: UInt = #line) {
        var moves: [TensorMove] = []
        XCTAssertThrowsError(try MLXFlavour.unpack(g, FlavourRequest(), moves: &moves), line: line) { e in
            for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(f)' not in: \(e)", line: line) }
        }
    }

    func testPackedWidthDisagreeingWithBits() throws {
        // 16 words × 32 bits hold 128 4-bit codes; config.json says 8 bits (64 codes → 1 group, not 2).
        assertRefused(try mlxGraph(quantization: #"{"bits": 8, "group_size": 64}"#), ["m.scales", "m.weight", "8 bits"])
        // 3 bits: 15 words (480 bits) hold 160 codes; 16 words × 32 = 512 is not a multiple of 3.
        assertRefused(try mlxGraph(quantization: #"{"bits": 3, "group_size": 32}"#), ["m.weight", "3-bit codes"])
    }

    func testGroupSizeNotDividingTheRow() throws {
        assertRefused(try mlxGraph(quantization: #"{"bits": 4, "group_size": 48}"#), ["m.weight", "128 values", "group size 48"])
        // A per-layer override is checked the same way.
        assertRefused(
            try mlxGraph(quantization: #"{"bits": 4, "group_size": 64, "m": {"bits": 4, "group_size": 96}}"#),
            ["m.weight", "group size 96"])
    }

    func testMissingScalesAndBiases() throws {
        assertRefused(try mlxGraph(quantization: #"{"bits": 4, "group_size": 64}"#, extraU32: true), ["n.weight", "n.scales", "missing"])
        assertRefused(try mlxGraph(quantization: #"{"bits": 4, "group_size": 64}"#, biases: nil), ["m.weight", "m.biases", "missing"])
        assertRefused(try mlxGraph(quantization: #"{"bits": 4, "group_size": 64}"#, scales: [2, 3]), ["m.scales", "[2, 3]"])
    }

    func testBadConfig() throws {
        assertRefused(try mlxGraph(quantization: #"{"bits": 7, "group_size": 64}"#), ["7 bits", "not an MLX affine width"])
        assertRefused(try mlxGraph(quantization: #"{"bits": 4, "group_size": 64, "mode": "nf4"}"#), ["nf4", "not supported"])
        assertRefused(try mlxGraph(quantization: #"{"bits": 4, "group_size": 64, "m": false}"#), ["m.weight", "unquantized"])
    }

    /// Through the CLI: status 2 and a message naming the folder and the tensor.
    func testCLINamesFolderAndTensor() throws {
        let dir = TestSupport.tempDir("mlx-hostile")
        let folder = dir + "/bad"
        try HFFolder.write(try mlxGraph(quantization: #"{"bits": 4, "group_size": 48}"#), to: folder)
        let r = try TestSupport.smelt(["convert", folder, dir + "/out", "--format", "hf"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains(folder) && r.stderr.contains("m.weight") && r.stderr.contains("group size 48"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
        let i = try TestSupport.smelt(["inspect", folder])
        XCTAssertTrue(i.stdout.contains("flavour:       mlx"), i.stdout)
    }

    // MARK: whole models

    /// GGUF → MLX → GGUF with --exact both ways, every tensor back byte for byte.
    func assertRoundTrip(_ gguf: String, label: String, dir: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let mlx = "\(dir)/\(label)-mlx", back = "\(dir)/\(label)-back.gguf"
        let a = try TestSupport.smelt(["convert", gguf, mlx, "--format", "mlx", "--exact"])
        XCTAssertEqual(a.status, 0, a.stderr, file: file, line: line)
        XCTAssertTrue(a.stdout.contains("exact):") && !a.stdout.contains("not exact"), a.stdout, file: file, line: line)
        let b = try TestSupport.smelt(["convert", mlx, back, "--exact"])
        XCTAssertEqual(b.status, 0, b.stderr, file: file, line: line)
        let original = try GGUFReader.read(gguf), returned = try GGUFReader.read(back)
        XCTAssertEqual(original.tensors.map(\.name), returned.tensors.map(\.name), label, file: file, line: line)
        for t in original.tensors {
            let r = try XCTUnwrap(returned[t.name], file: file, line: line)
            XCTAssertEqual(r.dtype, t.dtype, "\(label) \(t.name)", file: file, line: line)
            XCTAssertEqual(r.shape, t.shape, "\(label) \(t.name)", file: file, line: line)
            XCTAssertTrue(try r.storage.readAll() == t.storage.readAll(), "\(label) \(t.name): bytes differ", file: file, line: line)
        }
        print("\(label) → MLX → GGUF: \(original.tensors.count) tensors byte-identical")
    }

    /// The tiny Llama (golden/tiny/llama) quantized to Q4_0, Q4_1 and Q8_0 (--pure), through MLX and back.
    func testTinyLlamaRoundTripsByteIdentical() throws {
        let dir = TestSupport.tempDir("mlx-tiny")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for type in ["Q4_0", "Q4_1", "Q8_0"] {
            let gguf = "\(dir)/\(type).gguf"
            let q = try TestSupport.smelt(["quantize", TestSupport.path("golden/tiny/llama"), gguf, "--type", type, "--pure"])
            XCTAssertEqual(q.status, 0, q.stderr)
            try assertRoundTrip(gguf, label: "tiny llama \(type)", dir: dir)
        }
    }

    /// SmolLM2-135M Q4_1 (the cached file: 210 Q4_1 weights and a Q8_0 embedding) through MLX
    /// and back. (Q4_0 and Q8_0 SmolLM2 files made by `smelt quantize --pure` go the same way;
    /// the README shows the commands.)
    func testSmolLM2RoundTripByteIdentical() throws {
        let source = try TestSupport.requireModel(TestSupport.smolLM2)
        let dir = TestSupport.tempDir("mlx-smollm2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try assertRoundTrip(source, label: "SmolLM2 Q4_1", dir: dir)
    }

    /// `smelt quantize --format mlx` on the tiny Llama: rtn (config and tensors as MLX has them),
    /// --imatrix (changes codes, and is said), gptq onto the affine grid asked for (4-bit g64
    /// moves to GGUF Q4_1 exactly, 8-bit g32 --sym to Q8_0), bad --bits/--group-size refused.
    func testQuantizeFormatMLX() throws {
        let dir = TestSupport.tempDir("mlx-quantize")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tiny = TestSupport.path("golden/tiny/llama"), text = TestSupport.calibrationText
        let rtn = try TestSupport.smelt(["quantize", tiny, dir + "/rtn", "--format", "mlx", "--group-size", "32", "--bits", "5"])
        XCTAssertEqual(rtn.status, 0, rtn.stderr)
        let g = try HFFolder.read(dir + "/rtn")
        XCTAssertEqual(FlavourRegistry.name(of: g), "mlx")
        XCTAssertEqual(FlavourRegistry.config(g)?["quantization"]?["bits"]?.intValue, 5)
        XCTAssertEqual(g["model.layers.0.mlp.down_proj.weight"]?.shape, [32, 64 * 5 / 32])
        XCTAssertEqual(g["model.layers.0.mlp.down_proj.scales"]?.shape, [32, 2])

        let cal = try TestSupport.smelt(["calibrate", tiny, "--text", text, "--ctx", "32", "--chunks", "4", "--output", dir + "/imatrix.gguf"])
        XCTAssertEqual(cal.status, 0, cal.stderr)
        let im = try TestSupport.smelt(["quantize", tiny, dir + "/imat", "--format", "mlx", "--group-size", "32", "--bits", "5", "--imatrix", dir + "/imatrix.gguf"])
        XCTAssertEqual(im.status, 0, im.stderr)
        XCTAssertTrue(im.stdout.contains("importance matrix"), im.stdout)
        let gi = try HFFolder.read(dir + "/imat")
        let changed = try g.tensors.filter { $0.name.hasSuffix("proj.weight") }.filter { try $0.storage.readAll() != gi[$0.name]!.storage.readAll() }
        XCTAssertFalse(changed.isEmpty, "the importance matrix changed no code")

        // gptq onto the affine grid asked for: default 4-bit g64 (moves to GGUF Q4_1 exactly, two
        // blocks sharing each group's scale and bias), and 8-bit g32 symmetric.
        let gptq = try TestSupport.smelt([
            "quantize", tiny, dir + "/gptq", "--format", "mlx", "--method", "gptq", "--calibration-text", text, "--ctx", "32", "--chunks", "4",
        ])
        XCTAssertEqual(gptq.status, 0, gptq.stderr)
        let gg = try HFFolder.read(dir + "/gptq")
        XCTAssertEqual(FlavourRegistry.config(gg)?["quantization"]?["bits"]?.intValue, 4)
        // Rows of 64 take groups of 64; the tiny model's rows of 32 take 32 (as rtn does).
        XCTAssertEqual(gg["model.layers.0.mlp.down_proj.scales"]?.shape, [32, 1])
        XCTAssertEqual(FlavourRegistry.config(gg)?["quantization"]?["model.layers.0.mlp.down_proj"]?["group_size"]?.intValue, 64)
        let back = try TestSupport.smelt(["convert", dir + "/gptq", dir + "/gptq.gguf", "--exact"])
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertEqual(try GGUFReader.read(dir + "/gptq.gguf")["blk.0.attn_q.weight"]?.dtype, .q4_1)
        let rtn64 = try TestSupport.smelt(["quantize", tiny, dir + "/rtn64", "--format", "mlx"])
        XCTAssertEqual(rtn64.status, 0, rtn64.stderr)
        let r64 = try HFFolder.read(dir + "/rtn64")
        let differ = try gg.tensors.filter { $0.name.hasSuffix("proj.weight") }.filter { try $0.storage.readAll() != r64[$0.name]!.storage.readAll() }
        XCTAssertFalse(differ.isEmpty, "GPTQ chose the same codes as round to nearest everywhere")
        let g8 = try TestSupport.smelt([
            "quantize", tiny, dir + "/gptq8", "--format", "mlx", "--method", "gptq", "--calibration-text", text, "--ctx", "32", "--chunks", "4",
            "--bits", "8", "--group-size", "32", "--sym",
        ])
        XCTAssertEqual(g8.status, 0, g8.stderr)
        let q8 = FlavourRegistry.config(try HFFolder.read(dir + "/gptq8"))?["quantization"]
        XCTAssertEqual(q8?["bits"]?.intValue, 8)
        XCTAssertEqual(q8?["group_size"]?.intValue, 32)
        let back8 = try TestSupport.smelt(["convert", dir + "/gptq8", dir + "/gptq8.gguf", "--exact"])
        XCTAssertEqual(back8.status, 0, back8.stderr)
        XCTAssertEqual(try GGUFReader.read(dir + "/gptq8.gguf")["blk.0.attn_q.weight"]?.dtype, .q8_0)
        for (flag, value, says) in [("--bits", "7", "--bits must be"), ("--group-size", "48", "--group-size must be 32, 64 or 128")] {
            let refused = try TestSupport.smelt([
                "quantize", tiny, dir + "/x", "--format", "mlx", "--method", "gptq", "--calibration-text", text, flag, value,
            ])
            XCTAssertNotEqual(refused.status, 0)
            XCTAssertTrue(refused.stderr.contains(says), refused.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x"))
        }
    }
}
