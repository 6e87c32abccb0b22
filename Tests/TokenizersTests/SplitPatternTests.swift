import XCTest

@testable import Tokenizers

/// Pre-token boundaries of each kind on small cases worked out from the regexes by hand.
final class SplitPatternTests: XCTestCase {
    func split(_ kind: String, _ text: String) -> [String] { PreTokenizerKind.named(kind)!.split(text) }

    func testGPT2() {
        XCTAssertEqual(split("gpt-2", "Hello world"), ["Hello", " world"])
        XCTAssertEqual(split("gpt-2", "Hello  world"), ["Hello", " ", " world"])
        XCTAssertEqual(split("gpt-2", "a\n\nb"), ["a", "\n", "\n", "b"])
        XCTAssertEqual(split("gpt-2", "it's I'M we've"), ["it", "'s", " I", "'", "M", " we", "'ve"])
        XCTAssertEqual(split("gpt-2", "x   "), ["x", "   "])
        XCTAssertEqual(split("gpt-2", "x \ty"), ["x", " ", "\t", "y"])
        XCTAssertEqual(split("gpt-2", "abc123 456!!"), ["abc", "123", " 456", "!!"])
        XCTAssertEqual(split("gpt-2", " !? x"), [" !?", " x"])
        XCTAssertEqual(split("gpt-2", ""), [])
    }

    func testSmolLMSplitsEveryDigit() {
        XCTAssertEqual(split("smollm", "abc 1234x"), ["abc", " ", "1", "2", "3", "4", "x"])
        XCTAssertEqual(split("smollm", "Ⅻ½٣"), ["Ⅻ", "½", "٣"])
    }

    func testLlama3() {
        XCTAssertEqual(split("llama-bpe", "I'M HE'LL it's"), ["I", "'M", " HE", "'LL", " it", "'s"])
        XCTAssertEqual(split("llama-bpe", "1234567"), ["123", "456", "7"])
        XCTAssertEqual(split("llama-bpe", "x1234"), ["x", "123", "4"])
        XCTAssertEqual(split("llama-bpe", "  \n  x"), ["  \n", " ", " x"])
        XCTAssertEqual(split("llama-bpe", "a\r\n\r\nb"), ["a", "\r\n\r\n", "b"])
        XCTAssertEqual(split("llama-bpe", "\"hello\""), ["\"hello", "\""])
        XCTAssertEqual(split("llama-bpe", "x ...\n\ny"), ["x", " ...\n\n", "y"])
        XCTAssertEqual(split("llama-bpe", "\tword"), ["\tword"])
        XCTAssertEqual(split("llama-bpe", "a  "), ["a", "  "])
    }

    func testQwen2SplitsEveryDigit() {
        XCTAssertEqual(split("qwen2", "x1234 5"), ["x", "1", "2", "3", "4", " ", "5"])
    }

    func testDefault() {
        // [\p{P}$+<=>^~|]+ first, then GPT-2's pattern, then \p{N}+, then [0-9]{3} triples.
        XCTAssertEqual(split("default", "a+b=1234567"), ["a", "+", "b", "=", "123", "456", "7"])
        XCTAssertEqual(split("default", "hi, you!"), ["hi", ",", " you", "!"])
        XCTAssertEqual(PreTokenizerKind.named(nil)?.name, "default")
    }

    func testWhitespaceIsTheWhiteSpaceSet() {
        for v: UInt32 in [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000] {
            XCTAssertTrue(CharacterClass.of(v).contains(.whitespace), String(v, radix: 16))
        }
        for v: UInt32 in [0x200B, 0x180E, 0xFEFF, 0x1C, 0x1F] {
            XCTAssertFalse(CharacterClass.of(v).contains(.whitespace), String(v, radix: 16))
        }
        XCTAssertEqual(CharacterClass.whitespaceScalars.count, 25)
        // Swift's White_Space property agrees.
        for v in 0..<0x110000 {
            guard let s = Unicode.Scalar(UInt32(v)) else { continue }
            XCTAssertEqual(s.properties.isWhitespace, CharacterClass.whitespaceScalars.contains(UInt32(v)), String(v, radix: 16))
        }
    }

    func testCategories() {
        XCTAssertEqual(CharacterClass.of(0x41), [.letter, .upperOrTitle])
        XCTAssertEqual(CharacterClass.of(0x1C5), [.letter, .upperOrTitle])  // ǅ Lt
        XCTAssertEqual(CharacterClass.of(0x2B0), [.letter, .modifierOrOther])  // ʰ Lm
        XCTAssertEqual(CharacterClass.of(0x6771), [.letter, .modifierOrOther])  // 東 Lo
        XCTAssertEqual(CharacterClass.of(0x216B), .number)  // Ⅻ Nl
        XCTAssertEqual(CharacterClass.of(0xBD), .number)  // ½ No
        XCTAssertEqual(CharacterClass.of(0x663), .number)  // ٣ Nd
        XCTAssertEqual(CharacterClass.of(0x301), .mark)  // combining acute: Mn (not \p{L})
        XCTAssertEqual(CharacterClass.of(0x61), [.letter, .lowercase])
        XCTAssertEqual(CharacterClass.of(0x1F642), [])  // 🙂 So
        XCTAssertEqual(CharacterClass.of(0x20000), [.letter, .modifierOrOther])  // CJK Ext B
        XCTAssertEqual(CharacterClass.of(0x2C), .punctuation)
        XCTAssertEqual(CharacterClass.of(0x24), [])  // $ Sc
        // Assigned after Unicode 15.1 (llama.cpp's tables): unassigned here, whatever Swift knows.
        XCTAssertEqual(CharacterClass.of(0x1C89), [])  // CYRILLIC CAPITAL LETTER TJE, Unicode 16
        XCTAssertEqual(CharacterClass.of(0x10D40), [])  // GARAY DIGIT ZERO, Unicode 16
        XCTAssertEqual(CharacterClass.of(0x2EBF0), [.letter, .modifierOrOther])  // CJK Extension I, Unicode 15.1
    }
}
