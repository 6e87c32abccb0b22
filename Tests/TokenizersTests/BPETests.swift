import Foundation
import TensorGraph
import XCTest

@testable import Tokenizers

/// The merge loop, special tokens, fallbacks and decoding on small hand-made vocabularies.
final class BPETests: XCTestCase {
    /// 256 byte tokens, then `extra` tokens (byte-level texts), with `merges` and optional types.
    func make(
        extra: [String] = [], merges: [String], pre: String = "gpt-2", types: [String: TokenType] = [:]
    ) throws -> BPETokenizer {
        var t = Tokenizer()
        t.model = "gpt2"
        t.preTokenizer = pre
        t.tokens = ByteLevel.characters.map { String(Character($0)) } + extra
        t.tokenTypes = t.tokens.map { (types[$0] ?? .normal).rawValue }
        t.merges = merges
        return try BPETokenizer(tokenizer: t)
    }

    func texts(_ tok: BPETokenizer, _ ids: [Int32]) -> [String] { ids.map { tok.tokens[Int($0)] } }

    func testMergesByRankThenLeftmost() throws {
        // "abab": (a b) has rank 0 and occurs twice: both merge, then (ab ab).
        let tok = try make(extra: ["ab", "abab", "ba"], merges: ["a b", "ab ab", "b a"])
        XCTAssertEqual(texts(tok, tok.encode("abab")), ["abab"])
        // "aba": (a b) rank 0 before (b a) rank 2.
        XCTAssertEqual(texts(tok, tok.encode("aba")), ["ab", "a"])
        // Rank order wins over position: (b a) first when it ranks first.
        let tok2 = try make(extra: ["ab", "ba"], merges: ["b a", "a b"])
        XCTAssertEqual(texts(tok2, tok2.encode("aba")), ["a", "ba"])
        // Ties (the same pair twice) go left first: "aaa" → "aa" "a".
        let tok3 = try make(extra: ["aa"], merges: ["a a"])
        XCTAssertEqual(texts(tok3, tok3.encode("aaa")), ["aa", "a"])
        XCTAssertEqual(texts(tok3, tok3.encode("aaaa")), ["aa", "aa"])
    }

    func testSpaceAndNonASCIIBytesUseByteCharacters() throws {
        let tok = try make(extra: ["Ġw", "Ġwo", "Ã©"], merges: ["Ġ w", "Ġw o", "Ã ©"])
        XCTAssertEqual(texts(tok, tok.encode(" wo")), ["Ġwo"])
        XCTAssertEqual(texts(tok, tok.encode("é")), ["Ã©"])
        XCTAssertEqual(tok.decode(tok.encode(" wo é\n")), " wo é\n")
    }

    func testMergedTextMissingFromVocabularyFallsBackToASCIIBytes() throws {
        // "a b" merges to "ab", which is not a token: llama.cpp emits the one-byte ASCII tokens.
        let tok = try make(merges: ["a b"])
        XCTAssertEqual(texts(tok, tok.encode("ab")), ["a", "b"])
        // …and drops non-ASCII parts: "é" is Ã© (two characters, no one-byte token).
        let tok2 = try make(merges: ["Ã ©"])
        XCTAssertEqual(tok2.encode("é"), [])
    }

    func testIgnoreMergesEmitsWholePreTokens() throws {
        // "abc" is a token the merges never build ((b c) first, then nothing joins a + bc).
        var tok = try make(extra: ["bc", "abc"], merges: ["b c"], pre: "gpt-2")
        XCTAssertFalse(tok.ignoresMerges)
        XCTAssertEqual(texts(tok, tok.encode("abc")), ["a", "bc"])
        tok = try make(extra: ["bc", "abc"], merges: ["b c"], pre: "llama-bpe")
        XCTAssertTrue(tok.ignoresMerges)
        XCTAssertEqual(texts(tok, tok.encode("abc abc")), ["abc", "Ġ", "a", "bc"])
    }

    func testSpecialTokensLongestFirstAndParseSpecialOff() throws {
        let tok = try make(
            extra: ["<s>", "<s><s>", "<x>"], merges: [],
            types: ["<s>": .control, "<s><s>": .userDefined, "<x>": .control])
        XCTAssertEqual(texts(tok, tok.encode("a<s><s><s>b")), ["a", "<s><s>", "<s>", "b"])
        XCTAssertEqual(texts(tok, tok.encode("<x><s>")), ["<x>", "<s>"])
        XCTAssertEqual(tok.encode("<x>", parseSpecial: false).count, 3)
        XCTAssertEqual(tok.preTokenize("hi <x> there"), ["hi", " ", "<x>", " there"])
        XCTAssertEqual(tok.decode(tok.encode("a<x>b")), "a<x>b")
        XCTAssertEqual(tok.decode(tok.encode("a<x>b"), skipSpecial: true), "ab")
        // user-defined tokens are kept by skipSpecial
        XCTAssertEqual(tok.decode(tok.encode("<s><s>"), skipSpecial: true), "<s><s>")
    }

    func testBOS() throws {
        var t = Tokenizer()
        t.model = "gpt2"
        t.tokens = ByteLevel.characters.map { String(Character($0)) } + ["<bos>"]
        t.tokenTypes = t.tokens.map { $0 == "<bos>" ? 3 : 1 }
        t.bosTokenID = 256
        t.preTokenizer = "gpt-2"
        XCTAssertEqual(try BPETokenizer(tokenizer: t).encode("a"), [0x61])  // tokens here are in byte order
        t.addBOS = true
        XCTAssertEqual(try BPETokenizer(tokenizer: t).encode("a").first, 256)
        XCTAssertEqual(try BPETokenizer(tokenizer: t).encode("a", addBOS: false).count, 1)
        t.addBOS = nil
        t.preTokenizer = "llama-bpe"  // llama.cpp's default for llama-bpe: BOS on
        XCTAssertEqual(try BPETokenizer(tokenizer: t).encode("").first, 256)
    }

    func testRejectsWhatItCannotTokenize() throws {
        var t = Tokenizer()
        t.model = "llama"
        t.tokens = ["a"]
        XCTAssertThrowsError(try BPETokenizer(tokenizer: t)) { XCTAssertEqual($0 as? TokenizerError, .notByteLevelBPE(model: "llama")) }
        t.model = "gpt2"
        t.preTokenizer = "nonsense"
        XCTAssertThrowsError(try BPETokenizer(tokenizer: t)) { XCTAssertEqual($0 as? TokenizerError, .unknownPreTokenizer("nonsense")) }
        t.preTokenizer = "gpt-2"
        t.bosTokenID = 7
        XCTAssertThrowsError(try BPETokenizer(tokenizer: t))
        t.tokens = []
        XCTAssertThrowsError(try BPETokenizer(tokenizer: t))
    }

    /// The heap merge (long pieces) and the scanning merge (short ones) agree, on the real
    /// vocabulary with random pieces.
    func testHeapAndScanMergesAgree() throws {
        let tok = try Fixtures.smolLM2(kind: "smollm")
        var rng = SplitMix(seed: 42)
        let alphabet = Array("aaaeeeiioouttnnsrrhldcmw  ..,,--==**__\n\tÃ©東🙂0123".utf8)
        var session = Session(tok)
        for round in 0..<300 {
            let n = 2 + Int(rng.next() % 400)
            let bytes = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            var a: [Int32] = [], b: [Int32] = []
            bytes.withUnsafeBufferPointer { p in
                session.mergeSmall(p, into: &a)
                session.mergeHeap(p, into: &b)
            }
            XCTAssertEqual(a, b, "round \(round)")
            XCTAssertEqual(tok.decodeBytes(a), bytes)
        }
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
