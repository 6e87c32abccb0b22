import Calibration
import Formats
import Foundation
import Reports
import TensorGraph
import TestSupport
import XCTest

/// The report pages in a real browser (Chromium from Debian, headless): each page is loaded with
/// a probe script appended (the page's Content-Security-Policy kept, inline scripts allowed for
/// the probe only) that records script errors and policy violations and measures every chart
/// after layout; `--dump-dom` gives the DOM back, and every figure and chart mark it shows
/// (`data-key` / `data-value`) must equal the value at that path in the report.json beside the
/// page, with the text shown being that value rounded. Chromium missing: a failure under
/// CI=true, a loud skip elsewhere (`make test` installs it).
final class BrowserTests: XCTestCase {
    nonisolated(unsafe) static var dir = ""

    override class func setUp() { dir = TestSupport.tempDir("reports") }
    /// KEEP_REPORTS=1 keeps the pages made here (to look at them).
    override class func tearDown() {
        if ProcessInfo.processInfo.environment["KEEP_REPORTS"] == nil { try? FileManager.default.removeItem(atPath: dir) } else { print("reports kept in \(dir)") }
    }

    /// `smelt drift --report` on the tiny Llama against its Q4_0, with a sensitivity file and a recipe.
    func testDriftReportRendersTheJSONsNumbers() throws {
        let chromium = try TestSupport.requireExecutable("chromium", install: "apt-get install chromium (make test installs it)")
        let d = Self.dir + "/drift"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let text = d + "/text.txt"
        let corpus = try String(contentsOfFile: TestSupport.wikiText, encoding: .utf8)
        try String(corpus.prefix(3000)).write(toFile: text, atomically: true, encoding: .utf8)
        let q4 = d + "/llama-q4_0.gguf"
        let q = try TestSupport.smelt(["quantize", ReportFixtures.llama, q4, "--type", "q4_0"])
        XCTAssertEqual(q.status, 0, q.stderr)
        let graph = try ModelQuantizer.open(ReportFixtures.llama)
        let sens = d + "/sensitivity.json"
        try JSONWriter.write(ReportFixtures.sensitivity(graph: graph), indent: 1).write(toFile: sens, atomically: true, encoding: .utf8)
        let recipe = d + "/recipe.json"
        try #"{"rules": [{"pattern": "blk.0.attn_v.weight", "type": "q8_0"}, {"pattern": "blk.*.ffn_*", "dims": 2, "type": "q4_0"}]}"#
            .write(toFile: recipe, atomically: true, encoding: .utf8)
        let report = d + "/report"
        let r = try TestSupport.smelt([
            "drift", "--base", ReportFixtures.llama, "--candidate", q4, "--text", text, "--ctx", "32", "--max-kld", "1",
            "--min-top1", "99.9", "--report", report, "--sensitivity", sens, "--recipe", recipe,
        ])
        XCTAssertEqual(r.status, 1, "the top-1 gate fails on purpose: " + r.stdout + r.stderr)
        let json = try Self.readJSON(report + "/report.json")
        let dom = try Self.load(report + "/index.html", chromium: chromium)
        let checked = try Self.checkFigures(dom, against: json)
        let chunks = json["per_chunk"]!.arrayValue!.count
        XCTAssertGreaterThan(chunks, 3)
        XCTAssertEqual(Self.keys(in: dom, matching: #"per_chunk\.\d+\.ppl_base"#).count, 2 * chunks, "a line dot and a table cell per chunk")
        XCTAssertEqual(Self.keys(in: dom, matching: #"kld_histogram\.bins\.\d+\.count"#).count, json["kld_histogram"]!["bins"]!.arrayValue!.count)
        XCTAssertEqual(Self.keys(in: dom, matching: #"breakdown\.layers\.\d+\.predicted_kld"#).count, 2 * 3, "blk.0, blk.1, other: bar and cell")
        XCTAssertEqual(Self.keys(in: dom, matching: #"breakdown\.roles\.\d+\.mib"#).count, json["breakdown"]!["roles"]!.arrayValue!.count)
        XCTAssertEqual(json["breakdown"]?["recipe_mismatches"]?.intValue, 1, "blk.0.attn_v is Q4_0, the recipe says Q8_0")
        // Predicted drift per layer is the sensitivity file's Q4_0 predictions summed (the candidate is all Q4_0).
        let s = try Self.readJSON(sens)
        var blk0 = 0.0
        for t in s["tensors"]!.arrayValue! where t["name"]!.stringValue!.hasPrefix("blk.0.") {
            blk0 += t["types"]!.arrayValue!.first { $0["type"]?.stringValue == "q4_0" }!["predicted_kld"]!.doubleValue!
        }
        XCTAssertEqual(json["breakdown"]!["layers"]!.arrayValue![0]["predicted_kld"]!.doubleValue!, blk0, accuracy: blk0 * 1e-12)
        XCTAssertEqual(dom.components(separatedBy: "data-passed=\"false\"").count - 1, 2, "the failed gate's badge and the verdict")
        XCTAssertGreaterThan(checked, 100)
    }

    /// The whole path on the tiny Llama: `smelt sensitivity`, `smelt quantize --sensitivity
    /// --target-bpw --write-recipe`, then `smelt drift --report --sensitivity --recipe` on what
    /// it wrote: every tensor has the recipe's type, and the report's predicted drift of the mix
    /// is the one quantize printed. (No browser needed.)
    func testBudgetedMixReportAgreesWithQuantize() throws {
        let d = Self.dir + "/budget"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let s = try Self.sensitivity()
        let mix = d + "/mix.json", out = d + "/mix.gguf"
        let q = try TestSupport.smelt(["quantize", ReportFixtures.llama, out, "--sensitivity", s.file, "--target-bpw", "6",
                                       "--write-recipe", mix, "--json"])
        XCTAssertEqual(q.status, 0, q.stderr)
        let quantized = try JSONParser.parse(q.stdout)
        let predicted = try XCTUnwrap(quantized["allocation"]?["predicted_kld"]?.doubleValue)
        let text = d + "/text.txt"
        try String(try String(contentsOfFile: TestSupport.wikiText, encoding: .utf8).prefix(2000)).write(toFile: text, atomically: true, encoding: .utf8)
        let r = try TestSupport.smelt(["drift", "--base", ReportFixtures.llama, "--candidate", out, "--text", text, "--ctx", "32",
                                       "--report", d + "/report", "--sensitivity", s.file, "--recipe", mix])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try Self.readJSON(d + "/report/report.json")
        let b = try XCTUnwrap(json["breakdown"])
        XCTAssertEqual(b["recipe_mismatches"]?.intValue, 0)
        XCTAssertEqual(b["unpredicted_tensors"]?.arrayValue, [])
        XCTAssertEqual(b["predicted_kld_total"]!.doubleValue!, predicted, accuracy: predicted * 1e-9)
        let byRole = b["roles"]!.arrayValue!.reduce(0.0) { $0 + $1["predicted_kld"]!.doubleValue! }
        XCTAssertEqual(byRole, predicted, accuracy: predicted * 1e-9)
        XCTAssertGreaterThan(json["kld"]!["mean"]!.doubleValue!, 0)
    }

    /// `smelt sensitivity` in 2 shards merged with `smelt merge --report`: the report's data is
    /// the merged sensitivity file plus what the page adds. (No browser needed.)
    func testMergedSensitivityShardsWriteTheReport() throws {
        let s = try Self.sensitivity()
        let d = Self.dir + "/sensitivity-shards"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let text = Self.dir + "/sensitivity/text.txt", imatrix = Self.dir + "/sensitivity/i.gguf"
        var partials: [String] = []
        for k in 0..<2 {
            let p = "\(d)/p\(k).gguf"
            let r = try TestSupport.smelt([
                "sensitivity", ReportFixtures.llama, "--text", text, "--ctx", "32", "--gain-chunks", "1", "--check-chunks", "1",
                "--check-pairs", "6", "--threads", "2", "--imatrix", imatrix, "--shard", "\(k)/2", "--partial", p,
            ])
            XCTAssertEqual(r.status, 0, r.stderr)
            partials.append(p)
        }
        let m = try TestSupport.smelt(["merge"] + partials + ["--output", d + "/s.json", "--report", d + "/report"])
        XCTAssertEqual(m.status, 0, m.stderr)
        let merged = try Self.readJSON(d + "/s.json"), report = try Self.readJSON(d + "/report/report.json")
        let added = ["measured_by_layer", "measured_by_role", "file_types_missing"]
        XCTAssertEqual(JSONValue.object((report.objectEntries ?? []).filter { !added.contains($0.0) }), merged)
        XCTAssertEqual(merged["tensors"]?.arrayValue?.count, try Self.readJSON(s.file)["tensors"]?.arrayValue?.count)
        XCTAssertTrue(FileManager.default.fileExists(atPath: d + "/report/index.html"))
    }

    /// One `smelt sensitivity --report` run on the tiny Llama for the tests here (calibration text).
    nonisolated(unsafe) static var sensitivityRun: (file: String, report: String)?
    static func sensitivity() throws -> (file: String, report: String) {
        if let s = sensitivityRun { return s }
        let d = dir + "/sensitivity"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let text = d + "/text.txt"
        let corpus = try String(contentsOfFile: TestSupport.calibrationText, encoding: .utf8)
        try String(corpus.prefix(3000)).write(toFile: text, atomically: true, encoding: .utf8)
        let r = try TestSupport.smelt([
            "sensitivity", ReportFixtures.llama, "--text", text, "--ctx", "32", "--chunks", "4", "--gain-chunks", "1",
            "--check-chunks", "1", "--check-pairs", "6", "--threads", "2", "--output", d + "/s.json", "--report", d + "/report",
            "--write-imatrix", d + "/i.gguf",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        sensitivityRun = (d + "/s.json", d + "/report")
        return sensitivityRun!
    }

    /// `smelt sensitivity --report` on the tiny Llama: its file types (priced by the command from
    /// formats/recipes/) are the points of the chart, with the sensitivity file's values.
    func testSensitivityReportRendersTheJSONsNumbers() throws {
        let chromium = try TestSupport.requireExecutable("chromium", install: "apt-get install chromium (make test installs it)")
        let run = try Self.sensitivity()
        let json = try Self.readJSON(run.report + "/report.json")
        let s = try Self.readJSON(run.file)
        XCTAssertEqual(json["file_types"], s["file_types"], "the report's points are the sensitivity file's")
        XCTAssertEqual(json["curve"], s["curve"])
        let dom = try Self.load(run.report + "/index.html", chromium: chromium)
        XCTAssertGreaterThan(try Self.checkFigures(dom, against: json), 50)
        let types = json["file_types"]!.arrayValue!
        XCTAssertGreaterThanOrEqual(types.count, 10, "most of llama.cpp's file types are priced on the tiny Llama")
        // Each file type is a labelled point on the curve chart, with its size and drift.
        for (i, t) in types.enumerated() {
            let name = t["name"]!.stringValue!
            XCTAssertTrue(dom.contains("data-label=\"\(name)\" data-key=\"file_types.\(i).predicted_kld\""), name)
        }
        XCTAssertEqual(Self.keys(in: dom, matching: #"curve\.\d+\.predicted_kld"#).count, 2 * json["curve"]!.arrayValue!.count)
        XCTAssertEqual(Self.keys(in: dom, matching: #"measured_by_layer\.\d+\.measured_kld"#).count, 3, "blk.0, blk.1, other")
    }

    // MARK: - the browser

    /// The page's DOM after Chromium loaded and laid it out, with the probe's findings checked:
    /// no script error, no policy violation (nothing fetched), every chart drawn with a size and
    /// every chart mark measurable.
    static func load(_ page: String, chromium: String) throws -> String {
        let html = try String(contentsOfFile: page, encoding: .utf8)
        XCTAssertFalse(html.contains("<script"), "report pages carry no script")
        let csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        XCTAssertTrue(html.contains(csp), "the page forbids every fetch")
        let probe = """
            <script>
            (function () {
              const out = {errors: [], violations: [], svgs: [], marks: 0, unmeasured: 0};
              window.addEventListener('error', e => out.errors.push(String(e.message)));
              document.addEventListener('securitypolicyviolation', e => out.violations.push(e.violatedDirective + ' ' + e.blockedURI));
              function report() {
                for (const svg of document.querySelectorAll('svg')) {
                  const r = svg.getBoundingClientRect();
                  out.svgs.push({id: svg.id, width: r.width, height: r.height, children: svg.childElementCount});
                }
                for (const m of document.querySelectorAll('svg [data-key]')) {
                  out.marks++;
                  const b = m.getBBox();
                  if (!(b.width > 0 || b.height > 0 || m.getAttribute('height') === '0.0')) out.unmeasured++;
                }
                const pre = document.createElement('pre');
                pre.id = 'probe';
                pre.textContent = JSON.stringify(out);
                document.body.appendChild(pre);
              }
              if (document.readyState === 'complete') report(); else window.addEventListener('load', report);
            })();
            </script>
            """
        let probed = html.replacingOccurrences(of: csp, with: csp + "; script-src 'unsafe-inline'")
            .replacingOccurrences(of: "</body>", with: probe + "\n</body>")
        let probePath = page.replacingOccurrences(of: "index.html", with: "probe.html")
        try probed.write(toFile: probePath, atomically: true, encoding: .utf8)
        let profile = TestSupport.tempDir("chromium-profile")
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let t0 = Date()
        let r = try TestSupport.run(chromium, [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--user-data-dir=\(profile)",
            "--window-size=1100,900", "--dump-dom", "file://" + probePath,
        ])
        let seconds = Date().timeIntervalSince(t0)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertLessThan(seconds, 60, "chromium took \(seconds) s")
        let dom = r.stdout
        guard let start = dom.range(of: "<pre id=\"probe\">"), let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex) else {
            XCTFail("the probe did not run (no <pre id=probe> in the DOM): \(r.stderr.suffix(2000))")
            return dom
        }
        let found = String(dom[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        let probeResult = try JSONParser.parse(found)
        XCTAssertEqual(probeResult["errors"]?.arrayValue ?? [.null], [], "script errors: \(found)")
        XCTAssertEqual(probeResult["violations"]?.arrayValue ?? [.null], [], "the page tried to fetch: \(found)")
        let svgs = probeResult["svgs"]?.arrayValue ?? []
        XCTAssertGreaterThanOrEqual(svgs.count, 3, found)
        for s in svgs {
            XCTAssertGreaterThan(s["width"]?.doubleValue ?? 0, 100, "chart \(s) not drawn")
            XCTAssertGreaterThan(s["height"]?.doubleValue ?? 0, 50, "chart \(s) not drawn")
            XCTAssertGreaterThan(s["children"]?.intValue ?? 0, 5, "chart \(s) is empty")
        }
        XCTAssertGreaterThan(probeResult["marks"]?.intValue ?? 0, 10, found)
        XCTAssertEqual(probeResult["unmeasured"]?.intValue, 0, "chart marks without a size: \(found)")
        return dom
    }

    /// Every `data-key`/`data-value` in the DOM equals the JSON's value at that path, and every
    /// figure's text is that value as rounded for display. Returns how many were checked.
    static func checkFigures(_ dom: String, against json: JSONValue) throws -> Int {
        let data = ReportData(json)
        let pairs = try NSRegularExpression(pattern: #"data-(?:x-)?key="([^"]*)" data-(?:x-)?value="([^"]*)""#)
        let ns = dom as NSString
        var checked = 0
        for m in pairs.matches(in: dom, range: NSRange(location: 0, length: ns.length)) {
            let key = ns.substring(with: m.range(at: 1)), shown = ns.substring(with: m.range(at: 2))
            guard let v = data.value(key) else { XCTFail("data-key \(key) is not in report.json"); continue }
            if v.isNull { XCTAssertEqual(shown, "null", key) } else {
                XCTAssertEqual(Double(shown), v.doubleValue, "\(key): page \(shown), JSON \(v)")
            }
            checked += 1
        }
        // The text of each figure: the value rounded to the digits shown.
        let spans = try NSRegularExpression(pattern: #"<span class="num" data-key="([^"]*)" data-value="([^"]*)">([^<]*)</span>"#)
        var texts = 0
        for m in spans.matches(in: dom, range: NSRange(location: 0, length: ns.length)) {
            let key = ns.substring(with: m.range(at: 1))
            let value = Double(ns.substring(with: m.range(at: 2)))
            let text = ns.substring(with: m.range(at: 3))
            texts += 1
            guard let value else { XCTAssertEqual(text, "–", key); continue }
            guard let shown = Double(text) else { XCTFail("\(key): the text '\(text)' is not a number"); continue }
            // Half a unit of the last digit shown.
            let mantissa = text.split(separator: "e").first.map(String.init) ?? text
            let decimals = mantissa.split(separator: ".").dropFirst().first?.count ?? 0
            let exponent = text.contains("e") ? Double(text.split(separator: "e")[1])! : 0
            let half = 0.5 * pow(10, exponent - Double(decimals)) * (1 + 1e-9)
            XCTAssertLessThanOrEqual(abs(shown - value), half, "\(key): shows \(text) for \(value)")
        }
        XCTAssertGreaterThan(texts, 10)
        return checked
    }

    static func keys(in dom: String, matching pattern: String) -> [String] {
        let re = try! NSRegularExpression(pattern: "data-key=\"(\(pattern))\"")
        let ns = dom as NSString
        return re.matches(in: dom, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) }
    }

    static func readJSON(_ path: String) throws -> JSONValue {
        try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }
}
