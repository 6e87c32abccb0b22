import Architectures
import Formats
import TensorGraph
import XCTest

/// tokenizer.json / tokenizer_config.json errors: JSON values shown as JSON (never a Swift debug
/// description), input escaped and cut, and each message naming the one file it is about.
final class TokenizerJSONErrorTests: XCTestCase {
    static let pre = """
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        """

    func tokenizerJSON(vocab: String = "{\"a\": 0, \"b\": 1, \"ab\": 2}", merges: String = "[\"a b\"]", added: String = "[]") -> String {
        "{\"added_tokens\": \(added), \"pre_tokenizer\": \(Self.pre), \"model\": {\"type\": \"BPE\", \"vocab\": \(vocab), \"merges\": \(merges)}}"
    }

    func message(_ json: String, config: String? = nil) -> String {
        do {
            _ = try TokenizerJSON.parse(tokenizerJSON: json, tokenizerConfig: config, config: nil)
            XCTFail("no error")
            return ""
        } catch { return "\(error)" }
    }

    func testValidInputParses() throws {
        let tok = try TokenizerJSON.parse(tokenizerJSON: tokenizerJSON(), tokenizerConfig: "{\"add_bos_token\": true}", config: nil)
        XCTAssertEqual(tok.tokens, ["a", "b", "ab"])
        XCTAssertEqual(tok.merges, ["a b"])
    }

    func testMergeIsShownAsJSON() {
        XCTAssertEqual(
            message(tokenizerJSON(merges: "[[\"we\"]]")),
            "tokenizer.json: merge [\"we\"] is neither \"a b\" nor [\"a\", \"b\"]")
        let text = message(tokenizerJSON(merges: "[{\"x\\u001b\": [1, 2, null]}]"))
        XCTAssertFalse(text.contains("JSONValue"), text)
        XCTAssertEqual(text, "tokenizer.json: merge {\"x\\u001b\":[1,2,null]} is neither \"a b\" nor [\"a\", \"b\"]")
    }

    func testAddedTokenAndVocabIDAreShownAsJSON() {
        XCTAssertEqual(
            message(tokenizerJSON(added: "[{\"content\": \"<s>\", \"id\": \"7\"}]")),
            "tokenizer.json: added token {\"content\":\"<s>\",\"id\":\"7\"} lacks an id in 0..<10000000 or a string content")
        XCTAssertEqual(
            message(tokenizerJSON(vocab: "{\"a\\u001b\": -1}")),
            "tokenizer.json: vocab id -1 of 'a\\x1b' is not an integer in 0..<10000000")
    }

    func testLongValuesAreCut() {
        let long = String(repeating: "m", count: 4000)
        XCTAssertEqual(
            message(tokenizerJSON(merges: "[[\"\(long)\"]]")),
            "tokenizer.json: merge [\"\(String(repeating: "m", count: 78))…(4004 bytes) is neither \"a b\" nor [\"a\", \"b\"]")
    }

    /// The config file's errors name that file only (not "tokenizer.json: tokenizer_config.json: …").
    func testConfigErrorNamesOneFile() {
        XCTAssertEqual(
            message(tokenizerJSON(), config: "{\"add_bos_token\": tru"),
            "tokenizer_config.json: invalid JSON at byte 18: unexpected end of text")
    }

    func testNotBPEShowsTheType() {
        XCTAssertEqual(
            message("{\"model\": {\"type\": \"Uni\\u0007gram\"}}"),
            "tokenizer.json: model type \"Uni\\u0007gram\" is not \"BPE\" (only byte-level BPE converts)")
    }
}
