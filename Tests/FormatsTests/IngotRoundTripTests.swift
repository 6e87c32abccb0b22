import Formats
import Foundation
import TensorGraph
import TestSupport
import XCTest

/// Lossless round trips through Ingot with the golden files and the real models: safetensors
/// (f32, f16, bf16 and every other safetensors type) → Ingot → safetensors byte for byte, GGUF
/// with quantized tensors → Ingot → GGUF with identical tensor bytes and metadata, by library
/// and by `smelt`.
final class IngotRoundTripTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestSupport.tempDir("ingot-rt") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func bytes(_ path: String) throws -> [UInt8] { try IngotFixtures.readFile(path) }

    /// `graph` → Ingot → graph: the same graph; and `write(copy)` equals `write(graph)`.
    @discardableResult
    func throughIngot(_ graph: TensorGraph, name: String, source: String, level: Int = 3) throws -> TensorGraph {
        let path = "\(dir)/\(name).ingot"
        try IngotWriter.write(graph, to: path, level: level, sourceFormat: source, replace: true)
        let back = try IngotReader.read(path)
        try IngotFixtures.assertSame(graph, back)
        XCTAssertTrue(try IngotReader.open(path).verify().ok)
        return back
    }

    func testGoldenSafetensorsFiles() throws {
        for input in ["golden/safetensors/mixed.safetensors", "golden/safetensors/sharded/model.safetensors.index.json"] {
            let graph = try SafetensorsGraph.read(TestSupport.path(input))
            let back = try throughIngot(graph, name: "golden", source: "safetensors")
            try SafetensorsWriter.write(graph, to: "\(dir)/direct.safetensors", replace: true)
            try SafetensorsWriter.write(back, to: "\(dir)/via.safetensors", replace: true)
            XCTAssertEqual(try bytes("\(dir)/direct.safetensors"), try bytes("\(dir)/via.safetensors"), input)
        }
        // The golden file was written by the Python package with the layout our writer uses.
        let golden = TestSupport.path("golden/safetensors/mixed.safetensors")
        let back = try IngotReader.read("\(dir)/golden.ingot")
        _ = back
        let g = try SafetensorsGraph.read(golden)
        try IngotWriter.write(g, to: "\(dir)/m.ingot")
        try SafetensorsWriter.write(try IngotReader.read("\(dir)/m.ingot"), to: "\(dir)/m.safetensors")
        try IngotFixtures.assertSame(g, try SafetensorsGraph.read("\(dir)/m.safetensors"))
    }

    /// From `IngotWriter.layoutTrialFromLevel` on, a float tensor whose values repeat within
    /// blocks (as weights dequantized from Q4_1 do) is stored as plain bytes, which the slow
    /// levels' long matches compress better than byte planes; weights-like floats keep their
    /// planes; at the default level every float tensor keeps its planes. All round-trip exactly.
    func testLayoutTrialAtSlowLevels() throws {
        let n = 64 * 512
        let raw = IngotFixtures.bytes(n + 8 * (n / 32), seed: 9)
        var dequantized = [Float](repeating: 0, count: n)
        for b in 0..<(n / 32) {
            let d = 0.0005 + Float(raw[n + 8 * b]) / 2e4, m = -8 * d + Float(raw[n + 8 * b + 1]) / 1e6
            for i in 0..<32 { dequantized[b * 32 + i] = d * Float(raw[b * 32 + i] & 15) + m }
        }
        let graph = try TensorGraph(
            tensors: [
                try IngotFixtures.tensor("dequantized", .f32, [64, 512], IngotFixtures.floatBytes(dequantized, as: .f32)),
                try IngotFixtures.tensor("trained", .f32, [64, 512], IngotFixtures.floatBytes(IngotFixtures.floats(n, seed: 3), as: .f32)),
            ])
        for (level, plain) in [(19, true), (IngotWriter.layoutTrialFromLevel - 1, false), (3, false)] {
            let path = "\(dir)/trial-\(level).ingot"
            try IngotWriter.write(graph, to: path, level: level, sourceFormat: "safetensors")
            let file = try IngotReader.open(path)
            XCTAssertEqual(file.tensors[0].layout.isIdentity, plain, "dequantized-like floats at level \(level)")
            XCTAssertFalse(file.tensors[1].layout.isIdentity, "weights-like floats at level \(level)")
            try IngotFixtures.assertSame(graph, try IngotReader.read(path))
            XCTAssertTrue(try file.verify().ok)
        }
    }

    func testGoldenGGUFFiles() throws {
        for input in ["golden/gguf/mixed.gguf", "golden/gguf/v2.gguf", "golden/gguf/split-00002-of-00003.gguf"] {
            let graph = try GGUFReader.read(TestSupport.path(input))
            let back = try throughIngot(graph, name: "g", source: "gguf")
            try GGUFWriter.write(graph, to: "\(dir)/direct.gguf", replace: true)
            try GGUFWriter.write(back, to: "\(dir)/via.gguf", replace: true)
            XCTAssertEqual(try bytes("\(dir)/direct.gguf"), try bytes("\(dir)/via.gguf"), input)
        }
    }

    func testBERTFloat32Float16BFloat16() throws {
        let model = TestSupport.miniLM + "/model.safetensors"
        try TestSupport.requireModel(model)
        let original = try SafetensorsGraph.read(model)
        for dtype in [DType.f32, .f16, .bf16] {
            var graph = original
            if dtype != .f32 {
                try graph.mapTensors { t in t.dtype == .f32 ? try t.cast(to: dtype) : t }
            }
            let sf = "\(dir)/bert.\(dtype.rawValue).safetensors"
            try SafetensorsWriter.write(graph, to: sf)
            let ingot = "\(dir)/bert.\(dtype.rawValue).ingot"
            let summary = try IngotWriter.write(try SafetensorsGraph.read(sf), to: ingot, sourceFormat: "safetensors")
            let out = "\(dir)/bert.\(dtype.rawValue).back.safetensors"
            try SafetensorsWriter.write(try IngotReader.read(ingot), to: out)
            XCTAssertTrue(try bytes(sf) == bytes(out), "\(dtype): safetensors → Ingot → safetensors differs")
            let ratio = Double(summary.fileBytes) / Double(Paths.fileSize(sf)!)
            print("BERT \(dtype.rawValue): Ingot is \(String(format: "%.4f", ratio)) of safetensors")
            switch dtype {
            case .f32: XCTAssertLessThan(ratio, 0.85)
            case .bf16: XCTAssertLessThan(ratio, 0.67)
            default: XCTAssertLessThan(ratio, 0.95)
            }
        }
        XCTAssertTrue(try bytes(model) == bytes("\(dir)/bert.f32.back.safetensors"), "the original file comes back")
    }

    func testBERTFolderThroughSmelt() throws {
        let folder = TestSupport.miniLM
        try TestSupport.requireModel(TestSupport.miniLMWeights)
        let ingot = "\(dir)/bert.ingot"
        var r = try TestSupport.smelt(["convert", folder, ingot, "--level", "5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt(["convert", ingot, "\(dir)/viaIngot"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt(["convert", folder, "\(dir)/direct"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/direct").sorted()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/viaIngot").sorted(), files)
        XCTAssertTrue(files.contains("model.safetensors"), "\(files)")
        for f in files where !Paths.isDirectory("\(dir)/direct/\(f)") {
            XCTAssertTrue(try bytes("\(dir)/direct/\(f)") == bytes("\(dir)/viaIngot/\(f)"), f)
        }
        let inspect = try TestSupport.smelt(["inspect", "--tensors", "--json", ingot])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let json = try JSONParser.parse(inspect.stdout)
        XCTAssertEqual(json["format"]?.stringValue, "ingot")
        XCTAssertEqual(json["ingot"]?["source_format"]?.stringValue, "hf-folder")
        let rows = json["ingot"]?["tensors"]?.arrayValue ?? []
        XCTAssertEqual(rows.count, json["tensor_count"]?.intValue)
        for row in rows {
            let raw = row["raw_bytes"]!.intValue!, stored = row["stored_bytes"]!.intValue!
            XCTAssertLessThanOrEqual(stored, raw)
            XCTAssertEqual(row["ratio"]?.doubleValue ?? -1, Double(stored) / Double(max(raw, 1)), accuracy: 1e-9)
        }
        let text = try TestSupport.smelt(["inspect", "--tensors", ingot])
        XCTAssertTrue(text.stdout.contains("ingot:         version 1.0, from hf-folder"), text.stdout)
        let row = text.stdout.split(separator: "\n").last { $0.hasPrefix("embeddings.word_embeddings.weight ") }
        XCTAssertEqual(
            row?.split(separator: " ").prefix(5).map(String.init),
            ["embeddings.word_embeddings.weight", "F32", "4/4r1", "45", "46881792"], text.stdout)
        let verify = try TestSupport.smelt(["verify", ingot])
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertTrue(verify.stdout.contains("every checksum matches"), verify.stdout)
        let usage = try TestSupport.smelt(["convert", folder, "\(dir)/x.safetensors", "--level", "3"])
        XCTAssertEqual(usage.status, 64, usage.stderr)
    }

    func testSmolLM2QuantizedGGUF() throws {
        let model = TestSupport.smolLM2
        try TestSupport.requireModel(model)
        let graph = try GGUFReader.read(model)
        XCTAssertEqual(Set(graph.tensors.map(\.dtype)), [.q4_1, .q8_0, .f32])
        let ingot = "\(dir)/smol.ingot"
        let summary = try IngotWriter.write(graph, to: ingot, sourceFormat: "gguf")
        print("SmolLM2 Q4_1: Ingot is \(String(format: "%.4f", Double(summary.fileBytes) / Double(Paths.fileSize(model)!))) of the GGUF")
        let back = try IngotReader.read(ingot)
        try IngotFixtures.assertSame(graph, back)
        // GGUF → Ingot → GGUF gives the original file byte for byte (our GGUF writer reproduces
        // llama.cpp's layout), so tensor bytes, metadata, types and order are all identical.
        try GGUFWriter.write(back, to: "\(dir)/smol.gguf")
        XCTAssertTrue(try bytes(model) == bytes("\(dir)/smol.gguf"))

        // The same through `smelt`, which converts an Ingot of GGUF origin as GGUF.
        var r = try TestSupport.smelt(["convert", model, "\(dir)/cli.ingot"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt(["convert", "\(dir)/cli.ingot", "\(dir)/cli.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(try bytes(model) == bytes("\(dir)/cli.gguf"))
        let v = try TestSupport.smelt(["verify", "--json", "\(dir)/cli.ingot"])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertEqual(try JSONParser.parse(v.stdout)["ok"], .bool(true))
    }
}
