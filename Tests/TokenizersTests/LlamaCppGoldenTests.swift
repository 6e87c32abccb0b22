import Foundation
import TensorGraph
import TestSupport
import XCTest

@testable import Tokenizers

/// Our ids against llama.cpp's `llama-tokenize` on the same GGUF vocabulary
/// (golden/make_tokenizer_golden.sh).
final class LlamaCppGoldenTests: XCTestCase {
    static let kinds = ["smollm", "gpt-2", "llama-bpe", "qwen2", "default"]

    /// Every id of the whole wiki text with SmolLM2's own tokenizer (pre-tokenizer smollm).
    func testWholeWikiTextMatchesLlamaCppIdForId() throws {
        let tok = try Fixtures.smolLM2(kind: "smollm")
        XCTAssertEqual(tok.kind.name, "smollm")
        let expected = Fixtures.u32LE(try Fixtures.zstdDecompress(Fixtures.goldenDir + "/smollm2-wiki.u32.zst"))
        XCTAssertGreaterThan(expected.count, 250_000)
        let ours = try Fixtures.wikiIDs(kind: "smollm")
        XCTAssertEqual(ours.count, expected.count)
        if let diff = Fixtures.firstDifference(ours, expected, tokenizer: tok) { XCTFail(diff) }
        // The ids decode back to the text.
        XCTAssertEqual(tok.decodeBytes(ours), try Fixtures.wikiBytes())
    }

    /// The wiki text and the random fuzz text with the same vocabulary under every pre-tokenizer
    /// kind, block by block.
    func testWholeTextsUnderEveryKindMatchLlamaCpp() throws {
        let golden = try Fixtures.goldenJSON("ids-by-kind.json")
        let block = golden["block_size"] as! Int
        let texts = golden["texts"] as! [String: Any]
        XCTAssertEqual(Set(texts.keys), ["wiki.test.raw", "fuzz.txt"])
        for (name, value) in texts.sorted(by: { $0.key < $1.key }) {
            let kinds = (value as! [String: Any])["kinds"] as! [String: Any]
            XCTAssertEqual(Set(kinds.keys), Set(Self.kinds))
            for kind in Self.kinds {
                let g = kinds[kind] as! [String: Any]
                let blocks = g["block_fnv1a64"] as! [String]
                let ours = try Fixtures.ids(text: name, kind: kind)
                XCTAssertEqual(ours.count, g["count"] as! Int, "\(name) \(kind): id count")
                for (i, expected) in blocks.enumerated() {
                    let slice = ours[min(ours.count, i * block)..<min(ours.count, (i + 1) * block)]
                    if Fixtures.fnv1a64(slice) != expected {
                        XCTFail("\(name) \(kind): ids \(i * block)..<\((i + 1) * block) differ from llama.cpp's")
                        break
                    }
                }
            }
        }
    }

    /// Tricky strings (contractions in capitals, digit runs, CJK, emoji, combining marks, CR LF,
    /// space runs, tabs, special tokens inside text…) under every kind.
    func testTrickyStringsMatchLlamaCpp() throws {
        let golden = try Fixtures.goldenJSON("strings.json")
        let strings = golden["strings"] as! [String]
        let ids = golden["ids"] as! [String: [[Int]]]
        XCTAssertGreaterThan(strings.count, 20)
        for kind in Self.kinds {
            let tok = try Fixtures.smolLM2(kind: kind)
            let expected = try XCTUnwrap(ids[kind], kind)
            XCTAssertEqual(expected.count, strings.count)
            for (s, want) in zip(strings, expected) {
                let got = tok.encode(s, addBOS: false)
                XCTAssertEqual(got, want.map(Int32.init), "\(kind): \(s.debugDescription)")
                XCTAssertEqual(Array(tok.decode(got).utf8), Array(s.utf8), "\(kind): decode")
            }
        }
    }

    /// Input that is not valid UTF-8 is read as llama.cpp reads it (U+FFFD per bad byte, overlong
    /// forms re-encoded).
    func testInvalidUTF8MatchesLlamaCpp() throws {
        let golden = try Fixtures.goldenJSON("strings.json")
        let strings = (golden["byte_strings_hex"] as! [String]).map(Self.bytes(hex:))
        let ids = golden["byte_ids"] as! [String: [[Int]]]
        XCTAssertGreaterThan(strings.count, 5)
        for kind in Self.kinds {
            let tok = try Fixtures.smolLM2(kind: kind)
            for (s, want) in zip(strings, try XCTUnwrap(ids[kind])) {
                XCTAssertEqual(tok.encode(utf8: s, addBOS: false), want.map(Int32.init), "\(kind): \(s)")
            }
        }
    }

    static func bytes(hex: String) -> [UInt8] {
        let u = Array(hex.utf8)
        return stride(from: 0, to: u.count, by: 2).map { UInt8(String(decoding: u[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }
}
