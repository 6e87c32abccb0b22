import Codecs
@testable import Formats
import Foundation
import TensorGraph
import TestSupport
import XCTest

/// Hostile and damaged Ingot files: every case fails with a typed error naming the file (and the
/// tensor and chunk where there is one), never a crash. Files are forged with `IngotParts`, which
/// keeps all checksums consistent so that the structural checks themselves are reached.
final class IngotHostileTests: XCTestCase {
    var dir = ""
    var path = ""
    var parts: IngotParts!
    var bytes: [UInt8] = []
    /// chunk size 4096: "zeros" f32 ×3000 (3 zstd chunks), "noise" u8 ×5000 (2 raw chunks),
    /// "w" bf16 ×4000 (2 chunks of two zstd planes).
    static func graph() throws -> TensorGraph {
        var m = Metadata()
        m["general.name"] = .string("hostile")
        m["k"] = .array(elementType: .uint8, values: [.uint8(1), .uint8(2), .uint8(3)])
        return try TensorGraph(metadata: m, tensors: [
            try IngotFixtures.tensor("zeros", .f32, [3000], [UInt8](repeating: 0, count: 12000)),
            try IngotFixtures.tensor("noise", .u8, [5000], IngotFixtures.bytes(5000, seed: 3)),
            try IngotFixtures.tensor("w", .bf16, [4000], IngotFixtures.floatBytes(IngotFixtures.floats(4000, seed: 4), as: .bf16)),
        ])
    }

    override func setUpWithError() throws {
        dir = TestSupport.tempDir("ingot-hostile")
        let good = "\(dir)/good.ingot"
        try IngotWriter.write(try Self.graph(), to: good, chunkSize: 4096)
        bytes = try IngotFixtures.readFile(good)
        parts = try IngotParts(bytes)
        path = "\(dir)/bad.ingot"
        XCTAssertEqual(parts.header.tensors.map(\.chunks.count), [3, 2, 2])
        XCTAssertTrue(parts.header.tensors[1].chunks.allSatisfy(\.isStoredRaw))
        XCTAssertFalse(parts.header.tensors[2].chunks[0].isStoredRaw)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Opening `file` fails with exactly `message`.
    func assertOpenFails(_ file: [UInt8], _ message: String, line: UInt = #line) throws {
        try IngotFixtures.writeFile(file, path)
        XCTAssertThrowsError(try IngotReader.open(path), line: line) { e in
            XCTAssertEqual("\(e)", message, line: line)
        }
        XCTAssertThrowsError(try FormatRegistry.open(path), line: line)
    }

    /// Opening works but reading fails, in `verify` and in a tensor read, with exactly `message`.
    func assertReadFails(_ file: [UInt8], tensor: String, _ message: String, line: UInt = #line) throws {
        try IngotFixtures.writeFile(file, path)
        let f = try IngotReader.open(path)
        let v = f.verify()
        XCTAssertEqual(v.failures.first.map { "\($0)" }, message, line: line)
        XCTAssertThrowsError(try f.graph()[tensor]!.storage.readAll(), line: line) { e in
            XCTAssertEqual("\(e)", message, line: line)
        }
    }

    /// Index of `tag` in `bytes` (for patching encoded headers).
    func find(_ tag: String, in bytes: [UInt8]) -> Int {
        let t = Array(tag.utf8)
        return (0...(bytes.count - t.count)).first { Array(bytes[$0..<($0 + t.count)]) == t }!
    }

    /// Where the payload of section `tag` ends in an encoded header.
    func sectionEnd(_ tag: String, in raw: [UInt8]) -> Int {
        let i = find(tag, in: raw)
        return i + 16 + Int(raw.u64(i + 8))
    }

    func put(_ v: UInt64, at i: Int, in b: inout [UInt8]) {
        for k in 0..<8 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }

    func testSanity() throws {
        try IngotFixtures.writeFile(try parts.assemble(), path)
        XCTAssertTrue(try IngotReader.open(path).verify().ok)
        try IngotFixtures.assertSame(try Self.graph(), try IngotReader.read(path))
    }

    func testNotAnIngotFile() throws {
        try assertOpenFails(
            Array("hello, world, this is text".utf8),
            "\(path): not an Ingot file (starts with 68656c6c6f2c2077, expected 89494e474f540d0a)")
    }

    func testTruncatedFiles() throws {
        try assertOpenFails([], "\(path): truncated: 0 bytes, an Ingot file has at least 80")
        try assertOpenFails(Array(bytes.prefix(5)), "\(path): truncated: 5 bytes, an Ingot file has at least 80")
        try assertOpenFails(Array(bytes.prefix(60)), "\(path): truncated: 60 bytes, an Ingot file has at least 80")
        for cut in [bytes.count - 1, bytes.count - 64, bytes.count / 2, 100] {
            try IngotFixtures.writeFile(Array(bytes.prefix(cut)), path)
            XCTAssertThrowsError(try IngotReader.open(path)) { e in
                XCTAssertTrue("\(e)".hasPrefix("\(path): truncated or unfinished: no trailer at the end of the file"), "\(e)")
            }
        }
    }

    func testUnknownMajorVersion() throws {
        parts.major = 2
        try assertOpenFails(try parts.assemble(), "\(path): Ingot version 2.0 is not supported (this reader reads 1.x)")
    }

    func testNonZeroPreludeFlags() throws {
        parts.flags = 4
        try assertOpenFails(try parts.assemble(), "\(path): bad prelude: flags 0x0000000000000004 are not zero")
    }

    func testTrailerChecksumMismatch() throws {
        let file = try parts.assemble(fixTrailerChecksum: false)
        try IngotFixtures.writeFile(file, path)
        XCTAssertThrowsError(try IngotReader.open(path)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(path): trailer checksum mismatch (stored 0x0000000000000000, computed 0x"), "\(e)")
        }
    }

    func testTrailerPointingOutsideTheFile() throws {
        let size = try parts.assemble().count
        let stored = try parts.assemble().u64(size - 56)
        try assertOpenFails(
            try parts.assemble(editTrailer: { self.put(1 << 40, at: 0, in: &$0) }),
            "\(path): trailer points to a header of \(stored) bytes at offset 1099511627776, outside the \(size)-byte file (or not right before the trailer)")
        try assertOpenFails(
            try parts.assemble(editTrailer: { self.put(3, at: 0, in: &$0) }),
            "\(path): trailer points to a header of \(stored) bytes at offset 3, outside the \(size)-byte file (or not right before the trailer)")
        try assertOpenFails(
            try parts.assemble(editTrailer: { self.put(UInt64.max, at: 8, in: &$0) }),
            "\(path): trailer points to a header of 18446744073709551615 bytes at offset \(size - 64 - Int(stored)), outside the \(size)-byte file (or not right before the trailer)")
    }

    func testHeaderTooLarge() throws {
        try assertOpenFails(
            try parts.assemble(editTrailer: { self.put(1 << 40, at: 16, in: &$0) }),
            "\(path): header of 1099511627776 bytes is above the 1073741824-byte limit")
    }

    func testHeaderChecksumMismatch() throws {
        let file = try parts.assemble(editTrailer: { self.put(12345, at: 32, in: &$0) })
        try IngotFixtures.writeFile(file, path)
        XCTAssertThrowsError(try IngotReader.open(path)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(path): header checksum mismatch (stored 0x0000000000003039, computed 0x"), "\(e)")
        }
    }

    func testHeaderThatIsNotAZstdFrame() throws {
        try assertOpenFails(
            try parts.assemble(compressHeader: false, editTrailer: { $0[24] = 1 }),
            "\(path): header: not a zstd frame: no valid zstd frame header")
    }

    func testHeaderDecompressingToAnotherSize() throws {
        let rawSize = try parts.assemble().u64(try parts.assemble().count - 48)
        try assertOpenFails(
            try parts.assemble(editTrailer: { self.put(rawSize + 5, at: 16, in: &$0) }),
            "\(path): header: zstd frame declares \(rawSize) bytes of content, \(rawSize + 5) expected")
    }

    func testUnknownRequiredSection() throws {
        try assertOpenFails(
            try parts.assemble(extraSections: [("NEWS", true, [0, 1])]),
            "\(path): header: required section 'NEWS' is unknown to this reader (written by a newer Smelt?)")
    }

    func testMissingSection() throws {
        try assertOpenFails(
            try parts.assemble(editHeader: { h in
                let i = self.find("META", in: h)
                h.replaceSubrange(i..<(i + 8), with: Array("XETA".utf8) + [0, 0, 0, 0])
            }),
            "\(path): header: section 'META' is missing")
    }

    func testTruncatedSection() throws {
        try assertOpenFails(
            try parts.assemble(editHeader: { h in
                let i = self.find("TENS", in: h)
                self.put(1 << 30, at: i + 8, in: &h)
            }),
            "\(path): header: section 'TENS' at header byte \(try find("TENS", in: parts.header.encode(file: "")) + 8) needs 1073741824 bytes, \(try parts.header.encode(file: "").count - find("TENS", in: parts.header.encode(file: "")) - 16) left")
    }

    func testTensorCountTooLargeForTheFile() throws {
        let raw = try parts.header.encode(file: "")
        // Checked after the count, the chunk entry size and the reserved word.
        let left = sectionEnd("TENS", in: raw) - (find("TENS", in: raw) + 16 + 16)
        try assertOpenFails(
            try parts.assemble(editHeader: { h in self.put(1 << 40, at: self.find("TENS", in: h) + 16, in: &h) }),
            "\(path): header: 1099511627776 tensors cannot fit in the \(left) bytes left")
    }

    func testMetadataCountTooLargeForTheFile() throws {
        let raw = try parts.header.encode(file: "")
        let i = find("META", in: raw) + 16
        let left = sectionEnd("META", in: raw) - (i + 8)
        try assertOpenFails(
            try parts.assemble(editHeader: { h in self.put(1 << 50, at: i, in: &h) }),
            "\(path): header: 1125899906842624 metadata entries cannot fit in the \(left) bytes left")
    }

    func testArrayLengthTooLargeForTheFile() throws {
        let raw = try parts.header.encode(file: "")
        // key "k": u64 length 1, "k", type 9, element type 0, then the count.
        let i = find("k\u{09}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}\u{00}", in: raw) + 9
        let left = sectionEnd("META", in: raw) - (i + 8)
        try assertOpenFails(
            try parts.assemble(editHeader: { h in self.put(1 << 50, at: i, in: &h) }),
            "\(path): header: 1125899906842624 uint8 elements of 'k' cannot fit in the \(left) bytes left")
    }

    func testUnknownDType() throws {
        try assertOpenFails(
            try parts.assemble(editHeader: { h in
                let i = self.find("bf16", in: h)
                h.replaceSubrange(i..<(i + 4), with: Array("bq16".utf8))
            }),
            "\(path): tensor 'w': unknown dtype 'bq16'")
    }

    func testByteCountDisagreeingWithShape() throws {
        parts.header.tensors[2].byteCount = 8002
        try assertOpenFails(try parts.assemble(), "\(path): tensor 'w': BF16 [4000] needs 8000 bytes, the index says 8002")
    }

    func testBadLayout() throws {
        parts.header.tensors[2].layout = IngotLayout(blockBytes: 2, fields: [.init(offset: 0, length: 2, width: 3)])
        try assertOpenFails(try parts.assemble(), "\(path): tensor 'w': bad transform layout: field 0 has width 3")
    }

    func testDuplicateTensorNames() throws {
        parts.header.tensors[1].name = "zeros"
        try assertOpenFails(try parts.assemble(), "\(path): tensor 'zeros' appears more than once")
    }

    func testChunkSizesThatDoNotAddUp() throws {
        parts.header.tensors[0].chunks[2].rawSize = 4000
        try assertOpenFails(try parts.assemble(), "\(path): tensor 'zeros': its chunks hold 12192 bytes, the tensor has 12000")
        parts = try IngotParts(bytes)
        parts.header.tensors[0].chunks.append(parts.header.tensors[0].chunks[2])
        parts.payloads[0].append(parts.payloads[0][2])
        try assertOpenFails(try parts.assemble(), "\(path): tensor 'zeros': its chunks hold 15808 bytes, the tensor has 12000")
    }

    func testChunkRawSizeNotWholeBlocks() throws {
        parts.header.tensors[2].chunks[1].rawSize = 3903
        try assertOpenFails(
            try parts.assemble(),
            "\(path): tensor 'w' chunk 1: raw size 3903 is not a positive multiple of the 2-byte block up to 67108864")
    }

    func testStoredSizeLargerThanRawSize() throws {
        parts.payloads[2][1] += [UInt8](repeating: 0, count: 10000)
        let stored = parts.payloads[2][1].count
        try assertOpenFails(try parts.assemble(), "\(path): tensor 'w' chunk 1: stored size \(stored) is not in 1...3904 (its raw size)")
    }

    func testUnknownChunkFlags() throws {
        parts.header.tensors[1].chunks[0].flags = 6
        try assertOpenFails(try parts.assemble(), "\(path): tensor 'noise' chunk 0: unknown flags 0x0000000000000006")
    }

    /// Where tensor 0's descriptor starts and ends, and its first chunk entry starts, in an
    /// encoded header (the TENS payload: count u64, entry size u32, reserved u32, then records).
    func firstRecord(in raw: [UInt8]) -> (descriptor: Int, entries: Int) {
        let payload = find("TENS", in: raw) + 16
        let descriptor = payload + 16 + 8
        return (descriptor, descriptor + Int(raw.u64(payload + 16)))
    }

    func testNonZeroReservedFields() throws {
        // The tensor index's u32 after the chunk entry size.
        try assertOpenFails(
            try parts.assemble(editHeader: { h in h[self.find("TENS", in: h) + 16 + 12] = 1 }),
            "\(path): header: the tensor index's reserved field (after the chunk entry size) is 0x0000000000000001, not 0")
        // A layout field's reserved u16 ("zeros" is f32: one field 4/4, the descriptor's last 12 bytes).
        try assertOpenFails(
            try parts.assemble(editHeader: { h in h[self.firstRecord(in: h).entries - 1] = 2 }),
            "\(path): tensor 'zeros': bad transform layout: field 0's reserved bytes are 0x0000000000000200, not 0")
        // A chunk entry's u32 at offset 20.
        try assertOpenFails(
            try parts.assemble(editHeader: { h in h[self.firstRecord(in: h).entries + 20] = 7 }),
            "\(path): tensor 'zeros' chunk 0: reserved field 0x0000000000000007 is not 0")
        // The writer leaves them zero, and the same edits with zeros open.
        try IngotFixtures.writeFile(try parts.assemble(editHeader: { h in
            h[self.find("TENS", in: h) + 16 + 12] = 0
            h[self.firstRecord(in: h).entries + 20] = 0
        }), path)
        XCTAssertNoThrow(try IngotReader.open(path))
    }

    func testChunkOutsideTheDataSection() throws {
        let good = try parts.assemble()
        parts = try IngotParts(good)
        parts.header.tensors[1].chunks[1].offset = 1 << 40
        let headerOffset = Int(good.u64(good.count - 64))
        let stored = parts.header.tensors[1].chunks[1].storedSize
        try assertOpenFails(
            try parts.assemble(fixChunks: false),
            "\(path): tensor 'noise' chunk 1: \(stored) bytes at offset 1099511627776 are outside the data section (which ends at \(headerOffset))")
    }

    func testChunksNotBackToBack() throws {
        parts.header.tensors[1].chunks[1].offset += 1
        let at = parts.header.tensors[1].chunks[1].offset
        try assertOpenFails(
            try parts.assemble(fixChunks: false),
            "\(path): tensor 'noise' chunk 1: starts at offset \(at), expected \(at - 1) (chunks are stored back to back in index order)")
    }

    func testStreamTableNotAddingUp() throws {
        let table = IngotParts.streamTable([(100, Ingot.codecZstd), (50, Ingot.codecZstd)])
        parts.payloads[2][0] = table + [UInt8](repeating: 7, count: 140)
        try assertReadFails(
            try parts.assemble(), tensor: "w",
            "\(path): tensor 'w' chunk 0: stream table and streams add up to 166 bytes, the chunk has 156")
    }

    func testUnknownStreamCodec() throws {
        parts.payloads[2][0] = IngotParts.streamTable([(5, 7), (5, 0)]) + [UInt8](repeating: 7, count: 10)
        try assertReadFails(try parts.assemble(), tensor: "w", "\(path): tensor 'w' chunk 0: stream 0 has unknown codec 7")
    }

    func testRawStreamOfTheWrongSize() throws {
        parts.payloads[2][0] = IngotParts.streamTable([(5, 0), (5, 0)]) + [UInt8](repeating: 7, count: 10)
        try assertReadFails(
            try parts.assemble(), tensor: "w", "\(path): tensor 'w' chunk 0: stream 0 is stored raw in 5 bytes but holds 2048")
    }

    /// A frame whose header declares another content size than the stream's.
    func testFrameDeclaringAnotherSize() throws {
        let a = try IngotParts.zstdFrame([UInt8](repeating: 1, count: 2000))
        let b = try IngotParts.zstdFrame([UInt8](repeating: 2, count: 2048))
        parts.payloads[2][0] = IngotParts.streamTable([(a.count, 1), (b.count, 1)]) + a + b
        try assertReadFails(
            try parts.assemble(), tensor: "w",
            "\(path): tensor 'w' chunk 0 stream 0: zstd frame declares 2000 bytes of content, 2048 expected")
    }

    /// A frame without a declared size that decodes to fewer bytes than the stream has.
    func testFrameDecompressingShort() throws {
        let a = try IngotParts.zstdFrame([UInt8](repeating: 1, count: 2048))
        let b = try IngotParts.zstdFrame([UInt8](repeating: 2, count: 2000), contentSize: false)
        parts.payloads[2][0] = IngotParts.streamTable([(a.count, 1), (b.count, 1)]) + a + b
        try assertReadFails(
            try parts.assemble(), tensor: "w",
            "\(path): tensor 'w' chunk 0 stream 1: zstd frame decompressed to 2000 bytes, 2048 expected")
    }

    /// A frame without a declared size that would expand past the stream's size: decoding stops
    /// at the buffer's end.
    func testFrameExpandingBeyondTheDeclaredSize() throws {
        let a = try IngotParts.zstdFrame([UInt8](repeating: 1, count: 1 << 20), contentSize: false)
        let b = try IngotParts.zstdFrame([UInt8](repeating: 2, count: 2048))
        parts.payloads[2][0] = IngotParts.streamTable([(a.count, 1), (b.count, 1)]) + a + b
        try assertReadFails(
            try parts.assemble(), tensor: "w",
            "\(path): tensor 'w' chunk 0 stream 0: zstd frame expands beyond the declared 2048 bytes")
    }

    func testStreamThatIsNotAZstdFrame() throws {
        parts.payloads[2][0] = IngotParts.streamTable([(6, 1), (6, 1)]) + Array("garbagegarbag".utf8.prefix(12))
        try assertReadFails(
            try parts.assemble(), tensor: "w", "\(path): tensor 'w' chunk 0 stream 0: not a zstd frame: no valid zstd frame header")
    }

    func testTwoFramesInOneStream() throws {
        let a = try IngotParts.zstdFrame([UInt8](repeating: 1, count: 1024))
        let b = try IngotParts.zstdFrame([UInt8](repeating: 2, count: 2048))
        parts.payloads[2][0] = IngotParts.streamTable([(2 * a.count, 1), (b.count, 1)]) + a + a + b
        try assertReadFails(
            try parts.assemble(), tensor: "w",
            "\(path): tensor 'w' chunk 0 stream 0: zstd frame declares 1024 bytes of content, 2048 expected")
    }

    func testChunkChecksumMismatch() throws {
        let good = try parts.assemble()
        var bad = good
        let c = parts.header.tensors[0].chunks[1]
        let at = try IngotParts(good).header.tensors[0].chunks[1].offset
        bad[at + 3] ^= 0x10
        try IngotFixtures.writeFile(bad, path)
        let v = try IngotReader.open(path).verify()
        XCTAssertEqual(v.failures.count, 1)
        XCTAssertTrue(
            "\(v.failures[0])".hasPrefix("\(path): tensor 'zeros' chunk 1 (at offset \(at)): checksum mismatch (stored \(hex64(c.checksum)), computed 0x"),
            "\(v.failures[0])")
    }
}
