import Codecs
@testable import Formats
import Foundation
import TensorGraph
import TestSupport
import XCTest

/// Single-byte damage anywhere in an Ingot file is detected: in the data section it is reported
/// with the tensor and chunk it hit, elsewhere as a damaged prelude, trailer or header; and a
/// conversion from the damaged file writes nothing.
final class IngotCorruptionTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestSupport.tempDir("ingot-corrupt") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Small tensors of safetensors types, several chunks each.
    static func graph() throws -> TensorGraph {
        var m = Metadata()
        m["safetensors.format"] = .string("pt")
        return try TensorGraph(metadata: m, tensors: [
            try IngotFixtures.tensor("a.f32", .f32, [1050], IngotFixtures.floatBytes(IngotFixtures.floats(1050, seed: 1), as: .f32)),
            try IngotFixtures.tensor("b.bf16", .bf16, [2100], IngotFixtures.floatBytes(IngotFixtures.floats(2100, seed: 2), as: .bf16)),
            try IngotFixtures.tensor("c.zeros", .f16, [2100], [UInt8](repeating: 0, count: 4200)),
            try IngotFixtures.tensor("d.i64", .i64, [40], IngotFixtures.bytes(320, seed: 3)),
        ])
    }

    /// Where byte `i` of the file lies: the tensor and chunk of the data section holding it.
    func owner(_ i: Int, _ file: IngotFile) -> (tensor: String, chunk: Int)? {
        for t in file.tensors {
            for (k, c) in t.chunks.enumerated() where i >= c.offset && i < c.offset + c.storedSize { return (t.name, k) }
        }
        return nil
    }

    func testEveryFlippedByteIsDetected() throws {
        let good = "\(dir)/good.ingot"
        try IngotWriter.write(try Self.graph(), to: good, chunkSize: 4096)
        let original = try IngotFixtures.readFile(good)
        let file = try IngotReader.open(good)
        XCTAssertTrue(file.verify().ok)
        XCTAssertGreaterThan(file.chunkCount, 6)
        let bad = "\(dir)/bad.ingot"
        var inData = 0, elsewhere = 0
        for i in 0..<original.count {
            for pattern: UInt8 in (i % 11 == 0 ? [0x01, 0x80, 0xFF] : [0x20]) {
                var bytes = original
                bytes[i] ^= pattern
                try IngotFixtures.writeFile(bytes, bad)
                let opened: IngotFile
                do {
                    opened = try IngotReader.open(bad)
                } catch {
                    // Damage outside the data section: the prelude, header or trailer checks.
                    XCTAssertNil(owner(i, file), "byte \(i): a data byte failed at open: \(error)")
                    elsewhere += 1
                    continue
                }
                guard let (tensor, chunk) = owner(i, file) else {
                    XCTFail("byte \(i) ^ \(pattern): not a data byte, yet the file opened")
                    continue
                }
                let v = opened.verify(threads: 1)
                XCTAssertEqual(v.failures.count, 1, "byte \(i)")
                if let e = v.failures.first {
                    XCTAssertEqual(e.chunk?.tensor, tensor, "byte \(i)")
                    XCTAssertEqual(e.chunk?.chunk, chunk, "byte \(i)")
                    XCTAssertTrue("\(e)".contains("tensor '\(tensor)' chunk \(chunk) (at offset"), "\(e)")
                    XCTAssertTrue("\(e)".contains("checksum mismatch"), "\(e)")
                }
                inData += 1
            }
        }
        XCTAssertGreaterThan(inData, 0)
        XCTAssertGreaterThan(elsewhere, 0)
    }

    /// Converting a damaged file fails before the output is renamed into place: no output, no
    /// temporary file left. Through the library for a dense sample, through `smelt` for a few.
    func testConversionFromADamagedFileWritesNothing() throws {
        let good = "\(dir)/good.ingot"
        try IngotWriter.write(try Self.graph(), to: good, chunkSize: 4096)
        let original = try IngotFixtures.readFile(good)
        let out = "\(dir)/out/copy.safetensors"
        try FileManager.default.createDirectory(atPath: "\(dir)/out", withIntermediateDirectories: true)
        let bad = "\(dir)/bad.ingot"
        for i in stride(from: 0, to: original.count, by: 13) {
            var bytes = original
            bytes[i] ^= 0x04
            try IngotFixtures.writeFile(bytes, bad)
            XCTAssertThrowsError(try SafetensorsWriter.write(try IngotReader.read(bad), to: out), "byte \(i)")
            XCTAssertThrowsError(try IngotWriter.write(try IngotReader.read(bad), to: "\(dir)/out/copy.ingot"), "byte \(i)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out"), [], "byte \(i)")
        }
        let file = try IngotReader.open(good)
        let dataByte = file.tensors[1].chunks[1].offset + 5
        for (i, what) in [(dataByte, "tensor 'b.bf16' chunk 1"), (3, "not an Ingot file"), (original.count - 70, "header checksum mismatch"),
                          (original.count - 20, "trailer checksum mismatch")] {
            var bytes = original
            bytes[i] ^= 0x40
            try IngotFixtures.writeFile(bytes, bad)
            let c = try TestSupport.smelt(["convert", bad, out])
            XCTAssertEqual(c.status, 2, c.stderr)
            XCTAssertTrue(c.stderr.contains(what), c.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out"), [])
            let v = try TestSupport.smelt(["verify", bad])
            XCTAssertEqual(v.status, 2, v.stdout)
            XCTAssertTrue(v.stderr.contains(what), v.stderr)
        }
        let v = try TestSupport.smelt(["verify", "--json", bad])
        XCTAssertEqual(v.status, 2)
        var bytes = original
        bytes[dataByte] ^= 1
        try IngotFixtures.writeFile(bytes, bad)
        let j = try TestSupport.smelt(["verify", "--json", bad])
        XCTAssertEqual(j.status, 2, j.stderr)
        let json = try JSONParser.parse(j.stdout)
        XCTAssertEqual(json["ok"], .bool(false))
        XCTAssertEqual(json["bad_chunks"]?.intValue, 1)
        XCTAssertEqual(json["first_error"]?["tensor"]?.stringValue, "b.bf16")
        XCTAssertEqual(json["first_error"]?["chunk"]?.intValue, 1)
    }
}
