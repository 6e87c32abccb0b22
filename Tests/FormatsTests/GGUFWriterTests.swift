import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// The GGUF writer: round trips, files read by gguf-py (golden/check_gguf.py), split sets in
/// llama.cpp's layout, the typed-field helper, and the refusals.
final class GGUFWriterTests: XCTestCase {
    var dir = ""
    let mixed = TestSupport.path("golden/gguf/mixed.gguf")

    override func setUp() { dir = TestSupport.tempDir("gguf-write") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func python(_ args: [String], line: UInt = #line) throws {
        let r = try TestSupport.python(["golden/check_gguf.py"] + args)
        XCTAssertEqual(r.status, 0, "check_gguf.py \(args.first ?? ""): " + r.stdout + r.stderr, line: line)
    }

    /// gguf-py's file read and written back is the same file, byte for byte, and gguf-py reads
    /// our copy exactly as the golden description says.
    func testRoundTripOfGGUFPyFileIsByteIdentical() throws {
        let out = "\(dir)/copy.gguf"
        XCTAssertEqual(try GGUFWriter.write(try GGUFReader.read(mixed), to: out), [out])
        XCTAssertEqual(try GGUFJSON.fileBytes(out), try GGUFJSON.fileBytes(mixed))
        try python(["expect", out, "golden/gguf/mixed.expected.json"])
        try GGUFJSON.assertSameContent(try GGUFReader.read(out), try GGUFReader.read(mixed))
    }

    /// A graph made in Swift (every value type, empty and nested arrays, tensors of several
    /// types): gguf-py reads back exactly the metadata and bytes we meant.
    func testWrittenFileReadsInGGUFPyAsMeant() throws {
        var m = Metadata()
        m["general.architecture"] = .string("gpt2")
        m["general.alignment"] = .uint32(16)
        m["a.u8"] = .uint8(200)
        m["a.i8"] = .int8(-5)
        m["a.u16"] = .uint16(60000)
        m["a.i16"] = .int16(-30000)
        m["a.u32"] = .uint32(4_000_000_000)
        m["a.i32"] = .int32(-2_000_000_000)
        m["a.u64"] = .uint64(1 << 63)
        m["a.i64"] = .int64(-(1 << 62))
        m["a.f32"] = .float32(-Float.infinity)
        m["a.f64"] = .float64(.ulpOfOne)
        m["a.nan"] = .float32(Float(bitPattern: 0x7fc0_0001))
        m["a.bool"] = .bool(false)
        m["a.text"] = .string("ünï\u{0}code 🦙")
        m["a.empty"] = .array(elementType: .uint64, values: [])
        m["a.empty_strings"] = .array(elementType: .string, values: [])
        m["a.floats"] = .array(elementType: .float64, values: [.float64(-0.0), .float64(1e308)])
        m["a.nested"] = .array(elementType: .array, values: [
            .array(elementType: .uint8, values: [.uint8(1)]),
            .array(elementType: .uint8, values: []),
            .array(elementType: .bool, values: [.bool(true)]),  // element types may differ inside
        ])
        let tensors = [
            try Tensor(name: "a", dtype: .f32, shape: [3], storage: MemoryStorage((0..<12).map { UInt8($0) })),
            try Tensor(name: "b", dtype: .i8, shape: [2, 5], storage: MemoryStorage((0..<10).map { UInt8(200 + $0) })),
            try Tensor(name: "c", dtype: .q4_1, shape: [1, 32], storage: MemoryStorage((0..<20).map { UInt8($0 * 3) })),
            try Tensor(name: "d", dtype: .f64, shape: [1, 1, 1, 1], storage: MemoryStorage([1, 2, 3, 4, 5, 6, 7, 8])),
        ]
        let graph = try TensorGraph(metadata: m, tensors: tensors)
        let out = "\(dir)/swift.gguf"
        try GGUFWriter.write(graph, to: out)

        let dump = try GGUFJSON.pythonDump(out)
        XCTAssertEqual(GGUFJSON.differences(GGUFJSON.metadata(m), dump["metadata"]!), [])
        XCTAssertEqual(dump["alignment"]?.intValue, 16)
        let ts = dump["tensors"]!.arrayValue!
        XCTAssertEqual(ts.map { $0["name"]!.stringValue! }, ["a", "b", "c", "d"])
        XCTAssertEqual(ts.map { $0["type"]!.stringValue! }, ["F32", "I8", "Q4_1", "F64"])
        XCTAssertEqual(ts.map { $0["shape"]!.arrayValue!.map { $0.intValue! } }, [[3], [2, 5], [1, 32], [1, 1, 1, 1]])
        XCTAssertEqual(ts.map { $0["ne"]!.arrayValue!.map { $0.intValue! } }, [[3], [5, 2], [32, 1], [1, 1, 1, 1]])
        for (t, e) in zip(tensors, ts) {
            XCTAssertEqual(e["hex"]?.stringValue, GGUFJSON.hex(try t.storage.readAll()), t.name)
            XCTAssertEqual(e["data_offset"]!.intValue! % 16, 0, t.name)
        }
        // And we read back what we wrote.
        let back = try GGUFReader.read(out)
        try GGUFJSON.assertSameContent(back, graph)
    }

    func testMetadataOrderAndTypesAreKeptExactly() throws {
        var m = Metadata()
        m["z.last_first"] = .int16(1)
        m["a.count"] = .uint64(3)  // not narrowed to uint32
        m["m.flag"] = .uint8(1)  // not turned into a bool
        let out = "\(dir)/order.gguf"
        try GGUFWriter.write(try TensorGraph(metadata: m), to: out)
        let f = try GGUFReader.readFile(out)
        XCTAssertEqual(f.metadata, m)
        XCTAssertEqual(f.metadata.keys, ["z.last_first", "a.count", "m.flag"])
        XCTAssertEqual(f.tensors.count, 0)
    }

    // MARK: Split sets

    func testSplitByTensorCountMatchesLlamaCppLayout() throws {
        let graph = try GGUFReader.read(mixed)
        let files = try GGUFWriter.write(graph, to: "\(dir)/model.gguf", splitMaxTensors: 3)
        XCTAssertEqual(files, (1...3).map { "\(dir)/model-0000\($0)-of-00003.gguf" })
        XCTAssertFalse(Paths.exists("\(dir)/model.gguf"))
        // gguf-py: split keys with llama.cpp's types in every file, metadata only in the first,
        // and together the original's metadata and tensor bytes.
        try python(["split", mixed] + files)
        let counts = try files.map { try GGUFReader.readFile($0).tensors.count }
        XCTAssertEqual(counts, [3, 3, 1])
        let second = try GGUFReader.readFile(files[1])
        XCTAssertEqual(second.metadata.keys, ["general.alignment", "split.no", "split.count", "split.tensors.count"])
        XCTAssertEqual(second.metadata["split.no"], .uint16(1))
        XCTAssertEqual(second.metadata["split.count"], .uint16(3))
        XCTAssertEqual(second.metadata["split.tensors.count"], .int32(7))
        XCTAssertEqual(second.alignment, 64)
        // Read back from any of them: the original graph.
        for f in files { try GGUFJSON.assertSameContent(try GGUFReader.read(f), graph) }
    }

    func testSplitBySizeIsGreedyAndGivesBigTensorsTheirOwnFile() throws {
        let graph = try GGUFReader.read(mixed)
        // Tensor sizes: 28, 30, 48, 136, 54, 20, 48 bytes.
        let plan = GGUFWriter.plan(graph.tensors, splitMaxSize: 100, splitMaxTensors: nil)
        XCTAssertEqual(plan.map { $0.map(\.name) }, [
            ["vec.f32", "mat.f16"], ["cube.bf16"], ["mat.q8_0"], ["mat.q4_0", "ids.i32"], ["hyper.f32"],
        ])
        let files = try GGUFWriter.write(graph, to: "\(dir)/s.gguf", splitMaxSize: 100)
        XCTAssertEqual(files.count, 5)
        try python(["split", mixed] + files)
        try GGUFJSON.assertSameContent(try GGUFReader.read(files[3]), graph)
        // Both limits: whichever is hit first.
        let both = GGUFWriter.plan(graph.tensors, splitMaxSize: 1000, splitMaxTensors: 2)
        XCTAssertEqual(both.map(\.count), [2, 2, 2, 1])
    }

    func testNoSplitWhenEverythingFitsAndSplitKeysAreNotCopied() throws {
        var graph = try GGUFReader.read(mixed)
        graph.metadata["split.count"] = .uint16(9)  // stale keys from elsewhere are dropped
        let files = try GGUFWriter.write(graph, to: "\(dir)/one.gguf", splitMaxSize: 1 << 20, splitMaxTensors: 100)
        XCTAssertEqual(files, ["\(dir)/one.gguf"])
        let f = try GGUFReader.readFile(files[0])
        XCTAssertNil(f.metadata["split.count"])
        XCTAssertEqual(try GGUFJSON.fileBytes(files[0]), try GGUFJSON.fileBytes(mixed))
    }

    func testWritingGGUFPySplitSetBackGivesTheSameSet() throws {
        let first = TestSupport.path("golden/gguf/split-00001-of-00003.gguf")
        let graph = try GGUFReader.read(first)
        let files = try GGUFWriter.write(graph, to: "\(dir)/split.gguf", splitMaxTensors: 2)
        XCTAssertEqual(files.count, 3)
        for (i, f) in files.enumerated() {
            let ours = try GGUFJSON.fileBytes(f)
            let theirs = try GGUFJSON.fileBytes(TestSupport.path("golden/gguf/split-0000\(i + 1)-of-00003.gguf"))
            XCTAssertEqual(ours, theirs, "split \(i + 1) differs from gguf-py's")
        }
    }

    // MARK: Typed fields → GGUF keys

    /// A graph that only has typed fields gets the keys, types and values gguf-py's convert
    /// helpers write (compared with the golden file gguf-py made from the same values).
    func testApplyWritesTheKeysGGUFPyWrites() throws {
        let golden = try GGUFReader.read(mixed)
        var graph = try TensorGraph(
            architecture: golden.architecture, hyperparameters: golden.hyperparameters, tokenizer: golden.tokenizer)
        GGUFMetadata.apply(to: &graph)
        XCTAssertEqual(graph.metadata.keys.first, "general.architecture")
        XCTAssertEqual(graph.metadata.count, 1 + 11 + 10)
        for (k, v) in graph.metadata.entries {
            XCTAssertEqual(v, golden.metadata[k], k)
            XCTAssertEqual(v.type, golden.metadata[k]?.type, k)
        }
        // Written and read back, the typed views survive.
        let out = "\(dir)/typed.gguf"
        try GGUFWriter.write(graph, to: out)
        let back = try GGUFReader.read(out)
        XCTAssertEqual(back.architecture, golden.architecture)
        XCTAssertEqual(back.hyperparameters, golden.hyperparameters)
        XCTAssertEqual(back.tokenizer, golden.tokenizer)
        let dump = try GGUFJSON.pythonDump(out)
        let types = Dictionary(uniqueKeysWithValues: dump["metadata"]!.arrayValue!.map {
            ($0["key"]!.stringValue!, $0["value"]!["type"]!.stringValue! + "/" + ($0["value"]!["element_type"]?.stringValue ?? ""))
        })
        XCTAssertEqual(types["llama.context_length"], "uint32/")
        XCTAssertEqual(types["llama.rope.freq_base"], "float32/")
        XCTAssertEqual(types["llama.attention.layer_norm_rms_epsilon"], "float32/")
        XCTAssertEqual(types["tokenizer.ggml.tokens"], "array/string")
        XCTAssertEqual(types["tokenizer.ggml.token_type"], "array/int32")
        XCTAssertEqual(types["tokenizer.ggml.bos_token_id"], "uint32/")
        XCTAssertEqual(types["tokenizer.ggml.add_bos_token"], "bool/")
    }

    func testApplyKeepsExistingKeysThatAgreeAndReplacesThoseThatDoNot() throws {
        var m = Metadata()
        m["hf.config.json"] = .string("{}")
        m["llama.context_length"] = .uint64(4096)  // agrees: type kept
        m["llama.block_count"] = .uint32(99)  // disagrees: replaced in place
        var h = Hyperparameters()
        h.contextLength = 4096
        h.blockCount = 2
        h.rmsNormEpsilon = 1e-5
        var graph = try TensorGraph(architecture: "llama", hyperparameters: h, metadata: m)
        GGUFMetadata.apply(to: &graph)
        XCTAssertEqual(graph.metadata.keys, [
            "general.architecture", "hf.config.json", "llama.context_length", "llama.block_count",
            "llama.attention.layer_norm_rms_epsilon",
        ])
        XCTAssertEqual(graph.metadata["llama.context_length"], .uint64(4096))
        XCTAssertEqual(graph.metadata["llama.block_count"], .uint32(2))
        XCTAssertEqual(graph.metadata["llama.attention.layer_norm_rms_epsilon"], .float32(1e-5))
        // Applying twice changes nothing.
        let once = graph.metadata
        GGUFMetadata.apply(to: &graph)
        XCTAssertEqual(graph.metadata, once)
        // Without an architecture: existing keys stay (general.architecture included), no
        // hyperparameter keys can be named, tokenizer keys are still written.
        var bare = Metadata()
        bare["general.name"] = .string("x")
        bare["general.architecture"] = .string("gpt2")
        var t = Tokenizer()
        t.eosTokenID = 7
        var g2 = try TensorGraph(hyperparameters: h, metadata: bare, tokenizer: t)
        GGUFMetadata.apply(to: &g2)
        XCTAssertEqual(g2.metadata.keys, ["general.name", "general.architecture", "tokenizer.ggml.eos_token_id"])
        XCTAssertEqual(g2.metadata["tokenizer.ggml.eos_token_id"], .uint32(7))
    }

    // MARK: Refusals

    func testTensorWithoutGGMLTypeIsRefusedByName() throws {
        for dtype in [DType.u8, .bool, .f8E4M3, .u32] {
            let t = try Tensor(name: "mask.\(dtype.rawValue)", dtype: dtype, shape: [4], storage: MemoryStorage([UInt8](repeating: 0, count: 4 * dtype.bytesPerBlock)))
            let out = "\(dir)/bad.gguf"
            XCTAssertThrowsError(try GGUFWriter.write(try TensorGraph(tensors: [t]), to: out)) { e in
                XCTAssertEqual("\(e)", "\(out): tensor 'mask.\(dtype.rawValue)': GGUF cannot hold \(dtype.displayName) (it has no ggml type; cast it first, e.g. --dtype f16)")
            }
            XCTAssertFalse(Paths.exists(out))
        }
    }

    func testUnwritableShapesAndMetadataAreRefused() throws {
        let out = "\(dir)/bad.gguf"
        let five = try Tensor(name: "t5", dtype: .f32, shape: [1, 1, 1, 1, 1], storage: MemoryStorage([0, 0, 0, 0]))
        XCTAssertThrowsError(try GGUFWriter.write(try TensorGraph(tensors: [five]), to: out)) { e in
            XCTAssertEqual("\(e)", "\(out): tensor 't5' shape [1, 1, 1, 1, 1]: 5 dimensions, more than the 4 ggml allows")
        }
        let empty = try Tensor(name: "e", dtype: .f32, shape: [0, 3], storage: MemoryStorage([]))
        XCTAssertThrowsError(try GGUFWriter.write(try TensorGraph(tensors: [empty]), to: out)) { e in
            XCTAssertEqual("\(e)", "\(out): tensor 'e' shape [0, 3]: GGUF cannot hold a zero dimension")
        }
        var m = Metadata()
        m["x.mixed"] = .array(elementType: .int32, values: [.int32(1), .uint32(2)])
        XCTAssertThrowsError(try GGUFWriter.write(try TensorGraph(metadata: m), to: out)) { e in
            XCTAssertEqual("\(e)", "\(out): metadata key 'x.mixed': array of int32 holds a uint32 at index 1")
        }
        m = Metadata()
        m["general.alignment"] = .uint64(32)
        XCTAssertThrowsError(try GGUFWriter.write(try TensorGraph(metadata: m), to: out)) { e in
            XCTAssertEqual("\(e)", "\(out): general.alignment must be a uint32 nonzero power of two, not uint64 32")
        }
        XCTAssertThrowsError(try GGUFWriter.write(try TensorGraph(), to: out, splitMaxTensors: 0)) { e in
            XCTAssertEqual("\(e)", "\(out): split maximum tensor count must be positive, not 0")
        }
        XCTAssertFalse(Paths.exists(out))
    }

    func testFailedWriteLeavesNoFiles() throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "disk on fire" } }
        let bad = try Tensor(name: "late", dtype: .f32, shape: [2], storage: ProducedStorage(byteCount: 8) { _, _ in throw Boom() })
        let good = try Tensor(name: "early", dtype: .f32, shape: [2], storage: MemoryStorage([UInt8](repeating: 1, count: 8)))
        XCTAssertThrowsError(try GGUFWriter.write(try TensorGraph(tensors: [good, bad]), to: "\(dir)/x.gguf", splitMaxTensors: 1)) { e in
            XCTAssertTrue("\(e)".contains("tensor 'late'"), "\(e)")
            XCTAssertTrue("\(e)".contains("disk on fire"), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
