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
