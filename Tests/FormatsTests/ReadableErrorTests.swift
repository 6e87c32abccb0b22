import Formats
import Foundation
import TensorGraph
import TestSupport
import XCTest

/// Error messages people can read: input echoed in a message has its control bytes escaped and
/// is cut to a sane length, JSON shows as JSON, and the message names the file.
final class ReadableErrorTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestSupport.tempDir("readable-errors") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let path = "\(dir)/\(name)"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func message(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            XCTFail("no error")
            return ""
        } catch { return "\(error)" }
    }

    /// No control character reaches the terminal.
    func assertPrintable(_ text: String, line: UInt = #line) {
        XCTAssertFalse(
            text.unicodeScalars.contains { $0.value < 0x20 || (0x7f..<0xa0).contains($0.value) },
            "control character in: \(text.debugDescription)", line: line)
    }

    func testGGUFKeyWithControlBytes() {
        var g = GGUFBytes()
        g.header(tensors: 0, keys: 2)
        g.kvU32("evil\u{1b}[2J\u{7}key", 1)
        g.kvU32("evil\u{1b}[2J\u{7}key", 2)
        let path = write("keys.gguf", g.bytes)
        let text = message { try GGUFReader.read(path) }
        XCTAssertEqual(text, "\(path): metadata key 'evil\\x1b[2J\\x07key' at offset 52 appears more than once")
        assertPrintable(text)
    }

    func testGGUFTensorNameIsCut() {
        let name = String(repeating: "t", count: 10_000)
        var g = GGUFBytes()
        g.header(tensors: 1, keys: 0)
        g.tensorInfo(name, ne: [4], type: 999)
        let path = write("long.gguf", g.bytes)
        let text = message { try GGUFReader.read(path) }
        XCTAssertEqual(text, "\(path): tensor '\(String(repeating: "t", count: 80))…(10000 bytes)' has unknown ggml type 999")
    }

    func testSafetensorsUnknownDTypeIsCutAndEscaped() {
        let dtype = "F\\u001b" + String(repeating: "X", count: 3000)
        let json = "{\"w\":{\"dtype\":\"\(dtype)\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        let path = write("dtype.safetensors", withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8) + [0, 0, 0, 0])
        let text = message { try SafetensorsGraph.read(path) }
        XCTAssertEqual(text, "\(path): tensor 'w': unknown dtype 'F\\x1b\(String(repeating: "X", count: 75))…(3002 bytes)'")
        assertPrintable(text)
    }

    func testSafetensorsBadDimensionShowsJSON() {
        let json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}"
        let path = write("dim.safetensors", withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { Array($0) } + Array(json.utf8) + [0, 0, 0, 0])
        let text = message { try SafetensorsGraph.read(path) }
        XCTAssertEqual(text, "\(path): tensor 'w': shape has a dimension that is not a non-negative integer (1.5)")
    }

    func testJSONErrorsShowBytesNotRawCharacters() {
        XCTAssertEqual(message { try JSONParser.parse([0x5b, 0x1b]) }, "invalid JSON at byte 1: unexpected character byte 0x1b")
        XCTAssertEqual(message { try JSONParser.parse(Array("[\u{7}]".utf8)) }, "invalid JSON at byte 1: unexpected character byte 0x07")
        XCTAssertEqual(
            message { try JSONParser.parse(Array("{\"a\u{1b}\":1,\"a\u{1b}\":2}".utf8)) },
            "invalid JSON at byte 3: control character in string")
        XCTAssertEqual(
            message { try JSONParser.parse(Array("{\"a\\u001b\":1,\"a\\u001b\":2}".utf8)) },
            "invalid JSON at byte 13: duplicate key \"a\\x1b\"")
    }

    /// A read past the end says where the file ends, not how many bytes this read got.
    func testShortReadSaysWhereTheFileEnds() throws {
        let path = write("short.bin", [UInt8](repeating: 7, count: 100))
        let file = try ReadableFile(path: path)
        XCTAssertEqual(
            message { try file.readBytes(at: 90, count: 50) },
            "\(path): truncated: wanted 50 bytes at offset 90, but the file ends at byte 100 (got 10)")
        XCTAssertEqual(
            message { try file.readBytes(at: 100, count: 4) },
            "\(path): truncated: wanted 4 bytes at offset 100, but the file ends at byte 100 (got 0)")
    }

    /// Errors after reading (conversion, tokenizer files) get the input's path in front, once.
    func testInputErrorNamesThePathOnce() {
        struct Plain: Error, CustomStringConvertible { var description: String { "tokenizer.json: bad" } }
        XCTAssertEqual(message { try InputError.naming("/m/folder") { throw Plain() } }, "/m/folder: tokenizer.json: bad")
        let named = message { try InputError.naming("/m/folder") { throw HFFolderError.noWeights(dir: "/m/folder") } }
        XCTAssertEqual(named, "/m/folder: no *.safetensors files and no model.safetensors.index.json")
    }
}
