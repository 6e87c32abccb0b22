import Foundation
import TestSupport
import XCTest

/// `smelt tokenize` end to end on the real model.
final class TokenizeCLITests: XCTestCase {
    func testTokenizePrintsIdsAndJSON() throws {
        try TestSupport.requireModel(TestSupport.smolLM2)
        let golden = try Fixtures.goldenJSON("strings.json")
        let strings = golden["strings"] as! [String]
        let ids = (golden["ids"] as! [String: [[Int]]])["smollm"]!
        let i = strings.firstIndex { $0.hasPrefix("<|im_start|>system") }!
        let dir = TestSupport.tempDir("tok-cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/text.txt"
        try strings[i].write(toFile: file, atomically: true, encoding: .utf8)

        let plain = try TestSupport.smelt(["tokenize", TestSupport.smolLM2, "--text", file])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(plain.stdout, ids[i].map(String.init).joined(separator: " ") + "\n")
        XCTAssertTrue(plain.stderr.contains("tokens"), plain.stderr)

        let json = try TestSupport.smelt(["tokenize", TestSupport.smolLM2, "--text", file, "--json", "--no-bos"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(obj["count"] as? Int, ids[i].count)
        XCTAssertEqual(obj["ids"] as? [Int], ids[i])

        let missing = try TestSupport.smelt(["tokenize", TestSupport.smolLM2, "--text", dir + "/nope.txt"])
        XCTAssertNotEqual(missing.status, 0)
    }

    /// A Hugging Face folder (tokenizer.json) through the CLI: the tiny Llama asks for BOS, as its
    /// post-processor does in the Python package.
    func testTokenizeHuggingFaceFolder() throws {
        let folder = try TinyModelTests.tinyDir("llama")
        let dir = TestSupport.tempDir("tok-cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/text.txt"
        let text = "Hello world! It's 12345 <|end_of_text|> ok\n"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try TestSupport.smelt(["tokenize", folder, "--text", file])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ours = r.stdout.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        let py = try TestSupport.python([
            "-c", "import sys; from tokenizers import Tokenizer; t = Tokenizer.from_file(sys.argv[1]); "
                + "print(' '.join(map(str, t.encode(open(sys.argv[2], encoding='utf-8').read()).ids)))",
            folder + "/tokenizer.json", file,
        ])
        XCTAssertEqual(py.status, 0, py.stderr)
        let ref = py.stdout.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        XCTAssertEqual(ours, ref)
        let noBOS = try TestSupport.smelt(["tokenize", folder, "--text", file, "--no-bos"])
        XCTAssertEqual(noBOS.stdout.split(separator: " ").count, ref.count - 1)
    }
}
