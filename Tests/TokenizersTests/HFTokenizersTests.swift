import Foundation
import TensorGraph
import TestSupport
import XCTest

@testable import Tokenizers

/// Our ids against the Python `tokenizers` package (Hugging Face's Rust tokenizer) given the same
/// vocabulary, merges, special tokens and the pre-tokenizer that `tokenizer.json` files of each
/// kind carry.
final class HFTokenizersTests: XCTestCase {
    /// Tokenizes each text with `tokenizers.Tokenizer.from_file(tokenizer.json)`, no special
    /// tokens added; texts are read as one JSON list from the file named by argv[2].
    static let script = """
        import json, sys
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(sys.argv[1])
        texts = json.load(open(sys.argv[2], encoding='utf-8'))
        pre = tok.pre_tokenizer
        out = {'ids': [tok.encode(t, add_special_tokens=False).ids for t in texts]}
        if len(sys.argv) > 3:
            # lengths of the pre-tokens of the first text (byte-level characters: one per byte)
            out['pre'] = [len(p) for p, _ in pre.pre_tokenize_str(texts[0])]
        json.dump(out, sys.stdout)
        """

    struct Reference {
        var ids: [[Int32]]
        var preLengths: [Int]?
    }

    static func reference(tokenizerJSON: Data, texts: [String], preTokens: Bool = false) throws -> Reference {
        let dir = TestSupport.tempDir("tok-hf")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tj = dir + "/tokenizer.json", tx = dir + "/texts.json", py = dir + "/ref.py"
        try tokenizerJSON.write(to: URL(fileURLWithPath: tj))
        try JSONSerialization.data(withJSONObject: texts).write(to: URL(fileURLWithPath: tx))
        try script.write(toFile: py, atomically: true, encoding: .utf8)
        let check = try TestSupport.python(["-c", "import tokenizers"])
        guard check.status == 0 else {
            throw TestSupport.MissingInput(message: "python3 cannot import tokenizers (make pydeps): \(check.stderr)")
        }
        let data = try Fixtures.runData("/usr/bin/env", ["python3", py, tj, tx] + (preTokens ? ["pre"] : []))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let ids = (json["ids"] as! [[Int]]).map { $0.map(Int32.init) }
        return Reference(ids: ids, preLengths: json["pre"] as? [Int])
    }

    /// The `pre_tokenizer` a tokenizer.json of this kind has, in Hugging Face's own terms where it
    /// has them (ByteLevel's built-in GPT-2 regex, Digits) and as Split regexes otherwise.
    static func preTokenizerJSON(_ kind: PreTokenizerKind) -> Any {
        func byteLevel(_ useRegex: Bool) -> [String: Any] {
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": useRegex]
        }
        if kind.patterns == [.gpt2] { return byteLevel(true) }
        var steps: [Any] = []
        for (i, p) in kind.patterns.enumerated() {
            if p == .numbers {
                steps.append(["type": "Digits", "individual_digits": true])
            } else if p == .gpt2 && i == kind.patterns.count - 1 {
                steps.append(byteLevel(true))
                return ["type": "Sequence", "pretokenizers": steps]
            } else {
                steps.append(["type": "Split", "pattern": ["Regex": p.regex], "behavior": "Isolated", "invert": false])
            }
        }
        steps.append(byteLevel(false))
        return ["type": "Sequence", "pretokenizers": steps]
    }

    /// A tokenizer.json for a GGUF tokenizer under `kind`.
    static func tokenizerJSON(_ t: Tokenizer, kind: PreTokenizerKind, ignoreMerges: Bool) throws -> Data {
        var vocab: [String: Int] = [:]
        var added: [[String: Any]] = []
        for (i, s) in t.tokens.enumerated() {
            vocab[s] = i
            let type = i < t.tokenTypes.count ? t.tokenTypes[i] : 1
            if type == 3 || type == 4 {
                added.append([
                    "id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": type == 3,
                ])
            }
        }
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": preTokenizerJSON(kind), "post_processor": NSNull(),
            "decoder": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false,
                "ignore_merges": ignoreMerges, "vocab": vocab, "merges": t.merges,
            ] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: json)
    }

    /// Strings where the Python package and llama.cpp are known to differ, left out here:
    /// Oniguruma's `(?i)` folds `ſ` (U+017F) to `s` and `ﬅ` to `st` (llama.cpp folds ASCII only),
    /// and its Unicode tables are newer than llama.cpp's 15.1 (U+1C89 is a letter there, an
    /// unassigned code point in llama.cpp and here).
    static func comparable(_ strings: [String]) -> [String] {
        strings.filter { s in
            !s.unicodeScalars.contains { u in
                u == "ſ" || u == "ﬅ" || u.properties.age.map { ($0.major, $0.minor) > CharacterClass.unicodeVersion } ?? false
            }
        }
    }

    /// SmolLM2's vocabulary under `kind`: the pre-tokens of the whole wiki text (byte lengths), its
    /// ids, the ids of the random fuzz text and of the tricky strings.
    func checkSmolLM2(kind: String) throws {
        let base = try Fixtures.smolLM2()
        let strings = Self.comparable(try Fixtures.goldenJSON("strings.json")["strings"] as! [String])
        let wiki = try Fixtures.wikiText()
        let tok = try Fixtures.smolLM2(kind: kind)
        let json = try Self.tokenizerJSON(base, kind: tok.kind, ignoreMerges: tok.ignoresMerges)
        let fuzz = try Fixtures.fuzzText()
        let ref = try Self.reference(tokenizerJSON: json, texts: [wiki, fuzz] + strings, preTokens: true)

        let pieces = tok.preTokenize(wiki, parseSpecial: false).map { $0.utf8.count }
        let preRef = try XCTUnwrap(ref.preLengths)
        XCTAssertGreaterThan(pieces.count, 200_000)
        XCTAssertEqual(pieces.count, preRef.count, "\(kind): pre-token count")
        if let i = pieces.indices.first(where: { $0 < preRef.count && pieces[$0] != preRef[$0] }) {
            let offset = pieces[..<i].reduce(0, +)
            let around = String(decoding: Array(wiki.utf8)[max(0, offset - 20)..<min(wiki.utf8.count, offset + 40)], as: UTF8.self)
            XCTFail("\(kind): pre-token #\(i) at byte \(offset) is \(pieces[i]) bytes, reference \(preRef[i]): \(around.debugDescription)")
        }

        let ours = try Fixtures.wikiIDs(kind: kind)
        XCTAssertGreaterThan(ours.count, 250_000)
        if let diff = Fixtures.firstDifference(ours, ref.ids[0], tokenizer: tok) { XCTFail("\(kind) wiki: \(diff)") }
        let fuzzIDs = try Fixtures.ids(text: "fuzz.txt", kind: kind)
        if let diff = Fixtures.firstDifference(fuzzIDs, ref.ids[1], tokenizer: tok) { XCTFail("\(kind) fuzz: \(diff)") }
        for (s, want) in zip(strings, ref.ids.dropFirst(2)) {
            XCTAssertEqual(tok.encode(s, addBOS: false), want, "\(kind): \(s.debugDescription)")
        }
    }

    func testSmolLMKind() throws { try checkSmolLM2(kind: "smollm") }
    func testGPT2Kind() throws { try checkSmolLM2(kind: "gpt-2") }
    func testLlamaBPEKind() throws { try checkSmolLM2(kind: "llama-bpe") }
    func testQwen2Kind() throws { try checkSmolLM2(kind: "qwen2") }
    func testDefaultKind() throws { try checkSmolLM2(kind: "default") }
    func testGPT4oKind() throws {
        try checkSmolLM2(kind: "gpt-4o")
        // Where the case classes and marks decide the split: camel case, runs of capitals before
        // a lower-case letter, contractions after capitals, non-ASCII cased scripts, Lm/Lo
        // letters that are in both classes, combining marks alone and after punctuation, `/`
        // and newlines after symbols.
        let cases = [
            "HTTPServer parseJSONString XMLHttpRequest iPhone eBay McDonald's", "DON'T YOU'RE I'M we'LL They'VE",
            "ΑθήναΚαι ΣΟΦΙΑ σοφία МоскваРОССИЯ ǅemal ǈubljana", "日本語テキストとカタカナ ʰʲʷ ˈwɝd 한국어Text",
            "e\u{301}cole Cafe\u{301}s \u{301}alone .\u{301}x A\u{300}B\u{300}c \u{20DD}",
            "a/b//c \n/path/to\r\n x+=/ y;/\n\n", "123456 ٣٤٥٦ Ⅻ ½x", "  lead 'quote' \t\tTab\u{A0}nbsp'S",
        ]
        let base = try Fixtures.smolLM2()
        let tok = try Fixtures.smolLM2(kind: "gpt-4o")
        let json = try Self.tokenizerJSON(base, kind: tok.kind, ignoreMerges: tok.ignoresMerges)
        for c in cases {
            let ref = try Self.reference(tokenizerJSON: json, texts: [c], preTokens: true)
            XCTAssertEqual(tok.preTokenize(c, parseSpecial: false).map { $0.utf8.count }, ref.preLengths, "gpt-4o pre-tokens of \(c.debugDescription)")
            XCTAssertEqual(tok.encode(c, addBOS: false), ref.ids[0], "gpt-4o ids of \(c.debugDescription)")
        }
    }
}
