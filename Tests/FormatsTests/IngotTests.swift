import Codecs
@testable import Formats
import Foundation
import TensorGraph
import TestSupport
import XCTest

/// Ingot writer and reader on synthetic graphs: layouts, lossless round trips of every dtype and
/// metadata type, random access, determinism, options.
final class IngotTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestSupport.tempDir("ingot") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testStandardLayoutsAreValidAndInvertible() throws {
        for dtype in DType.allCases {
            let layout = IngotLayout.standard(for: dtype)
            XCTAssertNil(layout.problem, "\(dtype)")
            XCTAssertEqual(layout.blockBytes, dtype.bytesPerBlock, "\(dtype)")
            for blocks in [1, 3, 37] {
                let raw = IngotFixtures.bytes(blocks * layout.blockBytes, seed: UInt64(blocks))
                var planes = [UInt8](repeating: 0, count: raw.count)
                var back = [UInt8](repeating: 0, count: raw.count)
                raw.withUnsafeBytes { r in planes.withUnsafeMutableBytes { layout.split(r.baseAddress!, blocks: blocks, into: $0.baseAddress!) } }
                planes.withUnsafeBytes { p in back.withUnsafeMutableBytes { layout.merge(p.baseAddress!, blocks: blocks, into: $0.baseAddress!) } }
                XCTAssertEqual(back, raw, "\(dtype) × \(blocks)")
            }
        }
    }

    /// Block layouts come from `DType.table`'s fields (f16 scales and 16-bit arrays as two planes,
    /// f32 as four rotated planes, packed bytes as one stream each); pinned so that files keep
    /// compressing as they did when each type's layout was written out by hand.
    func testBlockLayoutsFollowTheDTypeFields() {
        let expected: [DType: String] = [
            .q4_0: "2/2+16", .iq4_NL: "2/2+16", .q4_1: "2/2+2/2+16", .q5_0: "2/2+4+16", .q5_1: "2/2+2/2+4+16",
            .q8_0: "2/2+32", .q8_1: "2/2+2/2+32", .q2_K: "16+64+2/2+2/2", .q3_K: "32+64+12+2/2",
            .q4_K: "2/2+2/2+12+128", .q5_K: "2/2+2/2+12+32+128", .q6_K: "128+64+16+2/2", .q8_K: "4/4r1+256+32/2",
            .iq4_XS: "2/2+2/2+4+128", .iq2_XXS: "2/2+64", .iq2_XS: "2/2+64+8", .iq3_XXS: "2/2+96",
            .iq1_S: "2/2+32+16", .iq3_S: "2/2+64+8+32+4", .iq2_S: "2/2+64+8+8", .iq1_M: "32+16+8",
            .tq1_0: "48+4+2/2", .tq2_0: "64+2/2", .mxfp4: "1+16", .nvfp4: "4+32", .q1_0: "2/2+16",
        ]
        for t in DType.allCases where t.isQuantized {
            XCTAssertEqual(IngotLayout.standard(for: t).description, expected[t], t.displayName)
        }
    }

    /// bf16 with rotation 1: the high plane is the exponent, the low plane sign and mantissa.
    func testBF16PlanesSeparateTheExponent() {
        let layout = IngotLayout.standard(for: .bf16)
        let values: [UInt16] = [0x3F80, 0xBF80, 0x4049, 0x0001]  // 1, -1, 3.14, tiny
        let raw = values.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        var planes = [UInt8](repeating: 0, count: raw.count)
        raw.withUnsafeBytes { r in planes.withUnsafeMutableBytes { layout.split(r.baseAddress!, blocks: 4, into: $0.baseAddress!) } }
        XCTAssertEqual(Array(planes[4...]), [127, 127, 128, 0], "exponents")
        XCTAssertEqual(Array(planes[..<4]), [0, 1, 0x92, 2], "mantissa << 1 | sign")
    }

    func testBadLayoutsAreDescribed() {
        XCTAssertEqual(
            IngotLayout(blockBytes: 4, fields: [.init(offset: 0, length: 2), .init(offset: 3, length: 1)]).problem,
            "field 1 starts at byte 3, expected 2")
        XCTAssertEqual(IngotLayout(blockBytes: 4, fields: [.init(offset: 0, length: 4, width: 3)]).problem, "field 0 has width 3")
        XCTAssertEqual(IngotLayout(blockBytes: 4, fields: [.init(offset: 0, length: 2)]).problem, "fields cover 2 of the 4 block bytes")
        XCTAssertEqual(
            IngotLayout(blockBytes: 2, fields: [.init(offset: 0, length: 2, width: 2, rotate: 16)]).problem,
            "field 0: rotation 16 for width 2")
    }

    func testRoundTripEveryDTypeAndMetadataType() throws {
        let graph = try IngotFixtures.graph()
        let path = "\(dir)/all.ingot"
        let summary = try IngotWriter.write(graph, to: path, chunkSize: 4096, threads: 3, sourceFormat: "gguf")
        XCTAssertEqual(summary.tensors, graph.tensors.count)
        XCTAssertEqual(summary.fileBytes, Paths.fileSize(path))
        XCTAssertGreaterThan(summary.chunks, graph.tensors.count)
        let back = try IngotReader.read(path)
        try IngotFixtures.assertSame(graph, back)
        let file = try IngotReader.open(path)
        XCTAssertEqual(file.sourceFormat, "gguf")
        XCTAssertEqual(FormatRegistry.origin(of: path, format: .ingot), .gguf)
        XCTAssertEqual(try FormatRegistry.detect(path), .ingot)
        for t in file.tensors {
            XCTAssertEqual(t.layout, IngotLayout.standard(for: t.dtype), t.name)
            for c in t.chunks.dropLast() { XCTAssertEqual(c.rawSize, t.chunkSize, t.name) }
            XCTAssertEqual(t.chunkSize % t.dtype.bytesPerBlock, 0, t.name)
        }
        XCTAssertTrue(file.verify().ok)
    }

    /// Reads of arbitrary ranges (within a chunk, across chunk boundaries, whole tensors) give the
    /// same bytes as the source, in any order.
    func testRandomAccessReads() throws {
        let graph = try IngotFixtures.graph()
        let path = "\(dir)/ra.ingot"
        try IngotWriter.write(graph, to: path, chunkSize: 4096)
        let back = try IngotReader.read(path)
        var rng = SystemRandomNumberGenerator()
        for t in graph.tensors where t.byteCount > 0 {
            let want = try t.storage.readAll()
            let got = back[t.name]!
            for _ in 0..<40 {
                let a = Int.random(in: 0..<want.count, using: &rng)
                let n = Int.random(in: 1...min(want.count - a, 3 * 4096), using: &rng)
                var buf = [UInt8](repeating: 0, count: n)
                try buf.withUnsafeMutableBytes { try got.storage.read(offset: a, into: $0) }
                XCTAssertEqual(buf, Array(want[a..<(a + n)]), "\(t.name) [\(a), +\(n))")
            }
        }
    }

    func testReadsOutsideATensorAreRefused() throws {
        let path = "\(dir)/r.ingot"
        try IngotWriter.write(try IngotFixtures.graph(big: false), to: path)
        let file = try IngotReader.open(path)
        var buf = [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try buf.withUnsafeMutableBytes { try file.read(tensor: 0, offset: file.tensors[0].byteCount - 4, into: $0) }) { e in
            XCTAssertEqual("\(e)", "\(path): tensor 'small.f64': read of 8 bytes at 276 is outside its 280 bytes")
        }
        XCTAssertThrowsError(try buf.withUnsafeMutableBytes { try file.read(tensor: 0, offset: -1, into: $0) })
    }

    /// Several threads reading the same file at once, sequentially (which starts read-ahead) with
    /// odd buffer sizes, each in its own tensor order, all get the right bytes.
    func testConcurrentSequentialReaders() throws {
        let graph = try IngotFixtures.graph()
        let path = "\(dir)/cc.ingot"
        try IngotWriter.write(graph, to: path, chunkSize: 4096)
        let back = try IngotReader.read(path)
        let expected = try graph.tensors.map { try $0.storage.readAll() }
        let failures = IngotTestCounter()
        DispatchQueue.concurrentPerform(iterations: 6) { reader in
            let step = [1000, 4096, 5000, 8192, 12289, 77][reader]
            let order = reader % 2 == 0 ? Array(back.tensors.indices) : Array(back.tensors.indices.reversed())
            for i in order {
                let t = back.tensors[i]
                var got = [UInt8](repeating: 0, count: t.byteCount)
                var at = 0
                while at < t.byteCount {
                    let n = min(step, t.byteCount - at)
                    do {
                        try got.withUnsafeMutableBytes { try t.storage.read(offset: at, into: UnsafeMutableRawBufferPointer(rebasing: $0[at..<(at + n)])) }
                    } catch { failures.add() }
                    at += n
                }
                if got != expected[i] { failures.add() }
            }
        }
        XCTAssertEqual(failures.value, 0)
    }

    /// The output does not depend on the number of threads.
    func testOutputIsDeterministic() throws {
        let graph = try IngotFixtures.graph()
        try IngotWriter.write(graph, to: "\(dir)/t1.ingot", chunkSize: 4096, threads: 1)
        try IngotWriter.write(graph, to: "\(dir)/t5.ingot", chunkSize: 4096, threads: 5)
        XCTAssertEqual(try IngotFixtures.readFile("\(dir)/t1.ingot"), try IngotFixtures.readFile("\(dir)/t5.ingot"))
    }

    func testTokenizerListsAreStoredByReference() throws {
        let graph = try IngotFixtures.graph(big: false)
        let path = "\(dir)/ref.ingot"
        try IngotWriter.write(graph, to: path)
        let parts = try IngotParts(try IngotFixtures.readFile(path))
        let keys = parts.header.graph.map(\.key)
        for k in ["tokenizer.tokens@", "tokenizer.token_types@", "tokenizer.merges@", "tokenizer.chat_template@"] {
            XCTAssertTrue(keys.contains(k), k)
        }
        XCTAssertFalse(keys.contains("tokenizer.tokens"))
        // Without the metadata lists, the tokenizer is stored in full.
        var g = graph
        g.metadata = Metadata()
        try IngotWriter.write(g, to: "\(dir)/full.ingot")
        let full = try IngotParts(try IngotFixtures.readFile("\(dir)/full.ingot"))
        XCTAssertTrue(full.header.graph.map(\.key).contains("tokenizer.tokens"))
        XCTAssertEqual(try IngotReader.read("\(dir)/full.ingot").tokenizer, graph.tokenizer)
    }

    /// The GRPH section must cover every field of the graph's typed parts: a new field in
    /// Hyperparameters or Tokenizer has to be added to `IngotGraphFields`.
    func testGraphFieldsCoverEveryField() {
        XCTAssertEqual(Mirror(reflecting: Hyperparameters()).children.count, 11)
        XCTAssertEqual(Mirror(reflecting: Tokenizer()).children.count, 10)
    }

    func testEmptyGraph() throws {
        let path = "\(dir)/empty.ingot"
        let summary = try IngotWriter.write(try TensorGraph(), to: path)
        XCTAssertEqual(summary.chunks, 0)
        let back = try IngotReader.read(path)
        XCTAssertEqual(back.tensors.count, 0)
        XCTAssertEqual(back.metadata.count, 0)
        XCTAssertTrue(try IngotReader.open(path).verify().ok)
    }

    func testChunksZstdCannotShrinkAreStoredRaw() throws {
        let noise = try IngotFixtures.tensor("noise", .u8, [20000], IngotFixtures.bytes(20000, seed: 9))
        let zeros = try IngotFixtures.tensor("zeros", .f32, [5000], [UInt8](repeating: 0, count: 20000))
        let path = "\(dir)/raw.ingot"
        try IngotWriter.write(try TensorGraph(tensors: [noise, zeros]), to: path, chunkSize: 8192)
        let file = try IngotReader.open(path)
        XCTAssertTrue(file.tensors[0].chunks.allSatisfy(\.isStoredRaw))
        XCTAssertTrue(file.tensors[0].chunks.allSatisfy { $0.storedSize == $0.rawSize })
        XCTAssertFalse(file.tensors[1].chunks.contains(where: \.isStoredRaw))
        XCTAssertLessThan(file.tensors[1].storedBytes, 500)
        try IngotFixtures.assertSame(try TensorGraph(tensors: [noise, zeros]), try IngotReader.read(path))
    }

    func testLevelsAllRoundTrip() throws {
        let graph = try IngotFixtures.graph(big: false)
        for level in [-5, 1, 3, 19] {
            let path = "\(dir)/l\(level).ingot"
            try IngotWriter.write(graph, to: path, level: level)
            try IngotFixtures.assertSame(graph, try IngotReader.read(path))
        }
    }

    func testBadOptionsAreRefused() throws {
        let graph = try IngotFixtures.graph(big: false)
        let path = "\(dir)/x.ingot"
        XCTAssertThrowsError(try IngotWriter.write(graph, to: path, level: 0)) { e in
            XCTAssertTrue("\(e)".contains("compression level 0 is outside"), "\(e)")
        }
        XCTAssertThrowsError(try IngotWriter.write(graph, to: path, level: 99)) { e in
            XCTAssertTrue("\(e)".contains("compression level 99 is outside"), "\(e)")
        }
        XCTAssertThrowsError(try IngotWriter.write(graph, to: path, chunkSize: 100)) { e in
            XCTAssertEqual("\(e)", "\(path): chunk size 100 is outside 4096...67108864")
        }
        var bad = graph
        bad.metadata["bad.array"] = .array(elementType: .int32, values: [.int32(1), .string("x")])
        XCTAssertThrowsError(try IngotWriter.write(bad, to: path)) { e in
            XCTAssertEqual("\(e)", "\(path): metadata key 'bad.array': an array of int32 holds a string")
        }
        XCTAssertFalse(Paths.exists(path))
    }

    /// A source tensor that fails to read stops the write, names the tensor, and leaves nothing.
    func testFailingSourceLeavesNoOutput() throws {
        let failing = ProducedStorage(byteCount: 40000) { offset, _ in
            if offset >= 16384 { throw StorageError.producer("disk on fire at \(offset)") }
        }
        let graph = try TensorGraph(tensors: [
            try IngotFixtures.tensor("fine", .f32, [100], [UInt8](repeating: 1, count: 400)),
            try Tensor(name: "broken", dtype: .u8, shape: [40000], storage: failing),
        ])
        let path = "\(dir)/fail.ingot"
        XCTAssertThrowsError(try IngotWriter.write(graph, to: path, chunkSize: 4096, threads: 2)) { e in
            XCTAssertEqual("\(e)", "tensor 'broken': disk on fire at 16384")
        }
        XCTAssertFalse(Paths.exists(path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    /// Newer minor versions add what a 1.0 reader skips: optional sections, graph keys.
    func testNewerMinorVersionWithUnknownOptionalPartsIsRead() throws {
        let graph = try IngotFixtures.graph(big: false)
        let path = "\(dir)/m.ingot"
        try IngotWriter.write(graph, to: path)
        var parts = try IngotParts(try IngotFixtures.readFile(path))
        parts.minor = 7
        parts.header.graph.append(("future.field", .string("ignored")))
        let newer = "\(dir)/newer.ingot"
        try IngotFixtures.writeFile(try parts.assemble(extraSections: [("XTRA", false, [1, 2, 3])]), newer)
        let file = try IngotReader.open(newer)
        XCTAssertEqual(file.minorVersion, 7)
        XCTAssertEqual(file.unknownSections, ["XTRA"])
        try IngotFixtures.assertSame(graph, try file.graph())
    }
}

final class IngotTestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
