import Architectures
import Formats
import TensorGraph
import TestSupport
import Tokenizers
import XCTest

/// SentencePiece vocabularies (`tokenizer.ggml.model = "llama"`) as Hugging Face `tokenizer.json`:
/// the file Smelt writes loads in the Python `tokenizers` package and gives llama.cpp's ids.
final class SentencePieceJSONTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("spm-json") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes the tokenizer.json Smelt makes for `graph` (GGUF → HF writes the same).
    func writeTokenizerJSON(_ graph: TensorGraph) throws -> String {
        let (tj, _) = try SentencePieceJSON.render(
            graph.tokenizer, extras: .init(metadata: graph.metadata, count: graph.tokenizer.tokens.count), maxLength: nil)
        let path = "\(dir)/tokenizer.json"
        try tj.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Gemma 3 270M: all of wiki.test.raw encodes to llama-tokenize's ids (golden/gemma3), and a
    /// text with special tokens, user-defined newline runs, byte fallback and emoji to smelt's.
    func testGemma3TokenizerJSONGivesLlamaTokenizeIds() throws {
        try TestSupport.requireModel(TestSupport.gemma3)
        let g = try GGUFReader.read(TestSupport.gemma3)
        let tj = try writeTokenizerJSON(g)
        var r = try TestSupport.python(["golden/check_sp_tokenizer.py", tj, TestSupport.wikiText, TestSupport.path("golden/gemma3/wiki.u32.zst")])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("ok: 295216 ids equal"), r.stdout)

        let text = "<start_of_turn>user\n\n\nHello  world\t tabs <end_of_turn> 🙂 東京 \u{1F9EA}\u{0E01}\u{0E34} x\u{0301}"
        let textPath = "\(dir)/text.txt", idsPath = "\(dir)/ids.txt"
        try text.write(toFile: textPath, atomically: true, encoding: .utf8)
        let encode = try TextEncoder.encoder(for: g.tokenizer, metadata: g.metadata)
        try encode(Array(text.utf8), nil, true).map(String.init).joined(separator: " ").write(toFile: idsPath, atomically: true, encoding: .utf8)
        r = try TestSupport.python(["golden/check_sp_tokenizer.py", tj, textPath, idsPath, "--parse-special"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    }

    /// Merges rank every split by the merged token's score, highest first.
    func testMergesFollowScores() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc", "<0x41>"]
        let scores: [Float] = [0, 0, 0, -5, -1, -2, 0]
        let merges = SentencePieceJSON.merges(tokens: tokens, scores: scores)
        XCTAssertEqual(merges.map { "\($0.0) \($0.1)" }, ["b c", "ab c", "a bc", "a b"])
    }
}

/// The tiny SentencePiece Llama (golden/make_tiny_spm.py: tokenizer.model trained by the
/// `sentencepiece` package, transformers' tokenizer.json): HF → GGUF writes what llama.cpp's
/// converter writes, tokenizes as llama-tokenize does, and GGUF → HF gives a tokenizer.json that
/// the `tokenizers` package loads and that encodes to the same ids.
final class SentencePieceFolderTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("spm-folder") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    let folder = TestSupport.path("golden/tiny/llama-spm")

    /// (text, llama-tokenize's ids) for the fixture's texts.
    func cases() throws -> [(String, [Int])] {
        let url = URL(fileURLWithPath: TestSupport.path("golden/llamacpp/tokenizer/llama-spm.tokenize.json"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map { ($0["text"] as! String, $0["ids"] as! [Int]) }
    }

    func tokenize(_ model: String, _ text: String) throws -> [Int] {
        let path = "\(dir)/text.txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try TestSupport.smelt(["tokenize", model, "--text", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
    }

    func copy(without file: String) throws -> String {
        let out = "\(dir)/without-\(file)"
        try FileManager.default.copyItem(atPath: folder, toPath: out)
        try FileManager.default.removeItem(atPath: "\(out)/\(file)")
        return out
    }

    func testHFToGGUFWritesWhatLlamaCppWrites() throws {
        let gguf = "\(dir)/spm.gguf"
        var r = try TestSupport.smelt(["convert", folder, gguf])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.python(["golden/llamacpp_tokenizer_keys.py", "check", gguf, "golden/llamacpp/tokenizer/llama-spm.keys.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", gguf, "golden/llamacpp/llama-spm.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        // A bare tokenizer.model (no tokenizer.json) gives the same keys.
        let bare = try copy(without: "tokenizer.json")
        r = try TestSupport.smelt(["convert", bare, "\(dir)/bare.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try GGUFReader.read(gguf), b = try GGUFReader.read("\(dir)/bare.gguf")
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.model",
                    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token"] {
            XCTAssertEqual(b.metadata[key], a.metadata[key], key)
        }
    }

    func testTokenizeAsLlamaTokenizeFromGGUFAndFolders() throws {
        let gguf = "\(dir)/spm.gguf"
        XCTAssertEqual(try TestSupport.smelt(["convert", folder, gguf]).status, 0)
        let bare = try copy(without: "tokenizer.json")
        for (text, ids) in try cases() {
            XCTAssertEqual(try tokenize(gguf, text), ids, text)
            XCTAssertEqual(try tokenize(folder, text), ids, "folder (tokenizer.model): \(text)")
            XCTAssertEqual(try tokenize(bare, text), ids, "bare tokenizer.model: \(text)")
        }
    }

    func testGGUFToHFTokenizerJSONLoadsAndGivesTheSameIds() throws {
        let gguf = "\(dir)/spm.gguf", hf = "\(dir)/hf"
        XCTAssertEqual(try TestSupport.smelt(["convert", folder, gguf]).status, 0)
        var r = try TestSupport.smelt(["convert", gguf, hf])
        XCTAssertEqual(r.status, 0, r.stderr)
        for (i, (text, ids)) in try cases().enumerated() {
            let textPath = "\(dir)/case\(i).txt", idsPath = "\(dir)/case\(i).ids"
            try text.write(toFile: textPath, atomically: true, encoding: .utf8)
            try ids.map(String.init).joined(separator: " ").write(toFile: idsPath, atomically: true, encoding: .utf8)
            r = try TestSupport.python(["golden/check_sp_tokenizer.py", "\(hf)/tokenizer.json", textPath, idsPath, "--parse-special"])
            XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        }
        // 100 kB of wiki.test.raw: tokenizers on our tokenizer.json = smelt on the GGUF.
        let wiki = "\(dir)/wiki.txt"
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: TestSupport.wikiText)).prefix(100_000), as: UTF8.self)
        try text.write(toFile: wiki, atomically: true, encoding: .utf8)
        r = try TestSupport.smelt(["tokenize", gguf, "--text", wiki])
        try r.stdout.write(toFile: "\(dir)/wiki.ids", atomically: true, encoding: .utf8)
        r = try TestSupport.python(["golden/check_sp_tokenizer.py", "\(hf)/tokenizer.json", wiki, "\(dir)/wiki.ids"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)

        // HF (our tokenizer.json, no tokenizer.model) → GGUF again: the same tokens, types and ids
        // (scores come from the merge ranks, so they differ from the original's but order alike).
        r = try TestSupport.smelt(["convert", hf, "\(dir)/again.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try GGUFReader.read(gguf), b = try GGUFReader.read("\(dir)/again.gguf")
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
                    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token"] {
            XCTAssertEqual(b.metadata[key], a.metadata[key], key)
        }
        for (text, ids) in try cases() { XCTAssertEqual(try tokenize("\(dir)/again.gguf", text), ids, text) }
        XCTAssertEqual(try tokenize("\(dir)/again.gguf", text), try tokenize(gguf, text))
    }

    /// Gemma 3 with the same tokenizer.model (golden/tiny/gemma3-spm): add_space_prefix false, as
    /// llama.cpp's converter writes it, and its ids; with a tokenizer.json only and a vocab_size
    /// past it (gemma3-spm-json), token_embd is cut to the vocabulary as the converter cuts it.
    func testGemma3SpaceprefixAndVocabularyTrim() throws {
        let gguf = "\(dir)/g.gguf"
        var r = try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/gemma3-spm"), gguf])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.python(["golden/llamacpp_tokenizer_keys.py", "check", gguf, "golden/llamacpp/tokenizer/gemma3-spm.keys.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", gguf, "golden/llamacpp/gemma3-spm.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertEqual(try GGUFReader.read(gguf).metadata["tokenizer.ggml.add_space_prefix"], .bool(false))
        let url = URL(fileURLWithPath: TestSupport.path("golden/llamacpp/tokenizer/gemma3-spm.tokenize.json"))
        let cases = (try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any])["cases"] as! [[String: Any]]
        for c in cases { XCTAssertEqual(try tokenize(gguf, c["text"] as! String), c["ids"] as! [Int]) }

        let trimmed = "\(dir)/t.gguf"
        r = try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/gemma3-spm-json"), trimmed])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try HFFolder.read(TestSupport.path("golden/tiny/gemma3-spm-json"))["model.embed_tokens.weight"]?.shape, [1010, 32])
        XCTAssertEqual(try GGUFReader.read(trimmed)["token_embd.weight"]?.shape, [1004, 32])
        r = try TestSupport.python(["golden/check_llamacpp_reference.py", trimmed, "golden/llamacpp/gemma3-spm-json.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    }

    /// A tokenizer.model that is not one names the file.
    func testBadTokenizerModelNamesTheFile() throws {
        let bad = try copy(without: "tokenizer.model")
        try Data([0x0a, 0xff, 0xff, 0x01]).write(to: URL(fileURLWithPath: "\(bad)/tokenizer.model"))
        let r = try TestSupport.smelt(["convert", bad, "\(dir)/bad.gguf"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("tokenizer.model"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/bad.gguf"))
    }
}

/// The minimal protobuf reader behind a bare tokenizer.model: the fixture's fields, and hostile
/// bytes refused with an error naming the file, never a crash.
final class SentencePieceModelFileTests: XCTestCase {
    func testReadsTheFixture() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestSupport.path("golden/tiny/llama-spm/tokenizer.model"))))
        let m = try SentencePieceModelFile(bytes: bytes)
        XCTAssertEqual(m.pieces.count, 1000)
        XCTAssertEqual(m.modelType, 2)
        XCTAssertTrue(m.byteFallback)
        XCTAssertEqual(m.pieces[0].text, "<unk>")
        XCTAssertEqual(m.pieces[0].type, .unknown)
        XCTAssertEqual(m.pieces[1].type, .control)
        XCTAssertEqual(m.pieces[3].text, "<tool>")
        XCTAssertEqual(m.pieces[3].type, .userDefined)
        XCTAssertEqual(m.pieces[4].text, "<0x00>")
        XCTAssertEqual(m.pieces[4].type, .byte)
        XCTAssertTrue(m.addDummyPrefix)
        XCTAssertEqual([m.unknownID, m.bosID, m.eosID, m.padID], [0, 1, 2, -1])
    }

    func testHostileBytesAreErrors() {
        let cases: [([UInt8], String)] = [
            ([], "no pieces"),
            ([0x0a, 0x80], "truncated varint"),
            ([0x0a, 0x05, 0x0a], "runs past the end"),
            ([0x0b], "wire type 3"),
            ([0x0a, 0x03, 0x0a, 0x01, 0xff], "not valid UTF-8"),
            ([0x0a, 0x02, 0x18, 0x09], "type 9"),
            ([0x08] + [UInt8](repeating: 0xff, count: 11), "varint longer"),
        ]
        for (bytes, fragment) in cases {
            XCTAssertThrowsError(try SentencePieceModelFile(bytes: bytes)) { e in
                XCTAssertTrue("\(e)".hasPrefix("tokenizer.model: "), "\(e)")
                XCTAssertTrue("\(e)".contains(fragment), "\(bytes): \(e)")
            }
        }
    }
}
