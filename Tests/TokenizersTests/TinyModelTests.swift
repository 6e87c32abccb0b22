import Foundation
import TensorGraph
import TestSupport
import XCTest

@testable import Tokenizers

/// The tiny GPT-2, Llama and Qwen2 models' own `tokenizer.json` files (golden/tiny, made by
/// `tokenizers`' trainer, one per kind gpt-2 / llama-bpe / qwen2), read into a `Tokenizer` here
/// and compared with the Python package on the wiki text and the tricky strings.
final class TinyModelTests: XCTestCase {
    static func tinyDir(_ name: String) throws -> String {
        let d = TestSupport.path("golden/tiny/\(name)")
        try TestSupport.requireFile(d + "/tokenizer.json")
        return d
    }

    /// A minimal tokenizer.json → Tokenizer reading (vocab, merges, added tokens, the pre-tokenizer
    /// kind by its regex, BOS from tokenizer_config.json) and the file's `model.ignore_merges`.
    static func read(_ dir: String) throws -> (Tokenizer, ignoreMerges: Bool, json: Data) {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/tokenizer.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let model = json["model"] as! [String: Any]
        let vocab = model["vocab"] as! [String: Int]
        var byID = [Int: String]()
        for (s, i) in vocab { byID[i] = s }
        var types = [Int: Int32]()
        for a in json["added_tokens"] as? [[String: Any]] ?? [] {
            let id = a["id"] as! Int
            byID[id] = (a["content"] as! String)
            types[id] = (a["special"] as? Bool) == true ? 3 : 4
        }
        var t = Tokenizer()
        t.model = "gpt2"
        let count = (byID.keys.max() ?? -1) + 1
        for i in 0..<count {
            t.tokens.append(byID[i] ?? "[PAD\(i)]")
            t.tokenTypes.append(byID[i] == nil ? 5 : types[i] ?? 1)
        }
        t.merges = (model["merges"] as! [Any]).map { m in
            if let s = m as? String { return s }
            let pair = m as! [String]
            return pair[0] + " " + pair[1]
        }
        let pre = String(decoding: try JSONSerialization.data(withJSONObject: json["pre_tokenizer"]!), as: UTF8.self)
        // JSONSerialization escapes "/" but not backslashes differently; compare on the regex text.
        if pre.contains("\\\\p{N}{1,3}") {
            t.preTokenizer = "llama-bpe"
        } else if pre.contains("Split") {
            t.preTokenizer = "qwen2"
        } else {
            t.preTokenizer = "gpt-2"
        }
        if let cfg = try? Data(contentsOf: URL(fileURLWithPath: dir + "/tokenizer_config.json")),
            let c = try JSONSerialization.jsonObject(with: cfg) as? [String: Any]
        {
            if let bos = c["bos_token"] as? String { t.bosTokenID = t.tokens.firstIndex(of: bos) }
            if let eos = c["eos_token"] as? String { t.eosTokenID = t.tokens.firstIndex(of: eos) }
            t.addBOS = c["add_bos_token"] as? Bool
        }
        return (t, model["ignore_merges"] as? Bool ?? false, data)
    }

    func check(_ name: String, kind: String) throws {
        let (t, ignoreMerges, data) = try Self.read(try Self.tinyDir(name))
        XCTAssertEqual(t.preTokenizer, kind)
        let tok = try BPETokenizer(tokenizer: t, ignoreMerges: ignoreMerges)
        let strings = HFTokenizersTests.comparable(try Fixtures.goldenJSON("strings.json")["strings"] as! [String])
        let wiki = try Fixtures.wikiText()
        let fuzz = try Fixtures.fuzzText()
        let ref = try HFTokenizersTests.reference(tokenizerJSON: data, texts: [wiki, fuzz] + strings)
        let ours = tok.encode(wiki, addBOS: false)
        XCTAssertGreaterThan(ours.count, 500_000)  // a 320-token vocabulary: few merges
        if let diff = Fixtures.firstDifference(ours, ref.ids[0], tokenizer: tok) { XCTFail("\(name) wiki: \(diff)") }
        if let diff = Fixtures.firstDifference(tok.encode(fuzz, addBOS: false), ref.ids[1], tokenizer: tok) {
            XCTFail("\(name) fuzz: \(diff)")
        }
        for (s, want) in zip(strings, ref.ids.dropFirst(2)) {
            XCTAssertEqual(tok.encode(s, addBOS: false), want, "\(name): \(s.debugDescription)")
        }
        XCTAssertEqual(tok.decodeBytes(ours), Array(wiki.utf8))
    }

    func testTinyGPT2() throws { try check("gpt2", kind: "gpt-2") }
    func testTinyLlama() throws { try check("llama", kind: "llama-bpe") }
    func testTinyQwen2() throws { try check("qwen2", kind: "qwen2") }

    /// The tiny Llama asks for BOS (add_bos_token) and llama-bpe defaults to it.
    func testTinyLlamaAddsBOS() throws {
        let (t, _, _) = try Self.read(try Self.tinyDir("llama"))
        let tok = try BPETokenizer(tokenizer: t)
        XCTAssertTrue(tok.addsBOS)
        XCTAssertTrue(tok.ignoresMerges)
        let ids = tok.encode("Hello")
        XCTAssertEqual(ids.first, Int32(t.bosTokenID!))
        XCTAssertEqual(Array(tok.encode("Hello", addBOS: false)), Array(ids.dropFirst()))
    }
}
