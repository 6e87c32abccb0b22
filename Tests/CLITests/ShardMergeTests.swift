import Foundation
import TestSupport
import XCTest

/// `--shard K/N --partial FILE` then `smelt merge` on the tiny llama: N ∈ {1, 3, 4} shards give
/// one run's report (every JSON value but elapsed times) and a byte-identical importance matrix;
/// missing, duplicated, mismatched and truncated partials are refused with nothing written.
final class ShardMergeTests: XCTestCase {
    nonisolated(unsafe) static var dir = ""
    nonisolated(unsafe) static var text = ""
    nonisolated(unsafe) static var otherText = ""
    nonisolated(unsafe) static var f16 = ""
    static let llama = TestSupport.path("golden/tiny/llama")
    static let qwen = TestSupport.path("golden/tiny/qwen2")
    /// 13 chunks of 32 tokens: uneven shards (3+3+3+4 for N = 4) and a tree that is not a power of two.
    static let common = ["--ctx", "32", "--chunks", "13", "--threads", "2"]

    override class func setUp() {
        dir = TestSupport.tempDir("shards")
        let readme = try! String(contentsOfFile: TestSupport.path("README.md"), encoding: .utf8)
        text = "\(dir)/text.txt"
        try! String(readme.prefix(6000)).write(toFile: text, atomically: true, encoding: .utf8)
        otherText = "\(dir)/other.txt"
        try! (String(readme.prefix(6000)) + " and a few more words").write(toFile: otherText, atomically: true, encoding: .utf8)
        f16 = "\(dir)/llama-f16.gguf"
        let r = try! TestSupport.smelt(["convert", llama, f16, "--dtype", "f16"])
        precondition(r.status == 0, r.stderr)
    }

    override class func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func smelt(_ args: [String], env: [String] = []) throws -> TestSupport.Result {
        env.isEmpty ? try TestSupport.smelt(args) : try TestSupport.run("/usr/bin/env", env + [TestSupport.smeltBinary] + args)
    }

    func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    /// Every field but elapsed times must be equal (paths are equal here: the shards were given the same ones).
    func assertSameReport(_ a: [String: Any], _ b: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        let timing: Set<String> = ["seconds", "tokens_per_second"]
        XCTAssertEqual(Set(a.keys), Set(b.keys), file: file, line: line)
        for (k, v) in a where !timing.contains(k) {
            XCTAssertEqual(v as? NSObject, b[k] as? NSObject, "field \(k)", file: file, line: line)
        }
    }

    func driftArgs(candidate: String = ShardMergeTests.f16, text: String = ShardMergeTests.text) -> [String] {
        ["drift", "--base", Self.llama, "--candidate", candidate, "--text", text] + Self.common
    }

    /// Runs `make(k, n)` for every shard, returns the partial paths.
    func shards(_ n: Int, _ label: String, _ make: (String) -> [String]) throws -> [String] {
        try (0..<n).map { k in
            let partial = "\(Self.dir)/\(label)-\(k)of\(n).partial"
            let r = try smelt(make(partial) + ["--shard", "\(k)/\(n)", "--partial", partial])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("shard \(k)/\(n)"), r.stdout)
            return partial
        }
    }

    func testDriftShardsMergeToOneRun() throws {
        let single = "\(Self.dir)/drift-single.json"
        let one = try smelt(driftArgs() + ["--json", single, "--max-kld", "0"])
        XCTAssertEqual(one.status, 1, one.stderr)  // the gate fails on purpose: the merge must fail it too
        let report = try json(single)
        XCTAssertGreaterThan((report["kld"] as! [String: Double])["mean"]!, 0)
        XCTAssertEqual(report["chunks"] as? Int, 13)
        for n in [1, 3, 4] {
            let partials = try shards(n, "drift") { _ in driftArgs() }
            let merged = "\(Self.dir)/drift-merged-\(n).json"
            let r = try smelt(["merge"] + partials.reversed() + ["--output", merged, "--max-kld", "0"])
            XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
            XCTAssertTrue(r.stdout.contains("GATE FAILED: --max-kld"), r.stdout)
            assertSameReport(report, try json(merged))
            // The printed report is the same but for the elapsed seconds.
            let drop = { (s: String) in s.split(separator: "\n").filter { !$0.hasPrefix("evaluated:") } }
            XCTAssertEqual(drop(r.stdout), drop(one.stdout))
        }
    }

    func testPerplexityShardsMergeToOneRun() throws {
        let args = ["perplexity", Self.llama, "--text", Self.text] + Self.common
        let one = try smelt(args + ["--json"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((report["chunk_ppl"] as? [Double])?.count, 13)
        for n in [1, 3, 4] {
            let partials = try shards(n, "ppl") { _ in args }
            let merged = "\(Self.dir)/ppl-merged-\(n).json"
            let r = try smelt(["merge"] + partials + ["--output", merged])
            XCTAssertEqual(r.status, 0, r.stderr)
            assertSameReport(report, try json(merged))
        }
    }

    func testCalibrateShardsMergeToByteIdenticalImatrix() throws {
        let single = "\(Self.dir)/single.imatrix.gguf"
        let args = ["calibrate", Self.llama, "--text", Self.text] + Self.common
        let one = try smelt(args + ["--output", single])
        XCTAssertEqual(one.status, 0, one.stderr)
        let expected = try Data(contentsOf: URL(fileURLWithPath: single))
        for n in [1, 3, 4] {
            let partials = try shards(n, "cal") { _ in args }
            let merged = "\(Self.dir)/merged-\(n).imatrix.gguf"
            let r = try smelt(["merge"] + partials.shuffled() + ["--output", merged])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged)), expected, "\(n) shards")
        }
    }

    /// A mixture of experts: the per-expert sums and counts travel through partials too.
    func testCalibrateShardsOfExpertsMergeToByteIdenticalImatrix() throws {
        let moe = TestSupport.path("golden/tiny/qwen3moe")
        let single = "\(Self.dir)/moe-single.imatrix.gguf"
        let args = ["calibrate", moe, "--text", Self.text] + Self.common
        let one = try smelt(args + ["--output", single])
        XCTAssertEqual(one.status, 0, one.stderr)
        let expected = try Data(contentsOf: URL(fileURLWithPath: single))
        for n in [3] {
            let partials = try shards(n, "moe-cal") { _ in args }
            let merged = "\(Self.dir)/moe-merged-\(n).imatrix.gguf"
            let r = try smelt(["merge"] + partials.shuffled() + ["--output", merged])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged)), expected, "\(n) shards")
        }
    }

    func testQuantizeShardsMergeToByteIdenticalGGUF() throws {
        let imatrix = "\(Self.dir)/q.imatrix.gguf"
        var r = try smelt(["calibrate", Self.llama, "--text", Self.text, "--output", imatrix] + Self.common)
        XCTAssertEqual(r.status, 0, r.stderr)
        for extra in [["--type", "q4_0"], ["--type", "q4_1", "--imatrix", imatrix], ["--type", "Q4_K_M", "--imatrix", imatrix]] {
            let single = "\(Self.dir)/single-\(extra[1]).gguf"
            r = try smelt(["quantize", Self.llama, single] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let expected = try Data(contentsOf: URL(fileURLWithPath: single))
            for n in [1, 3, 4] {
                let partials = try (0..<n).map { k in
                    let p = "\(Self.dir)/quant-\(extra[1])-\(k)of\(n).partial"
                    let r = try smelt(["quantize", Self.llama] + extra + ["--shard", "\(k)/\(n)", "--partial", p])
                    XCTAssertEqual(r.status, 0, r.stderr)
                    return p
                }
                let merged = "\(Self.dir)/merged-\(extra[1])-\(n).gguf"
                r = try smelt(["merge"] + partials.reversed() + ["--output", merged])
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged)), expected, "\(extra) in \(n) shards")
            }
        }
        // Shards of another type do not merge.
        let other = "\(Self.dir)/quant-other.partial"
        r = try smelt(["quantize", Self.llama, "--type", "q8_0", "--shard", "1/3", "--partial", other])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = "\(Self.dir)/quant-fault.gguf"
        r = try smelt(["merge", "\(Self.dir)/quant-q4_0-0of3.partial", other, "\(Self.dir)/quant-q4_0-2of3.partial", "--output", out])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("type=Q8_0 vs type=Q4_0"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testOnePassGPTQShardsMergeToByteIdenticalGGUF() throws {
        let gptq = ["--type", "q4_0", "--method", "gptq", "--gptq-mode", "one-pass", "--calibration-text", Self.text,
                    "--ctx", "32", "--chunks", "6", "--threads", "2"]
        let single = "\(Self.dir)/gptq-single.gguf"
        var r = try smelt(["quantize", Self.llama, single] + gptq)
        XCTAssertEqual(r.status, 0, r.stderr)
        let expected = try Data(contentsOf: URL(fileURLWithPath: single))
        // One-pass is not the sequential mode: the Hessians of later layers differ.
        let sequential = "\(Self.dir)/gptq-sequential.gguf"
        r = try smelt(["quantize", Self.llama, sequential] + gptq.filter { $0 != "one-pass" && $0 != "--gptq-mode" })
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: sequential)), expected)
        for n in [1, 2, 3] {
            let partials = try (0..<n).map { k in
                let p = "\(Self.dir)/gptq-\(k)of\(n).partial"
                let r = try smelt(["quantize", Self.llama] + gptq + ["--shard", "\(k)/\(n)", "--partial", p])
                XCTAssertEqual(r.status, 0, r.stderr)
                return p
            }
            let merged = "\(Self.dir)/gptq-merged-\(n).gguf"
            r = try smelt(["merge"] + partials + ["--output", merged])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged)), expected, "one-pass GPTQ in \(n) shards")
        }
        r = try smelt(["quantize", Self.llama, "--shard", "0/2", "--partial", "\(Self.dir)/x.partial"]
            + gptq.filter { $0 != "one-pass" && $0 != "--gptq-mode" })
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("not sequential GPTQ"), r.stderr)
    }

    func testShardAutoReadsSlurmAndKubernetesIndices() throws {
        let p = "\(Self.dir)/auto.partial"
        var r = try smelt(driftArgs() + ["--shard", "auto", "--partial", p],
                          env: ["SLURM_ARRAY_TASK_ID=6", "SLURM_ARRAY_TASK_MIN=5", "SLURM_ARRAY_TASK_COUNT=3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("drift shard 1/3, chunks 4..<8 of 13"), r.stdout)
        r = try smelt(driftArgs() + ["--shard", "auto", "--partial", p], env: ["JOB_COMPLETION_INDEX=3", "SMELT_SHARD_COUNT=4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("drift shard 3/4, chunks 9..<13 of 13"), r.stdout)
        r = try smelt(driftArgs() + ["--shard", "auto", "--partial", p], env: ["JOB_COMPLETION_INDEX=3"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("SMELT_SHARD_COUNT"), r.stderr)
        r = try smelt(driftArgs() + ["--shard", "4/4", "--partial", p])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("K must be from 0 to N-1"), r.stderr)
        r = try smelt(driftArgs() + ["--shard", "0/14", "--partial", p])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("14 shards for 13 chunks"), r.stderr)
    }

    func testFaultyShardSetsAreRefusedAndNothingIsWritten() throws {
        let good = try shards(3, "fault") { _ in driftArgs() }
        let out = "\(Self.dir)/fault.json"
        func refuse(_ partials: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try smelt(["merge"] + partials + ["--output", out])
            XCTAssertEqual(r.status, 2, r.stdout + r.stderr, file: file, line: line)
            XCTAssertTrue(r.stderr.contains(message), "expected '\(message)' in: \(r.stderr)", file: file, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), file: file, line: line)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: Self.dir).filter { $0.hasPrefix(".fault") || $0.contains(".tmp") }, [])
        }
        // A missing shard.
        try refuse([good[0], good[2]], "missing shard 1/3")
        // Two copies of one shard (a second file with the same shard).
        let copy = "\(Self.dir)/copy.partial"
        try FileManager.default.copyItem(atPath: good[1], toPath: copy)
        try refuse([good[0], good[1], copy, good[2]], "shard 1/3 is given twice: \(good[1]) and \(copy)")
        // A shard from another text, and one from another candidate model.
        let otherText = try shards(3, "othertext") { _ in driftArgs(text: Self.otherText) }
        try refuse([good[0], otherText[1], good[2]], "\(otherText[1]) (shard 1/3) is not from the same run as \(good[0])")
        let otherModel = try shards(3, "othermodel") { _ in driftArgs(candidate: Self.llama) }
        try refuse([good[0], good[1], otherModel[2]], "candidate.file[")
        // A shard of another split of the same run.
        let four = try shards(4, "four") { _ in driftArgs() }
        try refuse([good[0], good[1], four[3]], "is shard 3 of 4 but")
        // A truncated partial.
        let cut = "\(Self.dir)/cut.partial"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good[2]))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: cut))
        try refuse([good[0], good[1], cut], cut)
        // Partials of different kinds.
        let ppl = try shards(3, "kind") { _ in ["perplexity", Self.llama, "--text", Self.text] + Self.common }
        try refuse([good[0], good[1], ppl[2]], "is a perplexity partial but")
        // Not a partial at all.
        try refuse([good[0], good[1], Self.f16], "\(Self.f16): not a usable partial result")
        // A rerun of the missing shard completes the set (and replaces its partial).
        let rerun = try smelt(driftArgs() + ["--shard", "1/3", "--partial", good[1]])
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        var r = try smelt(["merge", good[0], good[2], good[1], "--output", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        // An existing output is replaced only with --force.
        r = try smelt(["merge", good[0], good[2], good[1], "--output", out])
        XCTAssertEqual(r.status, 2)
        r = try smelt(["merge", good[0], good[2], good[1], "--output", out, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
    }
}
