import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// One test per kind of hostile GGUF input, each file built byte by byte: every one must be
/// refused with a typed error whose message names the file and says what and where, never a crash.
final class GGUFHostileTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestSupport.tempDir("gguf-hostile") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ b: GGUFBytes, _ name: String = "bad.gguf") -> String {
        let path = "\(dir)/\(name)"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(b.bytes)))
        return path
    }

    /// Reading `path` fails with a GGUFError (checked with `match`) whose message names the file
    /// and contains every fragment.
    func assertRejected(
        _ path: String, _ fragments: [String], match: ((GGUFError) -> Bool)? = nil, line: UInt = #line
    ) {
        XCTAssertThrowsError(try GGUFReader.read(path), line: line) { error in
            guard let e = error as? GGUFError else { return XCTFail("not a GGUFError: \(error)", line: line) }
            if let match { XCTAssertTrue(match(e), "unexpected case: \(e)", line: line) }
            let message = e.description
            XCTAssertTrue(message.hasPrefix(path + ":"), "message does not name the file: \(message)", line: line)
            for f in fragments { XCTAssertTrue(message.contains(f), "'\(f)' not in: \(message)", line: line) }
        }
    }

    /// A valid file: one key, one F32 tensor of `ne` at offset 0, its data.
    func valid(ne: [UInt64] = [4], key: (String, UInt32) = ("test.k", 7)) -> GGUFBytes {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 1)
        b.kvU32(key.0, key.1)
        b.tensorInfo("w", ne: ne)
        b.pad()
        b.zeros(Int(ne.reduce(1, *)) * 4)
        return b
    }

    func testValidBaselineReads() throws {
        let g = try GGUFReader.read(write(valid()))
        XCTAssertEqual(g.tensors.map(\.name), ["w"])
        XCTAssertEqual(g.metadata["test.k"], .uint32(7))
    }

    // MARK: Header

    func testBadMagic() {
        var b = valid()
        b.bytes[3] = UInt8(ascii: "X")
        assertRejected(write(b), ["not a GGUF file: magic is 'GGUX'", "47 47 55 58"]) {
            if case .badMagic(_, [0x47, 0x47, 0x55, 0x58]) = $0 { return true } else { return false }
        }
    }

    func testFileShorterThanMagic() {
        var b = GGUFBytes()
        b.raw([0x47, 0x47])
        assertRejected(write(b), ["truncated: magic needs 4 bytes at offset 0, the file has 2 bytes"])
    }

    func testUnsupportedVersions() {
        for (version, fragment) in [(UInt32(1), "GGUF version 1 is not supported"), (4, "GGUF version 4 is not supported"),
                                    (0x0300_0000, "byte-swapped")] {
            var b = GGUFBytes()
            b.header(version: version, tensors: 0, keys: 0)
            assertRejected(write(b, "v\(version).gguf"), [fragment]) {
                if case .unsupportedVersion(_, version) = $0 { return true } else { return false }
            }
        }
    }

    func testTensorCountLargerThanFileCouldHold() {
        var b = GGUFBytes()
        b.header(tensors: 1_000_000, keys: 0)
        b.zeros(100)
        assertRejected(write(b), ["header declares 1000000 tensor infos", "at least 24 bytes each", "only 100 bytes"])
    }

    func testKeyCountLargerThanFileCouldHold() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: UInt64.max)
        b.zeros(13)
        assertRejected(write(b), ["header declares 18446744073709551615 metadata keys", "only 13 bytes"]) {
            if case .countTooLarge(_, "metadata key", UInt64.max, 14, 13) = $0 { return true } else { return false }
        }
    }

    // MARK: Metadata

    func testKeyStringLongerThanFile() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.u64(1 << 40)  // key length
        b.raw(Array("abc".utf8))
        b.zeros(11)
        assertRejected(write(b), ["metadata key 0 name: string length 1099511627776 at offset 24", "longer than the 14 bytes left"])
    }

    func testValueStringLongerThanFile() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("general.name")
        b.u32(MetadataType.string.rawValue)
        b.u64(500)
        b.raw(Array("short".utf8))
        assertRejected(write(b), ["metadata key 'general.name' value: string length 500 at offset 48", "5 bytes left"])
    }

    func testArrayLongerThanFile() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("tokenizer.ggml.token_type")
        b.u32(MetadataType.array.rawValue)
        b.u32(MetadataType.int32.rawValue)
        b.u64(1_000_000)
        b.zeros(40)
        assertRejected(write(b), ["metadata key 'tokenizer.ggml.token_type': array of 1000000 int32 values at offset 65", "40 bytes left"]) {
            if case .arrayTooLong(_, "tokenizer.ggml.token_type", 65, 1_000_000, "int32", 40) = $0 { return true }
            return false
        }
    }

    func testStringArrayCountAboveRemainingOverEight() {
        // 10 strings need at least 80 bytes; 79 follow.
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("tokenizer.ggml.tokens")
        b.u32(MetadataType.array.rawValue)
        b.u32(MetadataType.string.rawValue)
        b.u64(10)
        b.zeros(79)
        assertRejected(write(b), ["array of 10 string values", "79 bytes left"])
    }

    func testNestingDeeperThanCap() {
        func nested(depth: Int) -> GGUFBytes {
            var b = GGUFBytes()
            b.header(tensors: 0, keys: 1)
            b.string("test.deep")
            b.u32(MetadataType.array.rawValue)
            for _ in 1..<depth {
                b.u32(MetadataType.array.rawValue)  // element type: array
                b.u64(1)
            }
            b.u32(MetadataType.uint8.rawValue)
            b.u64(1)
            b.u8(42)
            return b
        }
        // Exactly at the cap reads; one deeper is refused.
        XCTAssertNoThrow(try GGUFReader.read(write(nested(depth: GGUF.maxArrayDepth), "ok.gguf")))
        var v = try? GGUFReader.read("\(dir)/ok.gguf").metadata["test.deep"]
        for _ in 1..<GGUF.maxArrayDepth {
            guard case let .array(.array, values)? = v else { return XCTFail("not nested: \(String(describing: v))") }
            v = values.first
        }
        XCTAssertEqual(v, .array(elementType: .uint8, values: [.uint8(42)]))
        assertRejected(write(nested(depth: GGUF.maxArrayDepth + 1)), ["metadata key 'test.deep': arrays nested deeper than 8 levels"])
    }

    func testUnknownValueType() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("test.weird")
        b.u32(13)
        b.u32(0)
        assertRejected(write(b), ["metadata key 'test.weird': unknown value type 13 at offset 42"])
    }

    func testUnknownArrayElementType() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("test.weird")
        b.u32(MetadataType.array.rawValue)
        b.u32(0xdead)
        b.u64(0)
        assertRejected(write(b), ["metadata key 'test.weird': unknown value type 57005 at offset 46"])
    }

    func testDuplicateKey() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 2)
        b.kvU32("llama.block_count", 1)
        b.kvU32("llama.block_count", 2)
        assertRejected(write(b), ["metadata key 'llama.block_count' at offset 57 appears more than once"])
    }

    func testEmptyKey() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.kvU32("", 1)
        assertRejected(write(b), ["metadata key 0 at offset 24 is empty"])
    }

    func testInvalidUTF8Key() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.stringBytes([0x61, 0xff, 0x62])
        b.u32(MetadataType.uint8.rawValue)
        b.u8(1)
        assertRejected(write(b), ["metadata key 0 name: string at offset 24 is not valid UTF-8"])
    }

    func testInvalidUTF8InStringArray() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("tokenizer.ggml.tokens")
        b.u32(MetadataType.array.rawValue)
        b.u32(MetadataType.string.rawValue)
        b.u64(2)
        b.string("ok")
        b.stringBytes([0xc3])  // a lead byte with no continuation
        assertRejected(write(b), ["metadata key 'tokenizer.ggml.tokens' value: string at offset 79 is not valid UTF-8"])
    }

    func testBoolOtherThanZeroOrOne() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("tokenizer.ggml.add_bos_token")
        b.u32(MetadataType.bool.rawValue)
        b.u8(2)
        assertRejected(write(b), ["metadata key 'tokenizer.ggml.add_bos_token': bool at offset 64 is 2, not 0 or 1"])
    }

    func testBadAlignments() {
        for (i, value) in [UInt32(0), 3, 48].enumerated() {
            var b = GGUFBytes()
            b.header(tensors: 0, keys: 1)
            b.kvU32("general.alignment", value)
            assertRejected(write(b, "a\(i).gguf"), ["general.alignment must be a uint32 nonzero power of two, not uint32 \(value)"])
        }
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("general.alignment")
        b.u32(MetadataType.uint64.rawValue)
        b.u64(64)
        assertRejected(write(b), ["not uint64 64"])
    }

    // MARK: Tensor infos

    func testTooManyDimensions() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("blk.0.w", ne: [1, 1, 1, 1, 1])
        b.pad()
        b.zeros(4)
        assertRejected(write(b), ["tensor 'blk.0.w' has 5 dimensions, more than the 4 ggml allows"])
    }

    func testHugeDimensionCountIsNotRead() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.string("w")
        b.u32(UInt32.max)
        b.zeros(16)
        assertRejected(write(b), ["tensor 'w' has 4294967295 dimensions"])
    }

    func testZeroDimension() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [4, 0])
        b.pad()
        assertRejected(write(b), ["tensor 'w' has a zero dimension: ne [4, 0]"])
    }

    func testOverflowingDimensionProduct() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [1 << 32, 1 << 32])
        b.pad()
        assertRejected(write(b), ["tensor 'w': dimensions ne [4294967296, 4294967296] overflow"]) {
            if case .shapeOverflow = $0 { return true } else { return false }
        }
    }

    func testByteCountOverflowAfterElementCount() {
        // 2^62 elements fit in 63 bits, but 2^62 × 4 bytes does not.
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [1 << 31, 1 << 31])
        b.pad()
        assertRejected(write(b), ["tensor 'w'", "overflows"]) {
            if case .shape(_, "w", .overflow) = $0 { return true } else { return false }
        }
    }

    func testUnknownGGMLType() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [32], type: 4)  // Q4_2, removed from ggml
        b.pad()
        b.zeros(64)
        assertRejected(write(b), ["tensor 'w' has unknown ggml type 4"])
    }

    func testBlockTypeRowNotMultipleOfBlock() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [20, 2], type: 2)  // Q4_0, 32 per block
        b.pad()
        b.zeros(64)
        assertRejected(write(b), ["tensor 'w'", "innermost dimension 20 is not a multiple of Q4_0's block size 32"])
    }

    func testDuplicateTensorName() {
        var b = GGUFBytes()
        b.header(tensors: 2, keys: 0)
        b.tensorInfo("w", ne: [8], offset: 0)
        b.tensorInfo("w", ne: [8], offset: 32)
        b.pad()
        b.zeros(64)
        assertRejected(write(b), ["tensor 'w' appears more than once"])
    }

    // MARK: Data section

    func testMisalignedTensorOffset() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [4], offset: 4)
        b.pad()
        b.zeros(64)
        assertRejected(write(b), ["tensor 'w': data offset 4 is not a multiple of the alignment 32"])
    }

    func testMisalignedUnderCustomAlignment() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 1)
        b.kvU32("general.alignment", 64)
        b.tensorInfo("w", ne: [4], offset: 32)
        b.pad(to: 64)
        b.zeros(128)
        assertRejected(write(b), ["data offset 32 is not a multiple of the alignment 64"])
    }

    func testTensorDataPastEndOfFile() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [16])
        b.pad()
        b.zeros(60)  // 64 needed
        let p = write(b)
        assertRejected(p, ["tensor 'w': 64 bytes at file offset 64 run past the end of the 124-byte file"])
    }

    func testTensorOffsetFarPastEnd() {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 0)
        b.tensorInfo("w", ne: [4], offset: UInt64.max - 31)
        b.pad()
        b.zeros(16)
        assertRejected(write(b), ["tensor 'w': 16 bytes at file offset", "run past the end"])
    }

    func testOverlappingTensorData() {
        var b = GGUFBytes()
        b.header(tensors: 2, keys: 0)
        b.tensorInfo("a", ne: [16], offset: 0)  // 64 bytes: [0, 64)
        b.tensorInfo("b", ne: [8], offset: 32)  // [32, 64)
        b.pad()
        b.zeros(64)
        assertRejected(write(b), ["tensor 'b' data starts at offset 128, overlapping tensor 'a' which ends at 160"])
    }

    // MARK: Truncation and corruption anywhere

    func testTruncatedInTensorInfo() {
        var b = valid()
        b.bytes = Array(b.bytes[0..<50])  // inside the tensor name's length
        assertRejected(write(b), ["truncated: tensor info 0 name needs 8 bytes at offset 46, the file has 50 bytes"])
    }

    func testTruncatedInsideMetadataValue() {
        var b = GGUFBytes()
        b.header(tensors: 0, keys: 1)
        b.string("llama.context_length")
        b.u32(MetadataType.uint64.rawValue)
        b.u32(0)  // half of the u64
        assertRejected(write(b), ["truncated: metadata key 'llama.context_length' value needs 8 bytes at offset 56, the file has 60 bytes"])
    }

    /// Every prefix of the golden file that ends before its last tensor's data does is refused with
    /// a GGUFError naming the file. (Only the last tensor's trailing padding may be missing.)
    func testEveryPrefixOfGoldenFileIsRefused() throws {
        let bytes = try GGUFJSON.fileBytes(TestSupport.path("golden/gguf/mixed.gguf"))
        let last = try GGUFJSON.load(TestSupport.path("golden/gguf/mixed.expected.json"))["tensors"]!.arrayValue!.last!
        let dataEnd = last["data_offset"]!.intValue! + last["nbytes"]!.intValue!
        XCTAssertNoThrow(try GGUFReader.read(write({ var b = GGUFBytes(); b.raw(Array(bytes[0..<dataEnd])); return b }(), "end.gguf")))
        let path = "\(dir)/prefix.gguf"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes[0..<dataEnd])))
        for n in (0..<dataEnd).reversed() {
            XCTAssertEqual(truncate(path, off_t(n)), 0)
            do {
                _ = try GGUFReader.read(path)
                XCTFail("prefix of \(n) bytes was accepted")
            } catch let e as GGUFError {
                XCTAssertTrue(e.description.hasPrefix(path + ":"), e.description)
            } catch {
                XCTFail("prefix of \(n) bytes: not a GGUFError: \(error)")
            }
        }
    }

    /// Random byte changes in the header are either read or refused with a GGUFError; never a trap.
    func testCorruptedHeaderBytesNeverTrap() throws {
        let bytes = try GGUFJSON.fileBytes(TestSupport.path("golden/gguf/mixed.gguf"))
        let headerEnd = try GGUFJSON.load(TestSupport.path("golden/gguf/mixed.expected.json"))["data_offset"]!.intValue!
        var rng = SplitMix(seed: 7)
        let path = "\(dir)/corrupt.gguf"
        var refused = 0
        for _ in 0..<400 {
            var b = bytes
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(headerEnd))
                b[i] = [0x00, 0xff, 0x7f, 0x80, UInt8(truncatingIfNeeded: rng.next())][Int(rng.next() % 5)]
            }
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(b)))
            do { _ = try GGUFReader.read(path) } catch is GGUFError { refused += 1 } catch {
                XCTFail("not a GGUFError: \(error)")
            }
        }
        XCTAssertGreaterThan(refused, 100)
    }

    // MARK: Split sets

    func splitFile(no: UInt16, count: UInt16, total: Int32, tensor: String) -> GGUFBytes {
        var b = GGUFBytes()
        b.header(tensors: 1, keys: 3)
        b.string("split.no"); b.u32(MetadataType.uint16.rawValue); b.int(no)
        b.string("split.count"); b.u32(MetadataType.uint16.rawValue); b.int(count)
        b.string("split.tensors.count"); b.u32(MetadataType.int32.rawValue); b.int(total)
        b.tensorInfo(tensor, ne: [4])
        b.pad()
        b.zeros(16)
        return b
    }

    func testMissingSplitFile() {
        let first = write(splitFile(no: 0, count: 3, total: 3, tensor: "a"), "m-00001-of-00003.gguf")
        _ = write(splitFile(no: 1, count: 3, total: 3, tensor: "b"), "m-00002-of-00003.gguf")
        assertRejected(first, ["belongs to a split set but '\(dir)/m-00003-of-00003.gguf' does not exist"])
    }

    func testSplitNumberOutOfPlace() {
        let first = write(splitFile(no: 0, count: 2, total: 2, tensor: "a"), "m-00001-of-00002.gguf")
        let second = write(splitFile(no: 0, count: 2, total: 2, tensor: "b"), "m-00002-of-00002.gguf")
        XCTAssertThrowsError(try GGUFReader.read(first)) { e in
            XCTAssertEqual("\(e)", "\(second): split.no is 0, expected 1")
        }
    }

    func testSplitTensorCountMismatch() {
        let first = write(splitFile(no: 0, count: 2, total: 5, tensor: "a"), "m-00001-of-00002.gguf")
        _ = write(splitFile(no: 1, count: 2, total: 5, tensor: "b"), "m-00002-of-00002.gguf")
        assertRejected(first, ["split.tensors.count is 5 but the split files hold 2 tensors"])
    }

    func testSplitFileWithoutSplitName() {
        let p = write(splitFile(no: 0, count: 2, total: 2, tensor: "a"), "model.gguf")
        assertRejected(p, ["declares split.count 2 but is not named like STEM-00001-of-00002.gguf"])
    }

    func testSameTensorInTwoSplits() {
        let first = write(splitFile(no: 0, count: 2, total: 2, tensor: "a"), "m-00001-of-00002.gguf")
        let second = write(splitFile(no: 1, count: 2, total: 2, tensor: "a"), "m-00002-of-00002.gguf")
        XCTAssertThrowsError(try GGUFReader.read(first)) { e in
            XCTAssertEqual("\(e)", "\(second): tensor 'a' appears more than once")
        }
    }
}

/// A small deterministic generator for the corruption test.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
