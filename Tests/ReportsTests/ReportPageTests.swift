import Calibration
import Evaluator
import Formats
import Foundation
import Reports
import TensorGraph
import TestSupport
import XCTest

/// The report pages without a browser: text is escaped, figures carry their JSON path and exact
/// value, the drift report's histogram and per-chunk figures, and llama.cpp's file types priced
/// from a sensitivity file.
final class ReportPageTests: XCTestCase {
    func testEscapesEveryTextAndAttribute() {
        XCTAssertEqual(HTML.escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        XCTAssertEqual(HTML.escape("a\u{1b}[31mb\u{7f}"), "a\u{FFFD}[31mb\u{FFFD}")
        XCTAssertEqual(HTML.exact(0.1), "0.1")
        XCTAssertEqual(HTML.exact(.nan), "null")
        XCTAssertEqual(Figure(0.00116097, key: "k", digits: 5).text, "0.0011610")
        XCTAssertEqual(Figure(322.67, key: "k", digits: 6).text, "322.670")
        XCTAssertEqual(Figure(6.93e-6, key: "k", digits: 3).text, "6.93e-06")
        XCTAssertEqual(Figure(12345, key: "k", decimals: 0).html, "<span class=\"num\" data-key=\"k\" data-value=\"12345.0\">12345</span>")
    }

    /// A hostile model name ends up as text, never as markup; the page has no script and
    /// nothing that fetches.
    func testDriftPageEscapesNamesAndFetchesNothing() throws {
        let report = Drift.report(ctx: 8, perChunk: [Self.positions(4, kld: 0.01), Self.positions(4, kld: 0.02)], seconds: 1)
        var json = Self.minimalJSON(report)
        json = Self.replacing(json, "base", .object([("model", .string("<script>alert('x')</script>&\"")), ("ppl", .double(2)), ("ppl_stderr", .double(0.1))]))
        let html = try DriftPage.render(json)
        XCTAssertFalse(html.contains("<script"), "a name became markup")
        XCTAssertTrue(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"))
        XCTAssertTrue(html.contains("Content-Security-Policy\" content=\"default-src 'none'"))
        for fetcher in [" src=", " href=", "url(", "@import"] { XCTAssertFalse(html.contains(fetcher), fetcher) }
    }

    /// Per-chunk PPL is exp(mean NLL) over the chunk's positions; the histogram counts every
    /// position once, in [low, high) bins equal on a log scale.
    func testPerChunkFiguresAndHistogram() {
        var a = Self.positions(3, kld: 0.001)
        a[1].nllBase = 2
        a[2].nllCandidate = 3
        let b = [Drift.Position(kld: 0, deltaP: 0, same: false, nllBase: 1, nllCandidate: 1),
                 Drift.Position(kld: 0.1, deltaP: 0, same: true, nllBase: 1, nllCandidate: 1)]
        let r = Drift.report(ctx: 8, perChunk: [a, b], seconds: 1)
        XCTAssertEqual(r.perChunk.count, 2)
        XCTAssertEqual(r.perChunk[0].pplBase, exp((1.0 + 2 + 1) / 3), accuracy: 1e-12)
        XCTAssertEqual(r.perChunk[0].pplCandidate, exp((1.0 + 1 + 3) / 3), accuracy: 1e-12)
        XCTAssertEqual(r.perChunk[1].kldMean, 0.05, accuracy: 1e-15)
        XCTAssertEqual(r.perChunk[1].top1Agreement, 0.5)
        XCTAssertEqual(r.perChunk[0].positions, 3)
        let h = r.kldHistogram(binsPerDecade: 4)
        XCTAssertEqual(h.below, 1)  // the zero
        XCTAssertEqual(h.floor, 1e-3, accuracy: 1e-18)
        XCTAssertEqual(h.bins.count, 8)  // 1e-3 … 1e-1, four per decade
        XCTAssertEqual(h.bins.reduce(0) { $0 + $1.count } + h.below, r.positions)
        XCTAssertEqual(h.bins.first?.count, 3)  // 0.001 is the first bin's low edge
        XCTAssertEqual(h.bins.last?.count, 1)  // 0.1, the maximum, in the closed last bin
        XCTAssertEqual(h.bins.last!.high, 0.1, accuracy: 1e-15)
    }

    /// The sensitivity page's data: the measured KLDs summed per layer and per role add up to
    /// the total, the file types without a point are named, and the page shows a non-finite
    /// value (JSONEncoder's "nan") as a dash.
    func testSensitivityPageData() throws {
        let graph = try ModelQuantizer.open(ReportFixtures.llama)
        let s = ReportFixtures.sensitivity(graph: graph)
        let data = SensitivityPage.data(sensitivity: s, fileTypeNames: ["Q4_0", "Q2_K", "Q4_K_M", "Q8_0", "IQ4_XS"])
        let total = s["tensors"]!.arrayValue!.reduce(0.0) { $0 + $1["measured_kld"]!.doubleValue! }
        let byLayer = data["measured_by_layer"]!.arrayValue!
        XCTAssertEqual(byLayer.map { $0["name"]!.stringValue! }, ["blk.0", "blk.1", "other"])
        XCTAssertEqual(byLayer.reduce(0.0) { $0 + $1["measured_kld"]!.doubleValue! }, total, accuracy: total * 1e-12)
        let blk1 = s["tensors"]!.arrayValue!.filter { $0["layer"]?.intValue == 1 }.reduce(0.0) { $0 + $1["measured_kld"]!.doubleValue! }
        XCTAssertEqual(byLayer[1]["measured_kld"]!.doubleValue!, blk1, accuracy: blk1 * 1e-12)
        let byRole = data["measured_by_role"]!.arrayValue!
        XCTAssertEqual(byRole.reduce(0.0) { $0 + $1["measured_kld"]!.doubleValue! }, total, accuracy: total * 1e-12)
        XCTAssertEqual(data["file_types_missing"]?.arrayValue, [.string("Q2_K"), .string("IQ4_XS")])
        let html = try SensitivityPage.render(data)
        XCTAssertTrue(html.contains("Not priced (some tensor&#39;s type under them has no prediction in the file): Q2_K, IQ4_XS."))
        XCTAssertTrue(html.contains("golden/tiny/llama &lt;tiny&gt; &amp; &quot;test&quot;"))
        XCTAssertFalse(html.contains("<script"))
        // A prediction of 0 (a file type the base was quantized from) is drawn, on the log axis' floor.
        var types = data["file_types"]!.arrayValue!
        types.append(.object([("name", .string("Q4_1")), ("tensor_bytes", .int(1000)), ("bits_per_weight", .double(5)), ("predicted_kld", .double(0))]))
        let zero = try SensitivityPage.render(Self.replacing(data, "file_types", .array(types)))
        XCTAssertTrue(zero.contains("data-label=\"Q4_1\" data-key=\"file_types.3.predicted_kld\" data-value=\"0.0\""))
        XCTAssertTrue(zero.contains("log scale"))
        XCTAssertTrue(zero.contains("A prediction of 0 is drawn on the axis&#39; floor."))
        let nan = Self.replacing(data, "check", .object([("spearman", .string("nan")), ("median_ratio", .double(1)), ("pairs", .array([]))]))
        XCTAssertTrue(try SensitivityPage.render(nan).contains("<span class=\"num\" data-key=\"check.spearman\" data-value=\"null\">–</span>"))
    }

    /// Bad report options fail before any evaluation: flags without --report or with --shard
    /// (usage, 64), an existing folder without --force and a file that is not a sensitivity
    /// file (2, naming the path); nothing is left behind.
    func testDriftReportOptionErrors() throws {
        let dir = TestSupport.tempDir("report-errors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = dir + "/t.txt"
        try "hello world".write(toFile: text, atomically: true, encoding: .utf8)
        let base = ["drift", "--base", ReportFixtures.llama, "--candidate", ReportFixtures.llama, "--text", text, "--ctx", "8"]
        let noReport = try TestSupport.smelt(base + ["--sensitivity", text])
        XCTAssertEqual(noReport.status, 64, noReport.stderr)
        XCTAssertTrue(noReport.stderr.contains("give --report DIR too"), noReport.stderr)
        let shard = try TestSupport.smelt(base + ["--report", dir + "/r", "--shard", "0/2", "--partial", dir + "/p.gguf"])
        XCTAssertEqual(shard.status, 64, shard.stderr)
        try FileManager.default.createDirectory(atPath: dir + "/exists", withIntermediateDirectories: true)
        let exists = try TestSupport.smelt(base + ["--report", dir + "/exists"])
        XCTAssertEqual(exists.status, 2, exists.stderr)
        XCTAssertTrue(exists.stderr.contains("\(dir)/exists already exists (use --force to replace it)"), exists.stderr)
        let notSensitivity = try TestSupport.smelt(base + ["--report", dir + "/r", "--sensitivity", text])
        XCTAssertEqual(notSensitivity.status, 2, notSensitivity.stderr)
        XCTAssertTrue(notSensitivity.stderr.contains("\(text): not a sensitivity file"), notSensitivity.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["exists", "t.txt"])
    }

    /// A drift run in 3 shards merged with `smelt merge --report` writes the report one run
    /// writes: report.json equal but for the elapsed seconds and the system block.
    func testMergedShardsWriteOneRunsReport() throws {
        let dir = TestSupport.tempDir("report-merge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = dir + "/t.txt"
        try String(try String(contentsOfFile: TestSupport.wikiText, encoding: .utf8).prefix(2500)).write(toFile: text, atomically: true, encoding: .utf8)
        let f16 = dir + "/f16.gguf"
        XCTAssertEqual(try TestSupport.smelt(["convert", ReportFixtures.llama, f16, "--dtype", "f16"]).status, 0)
        let args = ["drift", "--base", ReportFixtures.llama, "--candidate", f16, "--text", text, "--ctx", "32", "--threads", "1"]
        let one = try TestSupport.smelt(args + ["--report", dir + "/one"])
        XCTAssertEqual(one.status, 0, one.stderr)
        var partials: [String] = []
        for k in 0..<3 {
            let p = "\(dir)/p\(k).gguf"
            let r = try TestSupport.smelt(args + ["--shard", "\(k)/3", "--partial", p])
            XCTAssertEqual(r.status, 0, r.stderr)
            partials.append(p)
        }
        let m = try TestSupport.smelt(["merge"] + partials + ["--output", dir + "/merged.json", "--report", dir + "/merged"])
        XCTAssertEqual(m.status, 0, m.stderr)
        func load(_ path: String) throws -> JSONValue {
            let v = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path + "/report.json"))))
            return .object((v.objectEntries ?? []).filter { !["seconds", "system"].contains($0.0) })
        }
        let a = try load(dir + "/one"), b = try load(dir + "/merged")
        XCTAssertGreaterThan(a["per_chunk"]?.arrayValue?.count ?? 0, 3)
        XCTAssertEqual(a, b)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/merged/index.html"))
        let ppl = try TestSupport.smelt(["perplexity", ReportFixtures.llama, "--text", text, "--ctx", "32", "--shard", "0/1", "--partial", dir + "/ppl.gguf"])
        XCTAssertEqual(ppl.status, 0, ppl.stderr)
        let notDrift = try TestSupport.smelt(["merge", dir + "/ppl.gguf", "--output", dir + "/x.json", "--report", dir + "/x"])
        XCTAssertEqual(notDrift.status, 2, notDrift.stderr)
        XCTAssertTrue(notDrift.stderr.contains("--report is for drift and sensitivity partials"), notDrift.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.json"))
    }

    // MARK: - helpers

    static func positions(_ n: Int, kld: Double) -> [Drift.Position] {
        (0..<n).map { i in Drift.Position(kld: kld, deltaP: 0, same: i % 2 == 0, nllBase: 1, nllCandidate: 1) }
    }

    static func replacing(_ object: JSONValue, _ key: String, _ value: JSONValue) -> JSONValue {
        .object((object.objectEntries ?? []).map { $0.0 == key ? (key, value) : $0 })
    }

    /// The fields the drift page reads, from a report (what `smelt drift --report` writes, without the breakdown).
    static func minimalJSON(_ r: Drift.Report) -> JSONValue {
        let h = r.kldHistogram()
        return .object([
            ("base", .object([("model", .string("b")), ("ppl", .double(r.base.ppl)), ("ppl_stderr", .double(r.base.pplError))])),
            ("candidate", .object([("model", .string("c")), ("ppl", .double(r.candidate.ppl)), ("ppl_stderr", .double(r.candidate.pplError))])),
            ("ctx", .int(r.ctx)), ("chunks", .int(r.chunks)), ("positions", .int(r.positions)),
            ("ppl_ratio", .double(r.pplRatio)), ("ppl_difference", .double(r.pplDifference)),
            ("kld", .object(["mean", "stderr", "median", "p90", "p95", "p99", "p99_9", "max"].map { ($0, .double(0.01)) })),
            ("rms_delta_p", .double(r.rmsDeltaP)), ("top1_agreement", .double(r.top1Agreement)),
            ("top1_agreement_stderr", .double(r.top1Error)), ("gates", .array([])), ("passed", .bool(true)),
            ("kld_histogram", .object([("floor", .double(h.floor)), ("below", .int(h.below)), ("bins", .array(h.bins.map {
                .object([("low", .double($0.low)), ("high", .double($0.high)), ("count", .int($0.count))])
            }))])),
            ("per_chunk", .array(r.perChunk.map {
                .object([("positions", .int($0.positions)), ("ppl_base", .double($0.pplBase)), ("ppl_candidate", .double($0.pplCandidate)),
                         ("kld_mean", .double($0.kldMean)), ("top1_agreement", .double($0.top1Agreement))])
            })),
        ])
    }
}
