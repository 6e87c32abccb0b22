import Foundation
import Formats
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// Exact moves between the packed-integer flavours and ggml blocks, and the GPTQ /
/// compressed-tensors writers, on the golden folders (golden/packed).
final class PackedMoveTests: XCTestCase {
    static func values(_ t: Tensor) throws -> [Float] {
        try PackedCheckpointTests.f32(t.dtype == .f32 ? t : t.dequantized(to: .f32))
    }

    static func expected(_ name: String) throws -> TensorGraph {
        try SafetensorsGraph.read(PackedCheckpointTests.folder(name) + ".expected.safetensors")
    }

    /// Unpacked for GGUF (block types kept): each weight is the block type `want` says (by
    /// folder) and decodes to exactly the reference values, or — where no block holds the grid
    /// — F16 with its move marked as such.
    func testBlockMovesDecodeToTheReferenceValues() throws {
        let cases: [(String, Set<DType>)] = [
            ("gptq-v1-sym4-g32", [.q4_0]), ("ct-sym4-g32", [.q4_0]), ("gptq-v1-sym8-rows", [.q8_0]), ("ct-sym8-g32", [.q8_0]),
            // Scales of 7 significant bits: every −scale·zero is an f16 value, so Q4_1 holds them.
            ("gptq-v2-asym4-g32-coarse", [.q4_1]), ("awq-g32-coarse", [.q4_1]),
            // Full f16 scales: −scale·zero needs more bits in nearly every group, so F16.
            ("gptq-v1-asym4-g32", [.q4_1, .f16]), ("ct-asym4-g32", [.q4_1, .f16]), ("awq-g32", [.q4_1, .f16]),
            ("gptq-v2-asym4-g16-descact", [.f16]),
        ]
        for (name, want) in cases {
            var moves: [TensorMove] = []
            let graph = try PackedCheckpointTests.unpacked(PackedCheckpointTests.folder(name), keepBlocks: true, moves: &moves)
            let expected = try Self.expected(name)
            XCTAssertEqual(moves.count, expected.tensors.count, name)
            var blocks = 0
            for e in expected.tensors {
                let t = try XCTUnwrap(graph[e.name])
                XCTAssertTrue(want.contains(t.dtype), "\(name) \(e.name): \(t.dtype)")
                let move = try XCTUnwrap(moves.first { $0.tensor == e.name })
                XCTAssertEqual(move.to, t.dtype.displayName)
                let got = try Self.values(t), ref = try PackedCheckpointTests.f32(e)
                if t.dtype == .f16 {
                    let change = zip(got, ref).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertEqual(Double(change), move.maxChange, "\(name) \(e.name): summary's largest change")
                    XCTAssertEqual(move.exact, change == 0)
                } else {
                    blocks += 1
                    XCTAssertTrue(move.exact)
                    XCTAssertEqual(got, ref, "\(name) \(e.name): \(t.dtype.displayName) does not decode to the source's values")
                }
            }
            if !want.contains(.f16) { XCTAssertEqual(blocks, expected.tensors.count, name) }
        }
    }

    func testExactTypeReasons() throws {
        let l = GroupQuantizedLayout(rows: 1, cols: 64, bits: 4, groupSize: 64, groups: 1, symmetric: false)
        func parts(_ s: Float, _ z: Int32, _ g: [Int32]? = nil) -> GroupQuantizedParts {
            GroupQuantizedParts(scales: [s], zeros: [z], groupIndex: g, scaleType: .f16)
        }
        XCTAssertEqual(PackedBlockMoves.exactType(l, parts(0.5, 8)).type, .q4_0)
        XCTAssertEqual(PackedBlockMoves.exactType(l, parts(0.5, 3)).type, .q4_1)
        // 0.0999755859375 is an f16 value; times 7 it needs 13 significant bits, more than f16 has.
        let s: Float = 0.0999755859375
        XCTAssertTrue(PackedBlockMoves.exactType(l, parts(s, 7)).reason.contains("not an f16 value"))
        XCTAssertNil(PackedBlockMoves.exactType(l, parts(s, 7)).type)
        var reversed = Array(0..<64).map { _ in Int32(0) }
        reversed[0] = 0
        let l2 = GroupQuantizedLayout(rows: 1, cols: 64, bits: 4, groupSize: 32, groups: 2, symmetric: true)
        reversed = (0..<64).map { Int32(1 - $0 / 32) }
        XCTAssertTrue(PackedBlockMoves.exactType(l2, GroupQuantizedParts(scales: [1, 1], zeros: [8, 8], groupIndex: reversed, scaleType: .f16)).reason.contains("act order"))
        let l3 = GroupQuantizedLayout(rows: 1, cols: 64, bits: 4, groupSize: 16, groups: 4, symmetric: true)
        XCTAssertNil(PackedBlockMoves.exactType(l3, GroupQuantizedParts(scales: [1, 1, 1, 1], zeros: [8, 8, 8, 8], groupIndex: nil, scaleType: .f16)).type)
    }

    /// Q4_0 blocks back onto a GPTQ grid: the codes and scales of the source come back.
    func testBlocksBackToGroups() throws {
        var moves: [TensorMove] = []
        let blocks = try PackedCheckpointTests.unpacked(PackedCheckpointTests.folder("gptq-v1-sym4-g32"), keepBlocks: true, moves: &moves)
        let lifted = try PackedCheckpointTests.unpacked(PackedCheckpointTests.folder("gptq-v1-sym4-g32"))
        let name = "model.layers.1.mlp.down_proj.weight"
        let back = try XCTUnwrap(PackedBlockMoves.fromBlocks(try XCTUnwrap(blocks[name]), grid: IntGroupGrid(bits: 4, groupSize: 32, symmetric: true)))
        let source = try XCTUnwrap(lifted[name]?.groupQuantizedSource)
        XCTAssertEqual(back.storedCodes, try source.codes())
        XCTAssertEqual(back.storedParts.scales, try source.parts().scales)
        XCTAssertEqual(back.storedParts.zeros, try source.parts().zeros)
        // A grid of 64 would need two blocks with the same scale: these differ, so no exact move.
        XCTAssertNil(try PackedBlockMoves.fromBlocks(try XCTUnwrap(blocks[name]), grid: IntGroupGrid(bits: 4, groupSize: 64, symmetric: true)))
    }

    // MARK: writers

    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("packed-moves") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// `source` unpacked (blocks kept, as `convert` does between flavours), packed into `flavour`
    /// on `request`'s grid, written, read back and unpacked to f32.
    func roundTrip(_ source: String, into flavour: any FolderFlavour.Type, _ request: FlavourRequest) throws -> (TensorGraph, [TensorMove]) {
        let raw = try HFFolder.read(PackedCheckpointTests.folder(source))
        var moves: [TensorMove] = []
        var unpackRequest = request
        unpackRequest.keepBlocks = true
        let plain = try XCTUnwrap(FlavourRegistry.detect(raw)).unpack(raw, unpackRequest, moves: &moves)
        var packMoves: [TensorMove] = []
        let packed = try flavour.pack(plain, request, moves: &packMoves)
        let out = "\(dir)/\(source)-\(flavour.name)"
        try HFFolder.write(packed, to: out)
        let back = try HFFolder.read(out)
        XCTAssertEqual(FlavourRegistry.name(of: back), flavour.name)
        return (try PackedCheckpointTests.unpacked(out), packMoves)
    }

    func assertSameValues(_ graph: TensorGraph, as reference: String, line: UInt = #line) throws {
        for e in try Self.expected(reference).tensors {
            let t = try XCTUnwrap(graph[e.name], line: line)
            XCTAssertEqual(try Self.values(t), try PackedCheckpointTests.f32(e), "\(e.name)", line: line)
        }
    }

    func testCompressedTensorsToGPTQAndBackExactly() throws {
        let request = FlavourRequest(bits: 4, groupSize: 32, symmetric: true, exact: true)
        let (gptq, moves) = try roundTrip("ct-sym4-g32", into: GPTQFlavour.self, request)
        XCTAssertEqual(moves.count, 14)
        XCTAssertTrue(moves.allSatisfy(\.exact))
        try assertSameValues(gptq, as: "ct-sym4-g32")
        let (ct, back) = try roundTrip("gptq-v1-sym4-g32", into: CompressedTensorsFlavour.self, request)
        XCTAssertTrue(back.allSatisfy(\.exact))
        try assertSameValues(ct, as: "gptq-v1-sym4-g32")
    }

    /// Asymmetric and act-order sources keep their codes when the grid is the same (no block type
    /// in between: the lifted source itself is written).
    func testAsymmetricAndActOrderKeepTheirCodes() throws {
        let asym = FlavourRequest(bits: 4, groupSize: 32, symmetric: false, exact: true, keepBlocks: false)
        let (ct, moves) = try roundTripLifted("gptq-v1-asym4-g32", into: CompressedTensorsFlavour.self, asym)
        XCTAssertTrue(moves.allSatisfy(\.exact))
        try assertSameValues(ct, as: "gptq-v1-asym4-g32")
        let (awq, awqMoves) = try roundTripLifted("awq-g32", into: GPTQFlavour.self, asym)
        XCTAssertTrue(awqMoves.allSatisfy(\.exact))
        try assertSameValues(awq, as: "awq-g32")
        let (v1, actMoves) = try roundTripLifted(
            "gptq-v2-asym4-g16-descact", into: GPTQFlavour.self, FlavourRequest(bits: 4, groupSize: 16, symmetric: false, exact: true))
        XCTAssertTrue(actMoves.allSatisfy(\.exact))
        try assertSameValues(v1, as: "gptq-v2-asym4-g16-descact")
        // compressed-tensors is written without g_idx: act-order groups cannot go there exactly.
        XCTAssertThrowsError(try roundTripLifted(
            "gptq-v2-asym4-g16-descact", into: CompressedTensorsFlavour.self, FlavourRequest(bits: 4, groupSize: 16, symmetric: false, exact: true))
        ) { error in
            XCTAssertTrue("\(error)".contains("is not exact"), "\(error)")
        }
    }

    func roundTripLifted(_ source: String, into flavour: any FolderFlavour.Type, _ request: FlavourRequest) throws -> (TensorGraph, [TensorMove]) {
        let plain = try PackedCheckpointTests.unpacked(PackedCheckpointTests.folder(source))
        var moves: [TensorMove] = []
        let packed = try flavour.pack(plain, request, moves: &moves)
        let out = "\(dir)/\(source)-\(flavour.name)-lifted"
        try HFFolder.write(packed, to: out)
        return (try PackedCheckpointTests.unpacked(out), moves)
    }

    /// Floats onto a grid: round to nearest, the summary's largest change is the real one, and
    /// the file decodes to what the quantizer decided.
    func testFloatsRoundedOntoTheGrid() throws {
        let raw = try HFFolder.read(TestSupport.path("golden/tiny/llama"))
        for flavour in [GPTQFlavour.self, CompressedTensorsFlavour.self] as [any FolderFlavour.Type] {
            var moves: [TensorMove] = []
            let request = FlavourRequest(bits: 4, groupSize: 32, symmetric: false)
            let packed = try flavour.pack(raw, request, moves: &moves)
            XCTAssertEqual(moves.count, 14)
            let out = "\(dir)/floats-\(flavour.name)"
            try HFFolder.write(packed, to: out)
            let back = try PackedCheckpointTests.unpacked(out)
            for m in moves {
                let original = try PackedCheckpointTests.f32(try XCTUnwrap(raw[m.tensor]))
                let decoded = try Self.values(try XCTUnwrap(back[m.tensor]))
                let change = zip(original, decoded).map { abs($0 - $1) }.max() ?? 0
                XCTAssertEqual(Double(change), m.maxChange, m.tensor)
                XCTAssertFalse(m.exact)
                XCTAssertGreaterThan(change, 0)
            }
            XCTAssertThrowsError(try flavour.pack(raw, FlavourRequest(bits: 4, groupSize: 32, exact: true), moves: &moves))
        }
    }
}

/// The flavours through `smelt convert` and `smelt perplexity`.
final class PackedCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("packed-cli") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func ppl(_ model: String, _ text: String) throws -> String {
        let r = try TestSupport.smelt(["perplexity", model, "--text", text, "--ctx", "32", "--chunks", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout.split(separator: "\n").first { $0.contains("PPL =") }.map(String.init) ?? "(none)"
    }

    func testGPTQFolderToGGUFIsExactAndScoresTheSame() throws {
        let text = "\(dir)/text.txt"
        let corpus = try String(contentsOfFile: TestSupport.wikiText, encoding: .utf8)
        try String(corpus.prefix(6000)).write(toFile: text, atomically: true, encoding: .utf8)
        for name in ["gptq-v1-sym4-g32", "ct-sym8-g32", "gptq-v2-asym4-g32-coarse"] {
            let folder = PackedCheckpointTests.folder(name)
            let out = "\(dir)/\(name).gguf"
            let r = try TestSupport.smelt(["convert", folder, out, "--exact", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("\"exact\" : true") || r.stdout.contains("\"exact\": true"), r.stdout)
            XCTAssertFalse(r.stdout.contains("\"exact\": false"), r.stdout)
            XCTAssertEqual(try ppl(folder, text), try ppl(out, text), name)
        }
        // Act-order groups never move exactly: --exact refuses, naming the tensor.
        let refused = try TestSupport.smelt(["convert", PackedCheckpointTests.folder("gptq-v2-asym4-g16-descact"), "\(dir)/x.gguf", "--exact"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("act-order"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--exact refuses it"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/x.gguf"))
    }

    /// quantize --format: GPTQ onto int4 groups of 32 from a float folder, written as GPTQ, moved
    /// to GGUF exactly (Q4_0) and scored the same; asymmetric compressed-tensors from rtn.
    func testQuantizeFormat() throws {
        let text = "\(dir)/text.txt"
        let corpus = try String(contentsOfFile: TestSupport.wikiText, encoding: .utf8)
        try String(corpus.prefix(6000)).write(toFile: text, atomically: true, encoding: .utf8)
        let tiny = TestSupport.path("golden/tiny/llama")
        let gptq = "\(dir)/gptq"
        var r = try TestSupport.smelt([
            "quantize", tiny, gptq, "--format", "gptq", "--group-size", "32", "--method", "gptq", "--calibration-text", text,
            "--ctx", "32", "--chunks", "4", "--threads", "2", "--json",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"quantized_tensors\": 14"), r.stdout)
        r = try TestSupport.smelt(["inspect", gptq, "--json"])
        XCTAssertTrue(r.stdout.contains("\"flavour\": \"gptq\""), r.stdout)
        r = try TestSupport.smelt(["convert", gptq, "\(dir)/gptq.gguf", "--exact"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("14 × GPTQ v1 int4 g32 (F16 scales) → Q4_0, exact"), r.stdout)
        XCTAssertEqual(try ppl(gptq, text), try ppl("\(dir)/gptq.gguf", text))
        let ct = "\(dir)/ct"
        r = try TestSupport.smelt(["quantize", tiny, ct, "--format", "compressed-tensors", "--group-size", "32", "--asym"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(FlavourRegistry.name(of: try HFFolder.read(ct)), "compressed-tensors")
        // --imatrix: every linear weight gets the importance-weighted search.
        r = try TestSupport.smelt(["calibrate", tiny, "--text", text, "--ctx", "32", "--chunks", "4", "--output", "\(dir)/im.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt(["quantize", tiny, "\(dir)/imq", "--format", "gptq", "--group-size", "32", "--imatrix", "\(dir)/im.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("rtn + importance matrix (14 tensors)"), r.stdout)
        r = try TestSupport.smelt(["quantize", tiny, "\(dir)/bad", "--format", "compressed-tensors", "--group-size", "48"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("group size to divide the row: 48 does not divide 64"), r.stderr)
        r = try TestSupport.smelt(["quantize", tiny, "\(dir)/bad2", "--format", "gptq", "--type", "q4_0"])
        XCTAssertEqual(r.status, 64)
    }

    func testHostileFolderErrorNamesTheFolderAndTensor() throws {
        let bad = "\(dir)/bad"
        try FileManager.default.copyItem(atPath: PackedCheckpointTests.folder("gptq-v1-sym4-g32"), toPath: bad)
        let config = try String(contentsOfFile: bad + "/config.json", encoding: .utf8)
        try config.replacingOccurrences(of: "\"bits\": 4", with: "\"bits\": 8").write(toFile: bad + "/config.json", atomically: true, encoding: .utf8)
        let r = try TestSupport.smelt(["convert", bad, "\(dir)/bad.gguf"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains(bad), r.stderr)
        XCTAssertTrue(r.stderr.contains("model.layers.0.mlp.down_proj.qzeros"), r.stderr)
    }
}
