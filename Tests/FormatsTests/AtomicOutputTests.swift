import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// Outputs are published whole or not at all: no-clobber races, folder publishing, split-set
/// order, stale temporary files, and sources that shrink while they are read (library level;
/// `CrashSafetyCLITests` runs the same through the `smelt` binary).
final class AtomicOutputTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestSupport.tempDir("atomic-output") }
    override func tearDown() { if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) } }

    func entries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }
    func temporaries(_ path: String) -> [String] { entries(path).filter { $0.contains(".partial-") } }
    func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

    func graph(tensors: Int = 3, bytesEach: Int = 4096) throws -> TensorGraph {
        var ts: [Tensor] = []
        for i in 0..<tensors {
            let values = (0..<bytesEach).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            ts.append(try Tensor(name: "t\(i)", dtype: .i8, shape: [bytesEach], storage: MemoryStorage(values)))
        }
        return try TensorGraph(tensors: ts)
    }

    /// A PID that belonged to a process which has exited and been reaped.
    func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let pid = p.processIdentifier
        XCTAssertEqual(kill(pid, 0), -1)
        return pid
    }

    // MARK: - No clobber

    func testSecondWriterToTheSamePathFailsCleanly() throws {
        let path = "\(dir)/out.bin"
        let a = try AtomicOutput(path: path)
        let b = try AtomicOutput(path: path)
        XCTAssertNotEqual(a.temporaryPath, b.temporaryPath)
        try a.write([1, 2, 3])
        try b.write([9, 9, 9, 9])
        XCTAssertFalse(Paths.exists(path), "nothing under the final name before a commit")
        try a.commit()
        XCTAssertThrowsError(try b.commit()) { e in
            guard case let .exists(p)? = e as? OutputError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, path)
        }
        XCTAssertEqual(bytes(path), [1, 2, 3], "the first writer's output stays")
        XCTAssertTrue(Paths.exists(b.temporaryPath), "the loser keeps its temporary until dropped")
        let loserTemp = b.temporaryPath
        _ = consume b
        XCTAssertFalse(Paths.exists(loserTemp))
        XCTAssertEqual(temporaries(dir), [])
    }

    func testReplaceOnlyWhenAsked() throws {
        let path = "\(dir)/out.bin"
        let first = try AtomicOutput(path: path)
        try first.write([1])
        try first.commit()
        let second = try AtomicOutput(path: path, replace: true)
        try second.write([2])
        try second.commit()
        XCTAssertEqual(bytes(path), [2])
        // A file replacing a folder (with --force) swaps them and removes the folder.
        try FileManager.default.createDirectory(atPath: "\(dir)/was-a-folder", withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: "\(dir)/was-a-folder/x", contents: Data([0]))
        let third = try AtomicOutput(path: "\(dir)/was-a-folder", replace: true)
        try third.write([3])
        try third.commit()
        XCTAssertEqual(bytes("\(dir)/was-a-folder"), [3])
        XCTAssertEqual(temporaries(dir), [])
    }

    func testDroppedOutputLeavesNothing() throws {
        do {
            let out = try AtomicOutput(path: "\(dir)/never.bin")
            try out.write([1, 2])
            XCTAssertTrue(Paths.exists(out.temporaryPath))
        }
        XCTAssertEqual(entries(dir), [])
    }

    // MARK: - Folders

    func testFolderIsBuiltAsideAndRenamedWhole() throws {
        let g = try graph()
        let out = "\(dir)/model"
        var sawFinalDuringWrite = false
        let written = try HFFolder.write(g, to: out, maxShardSize: 5000) { _ in
            if Paths.exists(out) { sawFinalDuringWrite = true }
        }
        XCTAssertFalse(sawFinalDuringWrite, "the folder appeared under its real name before it was complete")
        XCTAssertEqual(entries(out), [
            "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
            "model.safetensors.index.json",
        ])
        XCTAssertEqual(Set(written), Set(entries(out).map { "\(out)/\($0)" }))
        XCTAssertEqual(try HFFolder.read(out).tensors.map(\.name), ["t0", "t1", "t2"])
        XCTAssertEqual(temporaries(dir), [])

        // An existing folder: refused without replace, untouched.
        XCTAssertThrowsError(try HFFolder.write(g, to: out)) { e in
            guard case .exists? = e as? OutputError else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(entries(out).count, 4)
        XCTAssertEqual(temporaries(dir), [])

        // With replace: swapped in whole, the old one removed (with anything nested in it).
        try FileManager.default.createDirectory(atPath: "\(out)/onnx/deeper", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(out)/onnx/deeper/x", contents: Data([1]))
        _ = try HFFolder.write(try graph(tensors: 1), to: out, replace: true)
        XCTAssertEqual(entries(out), ["model.safetensors"])
        XCTAssertEqual(entries(dir), ["model"])
    }

    func testEmptyFolderAtTheDestinationIsTaken() throws {
        let out = "\(dir)/empty"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        _ = try HFFolder.write(try graph(tensors: 1), to: out)
        XCTAssertEqual(entries(out), ["model.safetensors"])
    }

    func testFailedFolderWriteLeavesNothing() throws {
        // F8 cannot be stored in safetensors by this writer? Use a quantized tensor, which cannot.
        let q = try Tensor(name: "q", dtype: .q8_0, shape: [32], storage: MemoryStorage([UInt8](repeating: 0, count: 34)))
        let g = try TensorGraph(tensors: [q])
        XCTAssertThrowsError(try HFFolder.write(g, to: "\(dir)/a/b/model"))
        XCTAssertEqual(entries(dir), [], "neither the folder, its temporary nor the parents it made remain")
    }

    // MARK: - Multi-file sets

    func testSplitSetAndShardsArePublishedWithoutTemporaries() throws {
        let g = try graph(tensors: 4)
        let files = try GGUFWriter.write(g, to: "\(dir)/m.gguf", splitMaxTensors: 1)
        XCTAssertEqual(files.map { Paths.fileName(of: $0) }, (1...4).map { "m-0000\($0)-of-00004.gguf" })
        XCTAssertEqual(try GGUFReader.read(files[0]).tensors.count, 4)
        // A second write of the set is refused before anything is published.
        XCTAssertThrowsError(try GGUFWriter.write(g, to: "\(dir)/m.gguf", splitMaxTensors: 1))
        let shards = try SafetensorsWriter.write(g, to: "\(dir)/s.safetensors", maxShardSize: 4096)
        XCTAssertEqual(Paths.fileName(of: shards.last!), "s.safetensors.index.json")
        XCTAssertEqual(temporaries(dir), [])
    }

    func testSetWithATakenNameIsNotPublished() throws {
        let outs = try (1...3).map { i in
            let o = try AtomicOutput(path: "\(dir)/f\(i)")
            try o.write([UInt8(i)])
            try o.finish()
            return o
        }
        let other = try AtomicOutput(path: "\(dir)/f2")
        try other.write([42])
        try other.commit()
        XCTAssertThrowsError(try Publish.publishSet(outs.reversed(), replace: false)) { e in
            guard case let .exists(p)? = e as? OutputError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, "\(dir)/f2")
        }
        XCTAssertEqual(entries(dir).filter { !$0.hasPrefix(".") }, ["f2"], "no file of the set was published")
        XCTAssertEqual(bytes("\(dir)/f2"), [42])
    }

    // MARK: - Stale temporaries

    func testTemporaryNamesCarryThePID() {
        XCTAssertEqual(Publish.ownerPID(ofTemporaryName: ".m.gguf.partial-1234-7"), 1234)
        XCTAssertEqual(Publish.ownerPID(ofTemporaryName: ".m.gguf.partial-1234"), 1234)
        XCTAssertEqual(Publish.ownerPID(ofTemporaryName: ".a.partial-9.b.partial-77-1"), 77)
        XCTAssertNil(Publish.ownerPID(ofTemporaryName: "m.gguf.partial-1234-7"))
        XCTAssertNil(Publish.ownerPID(ofTemporaryName: ".m.gguf.partial-12x"))
        XCTAssertNil(Publish.ownerPID(ofTemporaryName: ".m.gguf.partial--1"))
        let t = Publish.temporaryPath(for: "\(dir)/x.gguf")
        XCTAssertEqual(Publish.ownerPID(ofTemporaryName: Paths.fileName(of: t)), getpid())
    }

    func testStaleTemporariesOfDeadProcessesAreRemovedByTheNextWrite() throws {
        let dead = try deadPID()
        let staleFile = "\(dir)/.m.gguf.partial-\(dead)-1"
        let staleFolder = "\(dir)/.hf.partial-\(dead)-2"
        let oldStyle = "\(dir)/.x.safetensors.partial-\(dead)"
        let live = "\(dir)/.y.gguf.partial-1-1"  // PID 1 always exists
        let unrelated = "\(dir)/.hidden"
        for f in [staleFile, oldStyle, live, unrelated] { FileManager.default.createFile(atPath: f, contents: Data([1])) }
        try FileManager.default.createDirectory(atPath: staleFolder, withIntermediateDirectories: false)
        for f in ["model.safetensors", ".model.safetensors.partial-\(dead)-3", "config.json"] {
            FileManager.default.createFile(atPath: "\(staleFolder)/\(f)", contents: Data([2]))
        }
        let out = try AtomicOutput(path: "\(dir)/new.bin")
        try out.write([7])
        try out.commit()
        XCTAssertEqual(entries(dir), [".hidden", ".y.gguf.partial-1-1", "new.bin"])
    }

    // MARK: - Sources that shrink while read

    /// Opens `source`, truncates it to `keep` bytes (default half), then writes it with `write`:
    /// the error names the file and an offset, and nothing is left at `output`.
    func assertShrinkIsAnError(
        source: String, output: String, keep: Int? = nil, line: UInt = #line, _ write: (TensorGraph) throws -> Void
    ) throws {
        let g = try FormatRegistry.open(source).graph
        let size = Paths.fileSize(source)!
        XCTAssertEqual(truncate(source, off_t(keep ?? size / 2)), 0)
        XCTAssertThrowsError(try write(g), line: line) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains(source), text, line: line)
            XCTAssertTrue(text.contains("the file changed while being read"), text, line: line)
            XCTAssertNotNil(text.range(of: #"at offset \d+"#, options: .regularExpression), text, line: line)
        }
        XCTAssertFalse(Paths.exists(output), line: line)
        XCTAssertEqual(temporaries(Paths.directory(of: output)), [], line: line)
    }

    func copyGolden(_ relative: String, as name: String) throws -> String {
        let p = "\(dir)/\(name)"
        try FileManager.default.copyItem(atPath: TestSupport.path(relative), toPath: p)
        return p
    }

    func testShrinkingSourcesGiveErrorsForEveryWriter() throws {
        let outDir = "\(dir)/out"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: false)
        var src = try copyGolden("golden/gguf/mixed.gguf", as: "a.gguf")
        try assertShrinkIsAnError(source: src, output: "\(outDir)/a.gguf") { try GGUFWriter.write($0, to: "\(outDir)/a.gguf") }
        src = try copyGolden("golden/gguf/mixed.gguf", as: "b.gguf")
        try assertShrinkIsAnError(source: src, output: "\(outDir)/b.ingot") { try IngotWriter.write($0, to: "\(outDir)/b.ingot") }
        src = try copyGolden("golden/safetensors/mixed.safetensors", as: "c.safetensors")
        try assertShrinkIsAnError(source: src, output: "\(outDir)/c.safetensors") {
            try SafetensorsWriter.write($0, to: "\(outDir)/c.safetensors")
        }
        src = try copyGolden("golden/safetensors/mixed.safetensors", as: "d.safetensors")
        try assertShrinkIsAnError(source: src, output: "\(outDir)/d") { try HFFolder.write($0, to: "\(outDir)/d") }
        // An Ingot source (chunks read with pread; in a file this small the header and index at
        // the end outweigh the chunks, so keep only the prelude).
        let ingot = "\(dir)/e.ingot"
        try IngotWriter.write(try GGUFReader.read(TestSupport.path("golden/gguf/mixed.gguf")), to: ingot)
        try assertShrinkIsAnError(source: ingot, output: "\(outDir)/e.gguf", keep: Ingot.preludeSize) {
            try GGUFWriter.write($0, to: "\(outDir)/e.gguf")
        }
    }

    func testMappingIsRefusedUnlessPermittedAndChecksTheSize() throws {
        let src = try copyGolden("golden/gguf/mixed.gguf", as: "m.gguf")
        let g = try GGUFReader.read(src)
        let t = g.tensors.last!
        XCTAssertNil(try t.storage.mappedBytes(), "conversion paths never map")
        guard let region = t.storage as? FileRegion else { return XCTFail("not a file region") }
        region.file.permitMapping()
        XCTAssertNotNil(try t.storage.mappedBytes())
        XCTAssertEqual(truncate(src, off_t(region.offset)), 0)
        XCTAssertThrowsError(try t.storage.mappedBytes()) { e in
            XCTAssertTrue("\(e)".contains(src), "\(e)")
        }
    }
}
