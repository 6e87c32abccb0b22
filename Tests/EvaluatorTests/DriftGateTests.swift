import Foundation
import TestSupport
import XCTest

/// `smelt perplexity` and `smelt drift` end to end on the tiny models, including each gate failing
/// on purpose with exit status 1 and a message naming the gate and the margin.
final class DriftGateTests: XCTestCase {
    nonisolated(unsafe) static var dir = ""
    nonisolated(unsafe) static var text = ""
    nonisolated(unsafe) static var f16 = ""
    nonisolated(unsafe) static var q4 = ""
    static let llama = TestSupport.path("golden/tiny/llama")

    override class func setUp() {
        dir = TestSupport.tempDir("drift")
        text = "\(dir)/text.txt"
        let corpus = try! String(contentsOfFile: TestSupport.wikiText, encoding: .utf8)
        try! String(corpus.prefix(6000)).write(toFile: text, atomically: true, encoding: .utf8)
        f16 = "\(dir)/llama-f16.gguf"
        let r = try! TestSupport.smelt(["convert", llama, f16, "--dtype", "f16"])
        precondition(r.status == 0, r.stderr)
        q4 = "\(dir)/llama-q4_0.gguf"
        let q = try! TestSupport.smelt(["quantize", llama, q4, "--type", "q4_0"])
        precondition(q.status == 0, q.stderr)
    }

    override class func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func drift(_ extra: [String], candidate: String = DriftGateTests.f16) throws -> TestSupport.Result {
        try TestSupport.smelt(["drift", "--base", Self.llama, "--candidate", candidate, "--text", Self.text, "--ctx", "32"] + extra)
    }

    func testSelfDriftIsExactlyZero() throws {
        let json = "\(Self.dir)/self.json"
        let r = try drift(["--json", json, "--max-kld", "0", "--min-top1", "100"], candidate: Self.llama)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let kld = report["kld"] as! [String: Double]
        XCTAssertEqual(kld["mean"], 0)
        XCTAssertEqual(kld["max"], 0)
        XCTAssertEqual(report["top1_agreement"] as? Double, 1)
        XCTAssertEqual(report["ppl_ratio"] as? Double, 1)
        XCTAssertEqual(report["passed"] as? Bool, true)
        XCTAssertGreaterThan(report["positions"] as! Int, 50)
    }

    func testF16CandidateDriftsALittle() throws {
        let json = "\(Self.dir)/f16.json"
        let r = try drift(["--json", json])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let mean = (report["kld"] as! [String: Double])["mean"]!
        XCTAssertGreaterThan(mean, 0)
        XCTAssertLessThan(mean, 1e-3)
        XCTAssertTrue(r.stdout.contains("KLD mean:"), r.stdout)
    }

    func testMaxKLDGateFails() throws {
        let r = try drift(["--max-kld", "0"])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("GATE FAILED: --max-kld: mean KLD"), r.stdout)
        XCTAssertTrue(r.stdout.contains("exceeds limit 0.000000 (over by"), r.stdout)
    }

    /// A Q4_0 candidate changes the top token somewhere: --min-top1 100 fails, with the shortfall
    /// the JSON report also gives; an impossible limit (over 100 %) is a usage error.
    func testMinTop1GateFails() throws {
        let json = "\(Self.dir)/q4.json"
        let r = try drift(["--min-top1", "100", "--json", json], candidate: Self.q4)
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("GATE FAILED: --min-top1: top-1 agreement"), r.stdout)
        XCTAssertTrue(r.stdout.contains("is below minimum 100.000%"), r.stdout)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let top1 = try XCTUnwrap(report["top1_agreement"] as? Double)
        XCTAssertLessThan(top1, 1)
        XCTAssertEqual(report["passed"] as? Bool, false)
        let gate = try XCTUnwrap((report["gates"] as? [[String: Any]])?.first)
        XCTAssertEqual(gate["value"] as? Double ?? -1, top1 * 100, accuracy: 1e-9)
        let usage = try drift(["--min-top1", "100.5"])
        XCTAssertEqual(usage.status, 64, usage.stderr)
    }

    func testMaxPPLRatioGateFails() throws {
        let r = try drift(["--max-ppl-ratio", "0.5", "--max-kld", "1"])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("GATE FAILED: --max-ppl-ratio: PPL ratio"), r.stdout)
        XCTAssertTrue(r.stdout.contains("gate passed: --max-kld"), r.stdout)
    }

    func testOtherErrorsExit2() throws {
        let r = try drift([], candidate: "/nonexistent.gguf")
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("/nonexistent.gguf"), r.stderr)
    }

    func testPerplexityMatchesTheSameFromGGUF() throws {
        let a = try TestSupport.smelt(["perplexity", Self.llama, "--text", Self.text, "--ctx", "32", "--json"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let gguf = "\(Self.dir)/llama.gguf"
        XCTAssertEqual(try TestSupport.smelt(["convert", Self.llama, gguf]).status, 0)
        let b = try TestSupport.smelt(["perplexity", gguf, "--text", Self.text, "--ctx", "32", "--json"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let ja = try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as! [String: Any]
        let jb = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(ja["ppl"] as! Double, jb["ppl"] as! Double, accuracy: 1e-9)
        XCTAssertEqual(ja["tokens_scored"] as? Int, (ja["chunks"] as! Int) * 15)
    }
}
