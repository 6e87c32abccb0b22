import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// `smelt inspect` and `smelt convert` on GGUF, run as the built binary.
final class GGUFCLITests: XCTestCase {
    var dir = ""
    let mixed = TestSupport.path("golden/gguf/mixed.gguf")

    override func setUpWithError() throws {
        dir = TestSupport.tempDir("gguf-cli")
    }

    override func tearDown() { if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) } }

    func smelt(_ args: [String], status: Int32 = 0, line: UInt = #line) throws -> TestSupport.Result {
        let r = try TestSupport.smelt(args)
        XCTAssertEqual(r.status, status, "smelt \(args.joined(separator: " ")): \(r.stdout)\(r.stderr)", line: line)
        return r
    }

    func testInspectShowsMetadataWithTypesAndSummaries() throws {
        let out = try smelt(["inspect", mixed]).stdout
        for fragment in [
            "format:        gguf", "architecture:  llama", "tensors:       7", "context_length: 2048",
            "tokenizer:     gpt2 (pre-tokenizer smollm), 8 tokens, 2 merges",
            "test.uint64 (uint64) = 18446744073709551615", "test.array.bool (array of bool) = [true, false, true]",
            #"test.string (string) = "hello\n\"world\"\t\\ 😀""#, #"test.array.string (array of string) = ["a", "", "ünï", "tab\there"]"#,
            "test.nested.int32 (array of array) = [[1, 2], [3], [4, 5, 6]]",
            #"tokenizer.chat_template (string) = "{% for m in messages %}{{ m.content }}\n{% endfor %}""#,
            "Q8_0: 1 tensors, 136 bytes",
        ] {
            XCTAssertTrue(out.contains(fragment), "'\(fragment)' not in:\n\(out)")
        }
        let json = try JSONParser.parse(try smelt(["inspect", "--json", "--tensors", mixed]).stdout)
        XCTAssertEqual(json["metadata"]?["general.alignment"]?["type"]?.stringValue, "uint32")
        XCTAssertEqual(json["metadata"]?["general.alignment"]?["value"]?.intValue, 64)
        XCTAssertEqual(json["tensors"]?.arrayValue?.map { $0["dtype"]!.stringValue! }, ["F32", "F16", "BF16", "Q8_0", "Q4_0", "I32", "F32"])
        XCTAssertEqual(json["tensors"]?.arrayValue?[2]["shape"], .array([.int(2), .int(3), .int(4)]))
    }

    func testConvertGGUFToGGUFIsByteIdentical() throws {
        let out = "\(dir)/copy.gguf"
        _ = try smelt(["convert", mixed, out])
        XCTAssertEqual(try GGUFJSON.fileBytes(out), try GGUFJSON.fileBytes(mixed))
    }

    func testConvertWithSplitOptions() throws {
        let r = try smelt(["convert", "--json", "--split-max-tensors", "3", mixed, "\(dir)/m.gguf"])
        let files = try JSONParser.parse(r.stdout)["files"]?.arrayValue?.compactMap(\.stringValue)
        XCTAssertEqual(files, (1...3).map { "\(dir)/m-0000\($0)-of-00003.gguf" })
        let py = try TestSupport.python(["golden/check_gguf.py", "split", mixed] + (files ?? []))
        XCTAssertEqual(py.status, 0, py.stdout + py.stderr)
        _ = try smelt(["convert", "--split-max-size", "100B", mixed, "\(dir)/s.gguf"])
        XCTAssertTrue(Paths.exists("\(dir)/s-00005-of-00005.gguf"))
        // The whole set converts back from any of its files.
        _ = try smelt(["convert", "\(dir)/m-00002-of-00003.gguf", "\(dir)/joined.gguf"])
        XCTAssertEqual(try GGUFJSON.fileBytes("\(dir)/joined.gguf"), try GGUFJSON.fileBytes(mixed))
        let misuse = try smelt(["convert", "--split-max-tensors", "3", mixed, "\(dir)/x.safetensors"], status: 64)
        XCTAssertTrue(misuse.stderr.contains("are for .gguf output"), misuse.stderr)
    }

    /// The golden file says `llama` but holds tensors llama has no names for: going to Hugging Face
    /// names is refused, naming the tensor, and nothing is written.
    func testConvertUnmappedGGUFToSafetensorsFailsNamingTheTensor() throws {
        let out = "\(dir)/x.safetensors"
        let r = try smelt(["convert", mixed, out], status: 2)
        XCTAssertTrue(r.stderr.contains("tensor 'vec.f32' has no llama mapping"), r.stderr)
        XCTAssertFalse(Paths.exists(out))
    }

    func testConvertSafetensorsWithUnstorableTypesToGGUFFails() throws {
        let out = "\(dir)/x.gguf"
        let r = try smelt(["convert", TestSupport.path("golden/safetensors/mixed.safetensors"), out], status: 2)
        XCTAssertTrue(r.stderr.contains("GGUF cannot hold"), r.stderr)
        XCTAssertTrue(r.stderr.contains("tensor '"), r.stderr)
        XCTAssertFalse(Paths.exists(out))
    }

    /// A Hugging Face folder (the real MiniLM, an architecture without a unit, so `--container`)
    /// to GGUF: tensors byte-identical per gguf-py and the safetensors package, config values as
    /// typed GGUF keys.
    func testConvertHFFolderToGGUF() throws {
        let folder = TestSupport.miniLM
        try TestSupport.requireModel(TestSupport.miniLMWeights)
        let out = "\(dir)/minilm.gguf"
        _ = try smelt(["convert", "--container", folder, out])
        let py = try TestSupport.python(["golden/check_gguf.py", "safetensors", out, folder + "/model.safetensors"])
        XCTAssertEqual(py.status, 0, py.stdout + py.stderr)
        let dump = try GGUFJSON.pythonDump(out, hexLimit: 0)
        let md = Dictionary(uniqueKeysWithValues: dump["metadata"]!.arrayValue!.map { ($0["key"]!.stringValue!, $0["value"]!) })
        XCTAssertEqual(dump["metadata"]!.arrayValue!.first?["key"]?.stringValue, "general.architecture")
        XCTAssertEqual(md["general.architecture"], .object([("type", .string("string")), ("value", .string("bert"))]))
        XCTAssertEqual(md["bert.block_count"], .object([("type", .string("uint32")), ("value", .int(6))]))
        XCTAssertEqual(md["bert.context_length"], .object([("type", .string("uint32")), ("value", .int(512))]))
        XCTAssertEqual(md["bert.attention.layer_norm_epsilon"]?["type"]?.stringValue, "float32")
        XCTAssertEqual(md["bert.attention.layer_norm_epsilon"]?["value"]?.stringValue, GGUFJSON.bits(Float(1e-12).bitPattern))
        let g = try GGUFReader.read(out)
        XCTAssertEqual(g.hyperparameters.embeddingLength, 384)
        XCTAssertEqual(g.tensors.count, 104)
    }
}
