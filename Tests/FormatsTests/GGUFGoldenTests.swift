import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// Pins the GGUF reader to files gguf-py's GGUFWriter made (golden/make_gguf_golden.py) and to
/// the description gguf-py's GGUFReader gives of them (golden/gguf/*.expected.json).
final class GGUFGoldenTests: XCTestCase {
    let mixed = TestSupport.path("golden/gguf/mixed.gguf")

    func testReadsGoldenFileExactly() throws {
        let f = try GGUFReader.readFile(mixed)
        try GGUFJSON.assertMatches(f, GGUFJSON.load(TestSupport.path("golden/gguf/mixed.expected.json")))
        // Spot checks that do not go through the JSON encoding.
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.metadata["test.uint64"], .uint64(UInt64.max))
        XCTAssertEqual(f.metadata["test.int8"], .int8(-128))
        XCTAssertEqual(f.metadata["test.float32"], .float32(0.1))
        XCTAssertEqual(f.metadata["test.empty_string"], .string(""))
        XCTAssertEqual(
            f.metadata["test.nested.string"],
            .array(elementType: .array, values: [
                .array(elementType: .string, values: [.string("a")]),
                .array(elementType: .string, values: [.string("b"), .string("c")]),
            ]))
        XCTAssertEqual(f.tensors.map(\.dtype), [.f32, .f16, .bf16, .q8_0, .q4_0, .i32, .f32])
        XCTAssertEqual(f.tensors.map(\.shape), [[7], [3, 5], [2, 3, 4], [2, 64], [3, 32], [5], [2, 1, 3, 2]])
    }

    func testGraphKeepsEveryKeyInOrderAndFillsTypedViews() throws {
        let g = try GGUFReader.read(mixed)
        let f = try GGUFReader.readFile(mixed)
        // (Compared through the bit-exact encoding: the float arrays hold NaNs.)
        XCTAssertEqual(GGUFJSON.differences(GGUFJSON.metadata(g.metadata), GGUFJSON.metadata(f.metadata)), [])
        XCTAssertEqual(g.metadata.keys, f.metadata.keys)
        XCTAssertEqual(g.metadata.count, 53)
        XCTAssertEqual(g.architecture, "llama")
        var h = Hyperparameters()
        h.contextLength = 2048
        h.embeddingLength = 64
        h.blockCount = 2
        h.feedForwardLength = 128
        h.headCount = 4
        h.headCountKV = 2
        h.ropeFreqBase = 10000
        h.rmsNormEpsilon = Double(Float(1e-5))
        h.layerNormEpsilon = Double(Float(1e-6))
        h.vocabSize = 8
        h.ropeDimensionCount = 16
        XCTAssertEqual(g.hyperparameters, h)
        var t = Tokenizer()
        t.model = "gpt2"
        t.preTokenizer = "smollm"
        t.tokens = ["<s>", "</s>", "a", "b", "ab", "Ġc", "ü", "🦙"]
        t.tokenTypes = [3, 3, 1, 1, 1, 1, 1, 6]
        t.merges = ["a b", "Ġ c"]
        t.bosTokenID = 0
        t.eosTokenID = 1
        t.paddingTokenID = 1
        t.addBOS = true
        t.chatTemplate = "{% for m in messages %}{{ m.content }}\n{% endfor %}"
        XCTAssertEqual(g.tokenizer, t)
    }

    func testReadsVersion2() throws {
        let f = try GGUFReader.readFile(TestSupport.path("golden/gguf/v2.gguf"))
        XCTAssertEqual(f.version, 2)
        try GGUFJSON.assertMatches(f, GGUFJSON.load(TestSupport.path("golden/gguf/v2.expected.json")))
    }

    /// gguf-py's split set: any of its files opens the whole set, in order, without split keys.
    func testReadsGGUFPySplitSetFromAnyFile() throws {
        let expected = try GGUFJSON.load(TestSupport.path("golden/gguf/split.expected.json")).arrayValue!
        var files: [GGUFFile] = []
        for i in 1...3 {
            let f = try GGUFReader.readFile(TestSupport.path("golden/gguf/split-0000\(i)-of-00003.gguf"))
            try GGUFJSON.assertMatches(f, expected[i - 1])
            files.append(f)
        }
        for i in 1...3 {
            let path = TestSupport.path("golden/gguf/split-0000\(i)-of-00003.gguf")
            let g = try GGUFReader.read(path)
            XCTAssertEqual(g.tensors.map(\.name), ["t0", "t1", "t2", "t3", "t4"])
            XCTAssertEqual(g.metadata.keys, ["general.architecture", "llama.block_count", "general.name"])
            XCTAssertEqual(g.hyperparameters.blockCount, 1)
            for t in g.tensors {
                let source = files.flatMap(\.tensors).first { $0.name == t.name }!
                XCTAssertEqual(try t.storage.readAll(), try source.storage.readAll())
            }
            XCTAssertEqual(try GGUFReader.splitPaths(path), (1...3).map { TestSupport.path("golden/gguf/split-0000\($0)-of-00003.gguf") })
            // Not merged on request: just the one file, split keys and all.
            let lone = try GGUFReader.read(path, mergeSplits: false)
            XCTAssertEqual(lone.tensors.count, files[i - 1].tensors.count)
            XCTAssertEqual(lone.metadata["split.no"], .uint16(UInt16(i - 1)))
        }
    }

    func testRegistryDetectsGGUFByMagic() throws {
        XCTAssertEqual(try FormatRegistry.detect(mixed), .gguf)
        // By content, not by name.
        let dir = TestSupport.tempDir("gguf-detect")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: mixed, toPath: "\(dir)/model.bin")
        XCTAssertEqual(try FormatRegistry.detect("\(dir)/model.bin"), .gguf)
        let (format, graph) = try FormatRegistry.open("\(dir)/model.bin")
        XCTAssertEqual(format, .gguf)
        XCTAssertEqual(graph.tensors.count, 7)
        XCTAssertEqual(FormatRegistry.outputFormat(for: "out/x.gguf"), .gguf)
        XCTAssertEqual(FormatRegistry.outputFormat(for: "out/x.safetensors"), .safetensors)
        XCTAssertEqual(FormatRegistry.outputFormat(for: "out/x"), .hfFolder)
    }

    func testKeyTablesMatchTheDocument() throws {
        // formats/gguf.md mirrors GGUFKeys: every key and its type appear in the document's tables.
        let doc = String(decoding: try GGUFJSON.fileBytes(TestSupport.path("formats/gguf.md")), as: UTF8.self)
        for f in GGUFKeys.hyperparameterInts {
            XCTAssertTrue(doc.contains("| `{arch}.\(f.suffix)` | \(f.type.name) |"), f.suffix)
        }
        for f in GGUFKeys.hyperparameterFloats {
            XCTAssertTrue(doc.contains("| `{arch}.\(f.suffix)` | \(f.type.name) |"), f.suffix)
        }
        for k in GGUFKeys.tokenizerKeys {
            let type = k.elementType.map { "array of \($0.name)" } ?? k.type.name
            XCTAssertTrue(doc.contains("| `\(k.name)` | \(type) |"), k.name)
        }
    }

    func testSplitFileNames() {
        XCTAssertEqual(GGUF.splitFileName(stem: "m", index: 2, count: 12), "m-00002-of-00012.gguf")
        XCTAssertEqual(GGUF.parseSplitFileName("my-model-00002-of-00012.gguf")?.stem, "my-model")
        XCTAssertEqual(GGUF.parseSplitFileName("my-model-00002-of-00012.gguf")?.index, 2)
        XCTAssertEqual(GGUF.parseSplitFileName("my-model-00002-of-00012.gguf")?.count, 12)
        XCTAssertNil(GGUF.parseSplitFileName("model.gguf"))
        XCTAssertNil(GGUF.parseSplitFileName("-00001-of-00002.gguf"))
        XCTAssertNil(GGUF.parseSplitFileName("m-0000x-of-00002.gguf"))
    }
}
