import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// GPTQ, compressed-tensors and AWQ folders (golden/packed, made by
/// golden/make_packed_checkpoints.py): every lifted weight decodes to exactly the f32 values the
/// reference implementations give, and hostile variants are refused naming the tensor.
final class PackedCheckpointTests: XCTestCase {
    static let folders: [(name: String, flavour: String, format: String)] = [
        ("gptq-v1-sym4-g32", "gptq", "GPTQ v1 int4"),
        ("gptq-v2-asym4-g16-descact", "gptq", "GPTQ v2 int4"),
        ("gptq-v1-asym4-g32", "gptq", "GPTQ v1 int4"),
        ("gptq-v1-sym8-rows", "gptq", "GPTQ v1 int8"),
        ("ct-sym4-g32", "compressed-tensors", "compressed-tensors int4"),
        ("ct-asym4-g32", "compressed-tensors", "compressed-tensors int4"),
        ("ct-sym8-g32", "compressed-tensors", "compressed-tensors int8"),
        ("awq-g32", "awq", "AWQ GEMM int4"),
        ("gptq-v2-asym4-g32-coarse", "gptq", "GPTQ v2 int4"),
        ("awq-g32-coarse", "awq", "AWQ GEMM int4"),
        ("gptq-autogptq-asym4-g32", "gptq", "GPTQ v1 int4"),
    ]

    static func folder(_ name: String) -> String { TestSupport.path("golden/packed/\(name)") }

    /// The folder read and unpacked by its flavour: weights as f32 over their packed source, or
    /// (`keepBlocks`) as the ggml block types that hold them exactly, F16 otherwise.
    static func unpacked(_ path: String, keepBlocks: Bool = false, moves: inout [TensorMove]) throws -> TensorGraph {
        let raw = try HFFolder.read(path)
        guard let flavour = FlavourRegistry.detect(raw) else { throw FlavourError.badConfig(reason: "no flavour recognised") }
        return try flavour.unpack(raw, FlavourRequest(keepBlocks: keepBlocks, floatType: keepBlocks ? .f16 : .f32), moves: &moves)
    }

    static func unpacked(_ path: String) throws -> TensorGraph {
        var moves: [TensorMove] = []
        return try unpacked(path, moves: &moves)
    }

    static func f32(_ t: Tensor) throws -> [Float] {
        let bytes = try t.storage.readAll()
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func testEveryFolderDecodesToTheReferenceValues() throws {
        for (name, flavour, format) in Self.folders {
            XCTAssertEqual(FlavourRegistry.name(of: try HFFolder.read(Self.folder(name))), flavour, name)
            let graph = try Self.unpacked(Self.folder(name))
            let expected = try SafetensorsGraph.read(Self.folder(name) + ".expected.safetensors")
            // quantization_config leaves config.json: a float folder written from this graph
            // must not claim to be quantized.
            let config = graph.metadata["hf.config.json"]?.stringValue ?? ""
            XCTAssertFalse(config.contains("quantization_config"), name)
            XCTAssertNil(graph.metadata["hf.quantize_config.json"], name)
            XCTAssertEqual(expected.tensors.count, 14, name)
            for e in expected.tensors {
                let t = try XCTUnwrap(graph[e.name], "\(name): \(e.name) not lifted")
                XCTAssertEqual(t.dtype, .f32)
                XCTAssertEqual(t.shape, e.shape, "\(name) \(e.name)")
                XCTAssertEqual(t.groupQuantizedSource?.format, format, "\(name) \(e.name)")
                let got = try Self.f32(t), want = try Self.f32(e)
                let differing = zip(got, want).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
                XCTAssertEqual(got.count, want.count)
                XCTAssertTrue(
                    differing.isEmpty,
                    "\(name) \(e.name): \(differing.count) values differ from the reference decode, first at \(differing.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")")
            }
            // No packed part survives; the float tensors are untouched.
            for t in graph.tensors {
                for part in ["qweight", "qzeros", "scales", "g_idx", "weight_packed", "weight_scale", "weight_zero_point", "weight_shape"] {
                    XCTAssertFalse(t.name.hasSuffix("." + part), "\(name): \(t.name) left in the graph")
                }
            }
            XCTAssertNotNil(graph["model.embed_tokens.weight"])
            XCTAssertNotNil(graph["model.layers.1.post_attention_layernorm.weight"])
        }
    }

    func testDescActGroupsAreKeptAsTheyAre() throws {
        let graph = try Self.unpacked(Self.folder("gptq-v2-asym4-g16-descact"))
        let source = try XCTUnwrap(graph["model.layers.0.mlp.down_proj.weight"]?.groupQuantizedSource)
        let parts = try source.parts()
        XCTAssertNotNil(parts.groupIndex)
        XCTAssertFalse(parts.isContiguous(groupSize: source.layout.groupSize))
        let sym = try XCTUnwrap(Self.unpacked(Self.folder("gptq-v1-sym4-g32"))["model.layers.0.mlp.down_proj.weight"]?.groupQuantizedSource)
        XCTAssertNil(try sym.parts().groupIndex, "a g_idx equal to i / group_size is contiguous")
        XCTAssertEqual(Set(try sym.parts().zeros), [8], "GPTQ v1 symmetric: stored 7, read 8")
    }

    // MARK: hostile variants

    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("packed-hostile") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A copy of a golden folder with its tensors and config changed (`quantizeConfig`: AutoGPTQ's
    /// `quantize_config.json`, given the source's or `nil`; written unless it returns `nil`).
    func variant(
        _ name: String, config: (String) -> String = { $0 }, quantizeConfig: (String?) -> String? = { $0 },
        tensors: (inout [String: Tensor], inout [String]) throws -> Void = { _, _ in }
    ) throws -> String {
        let src = Self.folder(name)
        let out = "\(dir)/\(name)-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let text = try String(contentsOfFile: src + "/config.json", encoding: .utf8)
        try config(text).write(toFile: out + "/config.json", atomically: true, encoding: .utf8)
        let side = try? String(contentsOfFile: src + "/quantize_config.json", encoding: .utf8)
        if let q = quantizeConfig(side) { try q.write(toFile: out + "/quantize_config.json", atomically: true, encoding: .utf8) }
        let raw = try SafetensorsGraph.read(src + "/model.safetensors")
        var byName = Dictionary(uniqueKeysWithValues: raw.tensors.map { ($0.name, $0) })
        var order = raw.tensors.map(\.name)
        try tensors(&byName, &order)
        let graph = try TensorGraph(tensors: order.compactMap { byName[$0] })
        try SafetensorsWriter.write(graph, to: out + "/model.safetensors")
        return out
    }

    func assertRefused(_ path: String, _ fragments: [String], line: UInt = #line) {
        XCTAssertThrowsError(try Self.unpacked(path), line: line) { error in
            let message = "\(error)"
            for f in fragments { XCTAssertTrue(message.contains(f), "'\(f)' not in: \(message)", line: line) }
        }
    }

    static func int32Tensor(_ name: String, _ values: [Int32], shape: [Int]) throws -> Tensor {
        try Tensor(name: name, dtype: .i32, shape: shape, storage: MemoryStorage(values.withUnsafeBytes { Array($0) }))
    }

    func testGPTQBitsDisagreeingWithThePacking() throws {
        let p = try variant("gptq-v1-sym4-g32", config: { $0.replacingOccurrences(of: "\"bits\": 4", with: "\"bits\": 8") })
        assertRefused(p, ["model.layers.0.mlp.down_proj.qzeros", "8-bit codes", "expected [groups, 8]"])
    }

    func testGPTQGroupSizeNotDividingTheRow() throws {
        let p = try variant("gptq-v1-sym4-g32", config: { $0.replacingOccurrences(of: "\"group_size\": 32", with: "\"group_size\": 24") })
        assertRefused(p, ["model.layers.0.mlp.down_proj.scales", "group size 24 over 64 input columns makes 3 groups, but it holds 2"])
    }

    func testGPTQGroupIndexOutOfRange() throws {
        let p = try variant("gptq-v2-asym4-g16-descact", tensors: { tensors, _ in
            let name = "model.layers.1.mlp.down_proj.g_idx"
            var values = try PackedCheckpoint_values(tensors[name]!)
            values[5] = 9
            tensors[name] = try Self.int32Tensor(name, values, shape: [64])
        })
        assertRefused(p, ["model.layers.1.mlp.down_proj.g_idx", "column 5 names group 9", "there are 4 groups"])
    }

    func testGPTQMissingScales() throws {
        let p = try variant("gptq-v1-sym4-g32", tensors: { tensors, _ in
            tensors["model.layers.1.self_attn.o_proj.scales"] = nil
        })
        assertRefused(p, ["'model.layers.1.self_attn.o_proj.scales' is missing", "model.layers.1.self_attn.o_proj.qweight"])
    }

    func testGPTQUnsupportedFormatAndBits() throws {
        let marlin = try variant("gptq-v1-sym4-g32", config: { $0.replacingOccurrences(of: "\"checkpoint_format\": \"gptq\"", with: "\"checkpoint_format\": \"marlin\"") })
        assertRefused(marlin, ["checkpoint_format", "marlin"])
        let three = try variant("gptq-v1-sym4-g32", config: { $0.replacingOccurrences(of: "\"bits\": 4", with: "\"bits\": 3") })
        assertRefused(three, ["bits = 3", "only 2, 4 and 8 bits"])
    }

    // MARK: AutoGPTQ's quantize_config.json

    /// `gptq-autogptq-asym4-g32` is `gptq-v1-asym4-g32` with its settings in `quantize_config.json`
    /// (asymmetric, no `checkpoint_format`: v1 implied); `sym` read from there decides the zeros.
    func testAutoGPTQQuantizeConfigAlone() throws {
        let raw = try HFFolder.read(Self.folder("gptq-autogptq-asym4-g32"))
        XCTAssertNil(FlavourRegistry.config(raw)?["quantization_config"])
        let parts = try XCTUnwrap(Self.unpacked(Self.folder("gptq-autogptq-asym4-g32"))["model.layers.0.mlp.down_proj.weight"]?.groupQuantizedSource).parts()
        XCTAssertGreaterThan(Set(parts.zeros).count, 1, "asymmetric zero points")
        // Written back as GPTQ, config.json carries the settings and the side file is gone.
        let out = dir + "/rewritten"
        var moves: [TensorMove] = []
        let packed = try GPTQFlavour.pack(try Self.unpacked(Self.folder("gptq-autogptq-asym4-g32")), FlavourRequest(bits: 4, groupSize: 32, symmetric: false), moves: &moves)
        try HFFolder.write(packed, to: out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/quantize_config.json"))
        XCTAssertEqual(PackedCheckpoint.settings(try HFFolder.read(out))?.method, "gptq")
    }

    /// Both files, agreeing: config.json's settings are used and the decode is the reference one.
    func testAutoGPTQQuantizeConfigAgreeingWithConfigJSON() throws {
        let both = try variant("gptq-v1-asym4-g32", quantizeConfig: { _ in
            #"{"bits": 4.0, "group_size": 32, "desc_act": false, "sym": false, "checkpoint_format": "GPTQ", "damp_percent": 0.01}"#
        })
        let got = try XCTUnwrap(Self.unpacked(both)["model.layers.1.self_attn.q_proj.weight"])
        let want = try XCTUnwrap(SafetensorsGraph.read(Self.folder("gptq-v1-asym4-g32") + ".expected.safetensors")["model.layers.1.self_attn.q_proj.weight"])
        XCTAssertEqual(try Self.f32(got).map(\.bitPattern), try Self.f32(want).map(\.bitPattern))
    }

    /// Both files, disagreeing on one setting: refused, naming both files, the key and both values.
    func testAutoGPTQQuantizeConfigDisagreeingWithConfigJSON() throws {
        let sym = try variant("gptq-v1-asym4-g32", quantizeConfig: { _ in #"{"bits": 4, "group_size": 32, "sym": true}"# })
        assertRefused(sym, ["config.json quantization_config sym = false", "quantize_config.json sym = true", "disagree"])
        let group = try variant("gptq-autogptq-asym4-g32", config: { text in
            text.replacingOccurrences(of: "\"vocab_size\": 320", with: #""vocab_size": 320, "quantization_config": {"bits": 4, "group_size": 64, "sym": false, "quant_method": "gptq"}"#)
        })
        assertRefused(group, ["group_size = 64", "quantize_config.json group_size = 32"])
        let broken = try variant("gptq-autogptq-asym4-g32", quantizeConfig: { _ in "{\"bits\": 4," })
        XCTAssertThrowsError(try HFFolder.read(broken)) { XCTAssertTrue("\($0)".contains("quantize_config.json"), "\($0)") }
    }

    func testCompressedTensorsBitsDisagreeingWithThePacking() throws {
        let p = try variant("ct-sym4-g32", config: { $0.replacingOccurrences(of: "\"num_bits\": 4", with: "\"num_bits\": 8") })
        assertRefused(p, ["model.layers.0.mlp.down_proj.weight_packed", "8-bit codes", "expected [32, 16] for weight_shape [32, 64]"])
    }

    func testCompressedTensorsGroupSizeAndMissingScale() throws {
        let gs = try variant("ct-asym4-g32", config: { $0.replacingOccurrences(of: "\"group_size\": 32", with: "\"group_size\": 24") })
        assertRefused(gs, ["model.layers.0.mlp.down_proj.weight_packed", "group size 24 does not divide its 64 input columns"])
        let missing = try variant("ct-sym4-g32", tensors: { tensors, _ in tensors["model.layers.0.mlp.up_proj.weight_scale"] = nil })
        assertRefused(missing, ["'model.layers.0.mlp.up_proj.weight_scale' is missing"])
        let zp = try variant("ct-asym4-g32", tensors: { tensors, _ in tensors["model.layers.0.mlp.up_proj.weight_zero_point"] = nil })
        assertRefused(zp, ["'model.layers.0.mlp.up_proj.weight_zero_point' is missing"])
    }

    func testAWQHostile() throws {
        let gs = try variant("awq-g32", config: { $0.replacingOccurrences(of: "\"group_size\": 32", with: "\"group_size\": 24") })
        assertRefused(gs, ["qweight", "group size 24 does not divide"])
        let missing = try variant("awq-g32", tensors: { tensors, _ in tensors["model.layers.0.self_attn.k_proj.scales"] = nil })
        assertRefused(missing, ["'model.layers.0.self_attn.k_proj.scales' is missing"])
        let width = try variant("awq-g32", tensors: { tensors, _ in
            let name = "model.layers.0.self_attn.q_proj.qzeros"
            tensors[name] = try Self.int32Tensor(name, [Int32](repeating: 0, count: 8), shape: [1, 8])
        })
        assertRefused(width, ["model.layers.0.self_attn.q_proj.qzeros", "expected [1, 4]"])
    }
}

/// The values of an integer tensor (test helper).
func PackedCheckpoint_values(_ t: Tensor) throws -> [Int32] {
    let bytes = try t.storage.readAll()
    return bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
}
