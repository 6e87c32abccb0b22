import Foundation
import TensorGraph
import TestSupport
import XCTest

@testable import Formats
@testable import Tokenizers

/// SentencePiece (`tokenizer.ggml.model = "llama"`) as llama.cpp tokenizes.
final class SentencePieceTests: XCTestCase {
    /// A vocabulary by hand: (text, score, type).
    func tokenizer(_ vocab: [(String, Float, TokenType)], spacePrefix: Bool = false) throws -> SentencePieceTokenizer {
        var t = Tokenizer()
        t.model = "llama"
        t.tokens = vocab.map(\.0)
        t.tokenTypes = vocab.map { $0.2.rawValue }
        t.addBOS = false
        var m = Metadata()
        m["tokenizer.ggml.scores"] = .array(elementType: .float32, values: vocab.map { .float32($0.1) })
        m["tokenizer.ggml.add_space_prefix"] = .bool(spacePrefix)
        return try SentencePieceTokenizer(tokenizer: t, metadata: m)
    }

    let vocab: [(String, Float, TokenType)] = [
        ("<unk>", 0, .unknown), ("<s>", 0, .control), ("<0x21>", 0, .byte), ("▁", -1, .normal), ("a", -1, .normal),
        ("b", -1, .normal), ("c", -1, .normal), ("ab", -2, .normal), ("bc", -1, .normal), ("abc", -0.5, .normal),
        ("▁a", -3, .normal), ("\n\n", 0, .userDefined),
    ]

    func testHighestScoreMergesFirstThenBytes() throws {
        let t = try tokenizer(vocab)
        // bc (−1) before ab (−2); then a + bc = abc.
        XCTAssertEqual(t.encode("abc"), [9])
        // "!" is no token: its byte token.
        XCTAssertEqual(t.encode("ab!"), [7, 2])
        // Spaces are ▁; no prefix when add_space_prefix is false, one when it is true.
        XCTAssertEqual(t.encode("a b"), [4, 3, 5])
        XCTAssertEqual(try tokenizer(vocab, spacePrefix: true).encode("a b"), [10, 3, 5])
        // User-defined tokens are cut out even without parsing special text; control ones only with it.
        XCTAssertEqual(t.encode("!\n\nab", parseSpecial: false), [2, 11, 7])
        XCTAssertEqual(t.encode("<s>a", parseSpecial: true), [1, 4])
    }

    func testEqualScoresMergeLeftmostFirst() throws {
        let t = try tokenizer([("a", -1, .normal), ("b", -1, .normal), ("c", -1, .normal), ("ab", -1, .normal), ("bc", -1, .normal)])
        XCTAssertEqual(t.encode("abc"), [3, 2])
    }

    /// Every id of the wiki text with Gemma 3 270M's GGUF, as llama-tokenize gives them
    /// (golden/make_gemma3_golden.sh): BOS first, special-token text not parsed.
    func testGemma3WikiTextMatchesLlamaCppIdForId() throws {
        let model = try TestSupport.requireModel(TestSupport.gemma3)
        let g = try GGUFReader.read(model)
        let t = try SentencePieceTokenizer(tokenizer: g.tokenizer, metadata: g.metadata)
        let expected = Fixtures.u32LE(try Fixtures.zstdDecompress(TestSupport.path("golden/gemma3/wiki.u32.zst")))
        XCTAssertGreaterThan(expected.count, 290_000)
        let ours = t.encode(utf8: try Fixtures.wikiBytes(), parseSpecial: false)
        XCTAssertEqual(ours.count, expected.count)
        if let i = ours.indices.first(where: { $0 < expected.count && ours[$0] != expected[$0] }) {
            XCTFail("first difference at id \(i): ours \(ours[i..<min(i + 8, ours.count)]), llama.cpp \(expected[i..<min(i + 8, expected.count)])")
        }
    }
}
