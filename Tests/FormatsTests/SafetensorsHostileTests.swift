import Formats
import TensorGraph
import TestSupport
import XCTest

/// One test per kind of hostile safetensors input: each must be refused with a message that names
/// the file (and the tensor where there is one), never a crash.
final class SafetensorsHostileTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestSupport.tempDir("st-hostile") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes a file: 8-byte length (the header's, unless `declared` overrides), header, data.
    func file(_ name: String, header: [UInt8], data: [UInt8] = [], declared: UInt64? = nil) -> String {
        var bytes = withUnsafeBytes(of: (declared ?? UInt64(header.count)).littleEndian) { Array($0) }
        bytes += header + data
        let path = "\(dir)/\(name)"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func file(_ name: String, json: String, data: [UInt8] = []) -> String {
        file(name, header: Array(json.utf8), data: data)
    }

    func assertRejected(_ path: String, _ fragments: [String], line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsGraph.read(path), line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), "message does not name the file: \(message)", line: line)
            for f in fragments {
                XCTAssertTrue(message.contains(f), "'\(f)' not in: \(message)", line: line)
            }
        }
    }

    func testShorterThanTheLengthPrefix() {
        let p = "\(dir)/tiny.safetensors"
        FileManager.default.createFile(atPath: p, contents: Data([1, 2, 3]))
        assertRejected(p, ["3 bytes, less than the 8-byte header length"])
    }

    func testHeaderLengthLargerThanFile() {
        assertRejected(file("a.safetensors", header: Array("{}".utf8), declared: 1000), ["header length 1000 bytes runs past the end of the 10-byte file"])
    }

    func testHeaderLengthAboveLimit() {
        assertRejected(file("a.safetensors", header: Array("{}".utf8), declared: 200_000_000), ["header length 200000000 bytes is above the 100000000-byte limit"])
    }

    func testInvalidJSON() {
        assertRejected(file("a.safetensors", json: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]"#, data: [0, 0, 0, 0]), ["header is not valid", "invalid JSON"])
    }

    func testInvalidUTF8() {
        var header = Array(#"{"w\#u{0}": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#.utf8)
        header[3] = 0xff  // the byte after "w" in the name
        assertRejected(file("a.safetensors", header: header, data: [0, 0, 0, 0]), ["not valid UTF-8"])
    }

    func testUnknownDType() {
        assertRejected(file("a.safetensors", json: #"{"w": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), ["tensor 'w'", "unknown dtype 'F33'"])
    }

    func testOffsetsOutOfRange() {
        assertRejected(file("a.safetensors", json: #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, data: [0, 0, 0, 0]), ["tensor 'w'", "data_offsets [0, 8] are outside the 4-byte data section"])
    }

    func testOverlappingTensors() {
        let json = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#
        assertRejected(file("a.safetensors", json: json, data: [UInt8](repeating: 0, count: 12)), ["tensor 'b' starts at 4, overlapping 'a' which ends at 8"])
    }

    func testGapBetweenTensors() {
        let json = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#
        assertRejected(file("a.safetensors", json: json, data: [UInt8](repeating: 0, count: 12)), ["tensor 'b' starts at 8 but 'a' ends at 4: gap of 4 bytes"])
    }

    func testTrailingBytesAfterLastTensor() {
        let json = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#
        assertRejected(file("a.safetensors", json: json, data: [UInt8](repeating: 0, count: 10)), ["tensors end at data byte 4 but the data section has 10 bytes"])
    }

    func testSpanDoesNotMatchShape() {
        let json = #"{"w": {"dtype": "F16", "shape": [3], "data_offsets": [0, 8]}}"#
        assertRejected(file("a.safetensors", json: json, data: [UInt8](repeating: 0, count: 8)), ["tensor 'w'", "data_offsets span 8 bytes but F16 [3] needs 6"])
    }

    func testDuplicateNames() {
        let json = #"{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}"#
        assertRejected(file("a.safetensors", json: json, data: [1, 2]), ["tensor 'w' is listed more than once"])
    }

    func testShapeProductOverflow() {
        let json = #"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#
        assertRejected(file("a.safetensors", json: json, data: [0, 0, 0, 0]), ["tensor 'w'", "overflows"])
    }

    func testNegativeOrFractionalDimension() {
        let json = #"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#
        assertRejected(file("a.safetensors", json: json, data: [0, 0, 0, 0]), ["tensor 'w'", "not a non-negative integer"])
    }

    func testMetadataMustBeStrings() {
        let json = #"{"__metadata__": {"n": 3}}"#
        assertRejected(file("a.safetensors", json: json), ["__metadata__: value of 'n' is not a string"])
    }

    func indexFile(_ weightMap: String) -> String {
        let p = "\(dir)/model.safetensors.index.json"
        FileManager.default.createFile(atPath: p, contents: Data(#"{"metadata": {"total_size": 4}, "weight_map": \#(weightMap)}"#.utf8))
        return p
    }

    func testIndexNamesMissingShard() {
        let p = indexFile(#"{"w": "model-00001-of-00002.safetensors"}"#)
        assertRejected(p, ["shard 'model-00001-of-00002.safetensors' (named for tensor 'w') does not exist"])
    }

    func testIndexTensorMissingFromShard() {
        _ = file("model-00001-of-00001.safetensors", json: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
        let p = indexFile(#"{"w": "model-00001-of-00001.safetensors", "v": "model-00001-of-00001.safetensors"}"#)
        assertRejected(p, ["tensor 'v' is mapped to 'model-00001-of-00001.safetensors', which does not contain it"])
    }

    func testIndexShardOutsideFolderRefused() {
        let p = indexFile(#"{"w": "../etc/passwd"}"#)
        assertRejected(p, ["must be a file name in the index's folder"])
    }

    func testCLIExitsNonZeroWithMessage() throws {
        let p = file("bad.safetensors", json: #"{"w": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
        let r = try TestSupport.smelt(["inspect", p])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("\(p): tensor 'w': unknown dtype 'F33'"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    func testFailedWriteLeavesNoOutput() throws {
        // A tensor whose bytes fail half way through the write (as a truncated or vanished source
        // would): nothing may appear under the output name, and no temporary file may remain.
        let out = "\(dir)/out.safetensors"
        let good = try Tensor(name: "a", dtype: .u8, shape: [16], storage: MemoryStorage([UInt8](repeating: 7, count: 16)))
        let failing = ProducedStorage(byteCount: 64 << 20) { offset, _ in
            if offset > 0 { throw StorageError.shortRead(file: "vanished.safetensors", offset: offset, wanted: 1, got: 0) }
        }
        let bad = try Tensor(name: "b", dtype: .u8, shape: [64 << 20], storage: failing)
        XCTAssertThrowsError(try SafetensorsWriter.write(try TensorGraph(tensors: [good, bad]), to: out)) { e in
            XCTAssertTrue("\(e)".contains("tensor 'b'"), "\(e)")
            XCTAssertTrue("\(e)".contains("vanished.safetensors"), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])

        let q = try Tensor(name: "q", dtype: .q8_0, shape: [32], storage: MemoryStorage([UInt8](repeating: 0, count: 34)))
        XCTAssertThrowsError(try SafetensorsWriter.write(try TensorGraph(tensors: [q]), to: out)) { e in
            XCTAssertTrue("\(e)".contains("tensor 'q': safetensors cannot hold Q8_0"), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
