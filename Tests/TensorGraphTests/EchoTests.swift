import TensorGraph
import XCTest

/// `Echo`: how error messages show input.
final class EchoTests: XCTestCase {
    func testPlainTextIsUnchanged() {
        XCTAssertEqual(Echo.value("blk.0.attn_q.weight"), "blk.0.attn_q.weight")
        XCTAssertEqual(Echo.value("ünïcödé 🦙 東京"), "ünïcödé 🦙 東京")
        XCTAssertEqual(Echo.value(""), "")
    }

    func testControlCharactersAreEscaped() {
        XCTAssertEqual(Echo.value("a\u{1b}[31mred\u{7}"), "a\\x1b[31mred\\x07")
        XCTAssertEqual(Echo.value("line\nnext\r\ttab"), "line\\nnext\\r\\ttab")
        XCTAssertEqual(Echo.value("nul\u{0}del\u{7f}c1\u{85}"), "nul\\x00del\\x7fc1\\x85")
        // Bidirectional overrides and zero-width characters change how a line reads.
        XCTAssertEqual(Echo.value("abc\u{202e}fed\u{200b}"), "abc\\u{202e}fed\\u{200b}")
    }

    func testLongValuesAreCutWithTheirLength() {
        let long = String(repeating: "x", count: 5000)
        XCTAssertEqual(Echo.value(long), String(repeating: "x", count: 80) + "…(5000 bytes)")
        XCTAssertEqual(Echo.value(String(repeating: "x", count: 80)), String(repeating: "x", count: 80))
        // The length is of the input, in UTF-8 bytes; the cut counts escaped characters.
        let wide = String(repeating: "é", count: 100)
        XCTAssertEqual(Echo.value(wide), String(repeating: "é", count: 80) + "…(200 bytes)")
        XCTAssertEqual(Echo.value(String(repeating: "\u{1}", count: 30)), String(repeating: "\\x01", count: 20) + "…(30 bytes)")
    }

    func testPathsAreEscapedButKeptWhole() {
        let path = "/models/" + String(repeating: "d", count: 200) + "/bad\u{1b}name.gguf"
        XCTAssertEqual(Echo.path(path), "/models/" + String(repeating: "d", count: 200) + "/bad\\x1bname.gguf")
    }

    func testBytesThatAreNotUTF8() {
        XCTAssertEqual(Echo.bytes([0x61, 0xff, 0x1b, 0x62]), "a\u{fffd}\\x1bb")
    }
}
