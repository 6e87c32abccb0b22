import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// The `smelt` binary under the events of issue 15: its source truncated in the middle of each
/// kind of conversion, SIGTERM/SIGINT mid-write, two writers racing for one output, and
/// temporaries left by a killed run. The moment is made deterministic by stopping the process
/// (SIGSTOP) as soon as its temporary output appears, acting, then letting it continue.
final class CrashSafetyCLITests: XCTestCase {
    var dir = ""
    var out = ""

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: TestSupport.smeltBinary) else {
            throw TestSupport.MissingInput(message: "smelt binary not built at \(TestSupport.smeltBinary)")
        }
        try TestSupport.requireModel(TestSupport.smolLM2)
        dir = TestSupport.tempDir("crash-safety")
        out = "\(dir)/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
    }

    override func tearDown() { if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) } }

    final class Running {
        let process = Process()
        let errPath: String
        init(_ args: [String]) throws {
            errPath = TestSupport.tempDir("stderr") + "/stderr"
            FileManager.default.createFile(atPath: errPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: TestSupport.smeltBinary)
            process.arguments = args
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            try process.run()
        }
        var pid: Int32 { process.processIdentifier }
        func wait() -> (signaled: Bool, status: Int32, stderr: String) {
            process.waitUntilExit()
            let err = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
            return (process.terminationReason == .uncaughtSignal, process.terminationStatus, err)
        }
    }

    func temporaries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.contains(".partial-") }
    }

    /// Polls until a temporary output appears in `folder` (then the source is open and the writer
    /// has started); false if the process ends first.
    func waitForTemporary(in folder: String, of run: Running, timeout: Double = 120) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !temporaries(folder).isEmpty { return true }
            if !run.process.isRunning { return false }
            usleep(500)
        }
        return false
    }

    func copyModel(as name: String) throws -> String {
        let p = "\(dir)/\(name)"
        try FileManager.default.copyItem(atPath: TestSupport.smolLM2, toPath: p)
        return p
    }

    func smelt(_ args: [String]) throws -> TestSupport.Result {
        let r = try TestSupport.smelt(args)
        XCTAssertEqual(r.status, 0, "smelt \(args.joined(separator: " ")): \(r.stderr)")
        return r
    }

    /// Runs `args`, stops the process when its temporary output appears, truncates `source` to
    /// half, lets it go on: it must exit 2 naming the source and an offset, leaving nothing.
    func assertTruncationMidRunIsAnError(_ args: [String], source: String, output: String, line: UInt = #line) throws {
        let size = Paths.fileSize(source)!
        let run = try Running(args)
        XCTAssertTrue(waitForTemporary(in: Paths.directory(of: output), of: run), "no temporary output appeared", line: line)
        kill(run.pid, SIGSTOP)
        XCTAssertEqual(truncate(source, off_t(size / 2)), 0, line: line)
        kill(run.pid, SIGCONT)
        let r = run.wait()
        XCTAssertFalse(r.signaled, "killed by signal \(r.status): \(r.stderr)", line: line)
        XCTAssertEqual(r.status, 2, r.stderr, line: line)
        XCTAssertTrue(r.stderr.contains(source), r.stderr, line: line)
        XCTAssertTrue(r.stderr.contains("the file changed while being read"), r.stderr, line: line)
        XCTAssertNotNil(r.stderr.range(of: #"at offset \d+"#, options: .regularExpression), r.stderr, line: line)
        XCTAssertFalse(Paths.exists(output), "output left at \(output)", line: line)
        XCTAssertEqual(temporaries(Paths.directory(of: output)), [], line: line)
    }

    /// The crash of issue 15 (GGUF → Hugging Face folder, dequantizing Q4_1) and every other
    /// conversion kind from a GGUF source.
    func testTruncatedGGUFSourceDuringEachConversion() throws {
        for (name, args) in [
            ("hf", ["convert"]), ("copy.gguf", ["convert"]), ("packed.ingot", ["convert"]),
            ("q8.gguf", ["quantize", "--type", "q8_0", "--threads", "1"]),
        ] {
            let src = try copyModel(as: "src-\(name).gguf")
            let output = "\(out)/\(name)"
            try assertTruncationMidRunIsAnError(args + [src, output], source: src, output: output)
        }
    }

    /// Hugging Face folder (safetensors) and Ingot sources.
    func testTruncatedFolderAndIngotSources() throws {
        let hf = "\(dir)/hf"
        _ = try smelt(["convert", TestSupport.smolLM2, hf])
        try assertTruncationMidRunIsAnError(
            ["convert", hf, "\(out)/from-hf.gguf"], source: "\(hf)/model.safetensors", output: "\(out)/from-hf.gguf")
        let ingot = "\(dir)/m.ingot"
        _ = try smelt(["convert", TestSupport.smolLM2, ingot])
        try assertTruncationMidRunIsAnError(["convert", ingot, "\(out)/from-ingot.gguf"], source: ingot, output: "\(out)/from-ingot.gguf")
    }

    /// SIGTERM and SIGINT mid-write: the process dies of the signal, and its temporary files
    /// (a temporary folder with files in it, for a folder output) are gone.
    func testSignalsRemoveTemporaries() throws {
        for sig in [SIGTERM, SIGINT] {
            let output = "\(out)/hf-\(sig)"
            let run = try Running(["convert", TestSupport.smolLM2, output])
            XCTAssertTrue(waitForTemporary(in: out, of: run))
            usleep(300_000)  // into the weights
            let inside = temporaries(out).first.map { (try? FileManager.default.contentsOfDirectory(atPath: "\(out)/\($0)")) ?? [] }
            kill(run.pid, sig)
            let r = run.wait()
            XCTAssertTrue(r.signaled, "exit \(r.status): \(r.stderr)")
            XCTAssertEqual(r.status, sig)
            XCTAssertFalse(Paths.exists(output))
            XCTAssertEqual(temporaries(out), [], "signal \(sig); the temporary folder held \(inside ?? [])")
        }
    }

    /// Two converts to one path: the one that publishes second fails with "already exists"
    /// (exit 2) and the first one's file stays.
    func testConcurrentWritersOneFailsCleanly() throws {
        let output = "\(out)/m.gguf"
        let mixed = TestSupport.path("golden/gguf/mixed.gguf")
        let slow = try Running(["convert", TestSupport.smolLM2, output])
        XCTAssertTrue(waitForTemporary(in: out, of: slow))
        kill(slow.pid, SIGSTOP)  // past its up-front existence check, still writing
        _ = try smelt(["convert", mixed, output])
        kill(slow.pid, SIGCONT)
        let r = slow.wait()
        XCTAssertFalse(r.signaled)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("\(output) already exists"), r.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: output), FileManager.default.contents(atPath: mixed))
        XCTAssertEqual(temporaries(out), [])
    }

    /// What kill -9 leaves (a temporary file and folder named with a dead PID) is removed by the
    /// next run writing in that folder; an existing output is refused without --force and
    /// replaced whole with it.
    func testNextRunRemovesWhatAKilledRunLeft() throws {
        let output = "\(out)/hf"
        let run = try Running(["convert", TestSupport.smolLM2, output])
        XCTAssertTrue(waitForTemporary(in: out, of: run))
        usleep(300_000)
        kill(run.pid, SIGKILL)
        let r = run.wait()
        XCTAssertTrue(r.signaled)
        let left = temporaries(out)
        XCTAssertEqual(left.count, 1, "kill -9 cannot clean up: \(left)")
        XCTAssertFalse(Paths.exists(output))
        _ = try smelt(["convert", TestSupport.path("golden/gguf/mixed.gguf"), "\(out)/other.gguf"])
        XCTAssertEqual(temporaries(out), [], "the next run in the folder removes the dead run's temporaries")

        _ = try smelt(["convert", TestSupport.smolLM2, output])
        let again = try TestSupport.smelt(["convert", TestSupport.smolLM2, output])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        _ = try smelt(["convert", "--force", TestSupport.path("golden/gguf/mixed.gguf"), output + ".gguf"])
        _ = try smelt(["convert", "--force", TestSupport.smolLM2, output])
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: out)), ["hf", "hf.gguf", "other.gguf"])
    }
}
