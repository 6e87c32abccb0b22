import ArgumentParser
import Evaluator
import Calibration
import Formats
import Reports
import Foundation
import TensorGraph

struct DriftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Compare a candidate model with its base on the same text, and gate on the result.",
        discussion: """
            Both models run over the same chunks of the text (interleaved chunk by chunk, so no logits \
            file is needed); every scored position (the second half of each chunk, as in \
            `smelt perplexity`) compares the candidate's distribution with the base's. Reports both \
            PPLs, their ratio and difference, the KL divergence KL(base ‖ candidate) (mean ± stderr, \
            median, 90/95/99/99.9th percentiles, max), the RMS of Δp (the change in the probability \
            of the correct token) and the share of positions whose top-1 token agrees.

            Gates: with --max-ppl-ratio, --max-kld (on the mean) or --min-top1 (a percentage), a \
            failed gate is printed with the margin and the exit status is 1. Other errors exit 2. \
            --json FILE writes the full report (schema in the README).

            --report DIR writes DIR/index.html, a self-contained page (inline SVG charts, no script, \
            nothing fetched) with the gates, the summary, the KLD distribution, per-chunk PPL of both \
            models, KLD and top-1 agreement, and the candidate's bytes per layer and per tensor role \
            (with the predicted drift per layer and role when --sensitivity gives one, and the type a \
            --recipe gives each tensor), and DIR/report.json with every figure the page shows.
            """
    )

    @Option(help: "The base (reference) model.") var base: String
    @Option(help: "The candidate model (quantized, converted, …).") var candidate: String
    @OptionGroup var eval: EvalOptions
    @Option(help: "Fail (exit 1) when candidate PPL / base PPL exceeds this.") var maxPplRatio: Double?
    @Option(help: "Fail (exit 1) when the mean KL divergence exceeds this.") var maxKld: Double?
    @Option(help: "Fail (exit 1) when top-1 agreement (percent) is below this.") var minTop1: Double?
    @Option(help: "Write the full report as JSON to this file.") var json: String?
    @OptionGroup var reportOptions: DriftReportOptions
    @Flag(help: "Replace an existing --json report or --report folder.") var force = false
    @OptionGroup var shard: ShardOptions

    /// The gates' limits (the evaluation options are checked by EvalOptions.validate()).
    func validate() throws {
        try Usage.number("--max-ppl-ratio", maxPplRatio, in: 0...Double.greatestFiniteMagnitude, what: "a positive ratio")
        if maxPplRatio == 0 { throw ValidationError("--max-ppl-ratio must be a positive ratio, not 0") }
        try Usage.number("--max-kld", maxKld, in: 0...Double.greatestFiniteMagnitude, what: "0 or more (nats)")
        try Usage.number("--min-top1", minTop1, in: 0...100, what: "a percentage from 0 to 100")
        if reportOptions.reportDir != nil && shard.shard != nil {
            throw ValidationError("--report with --shard: a shard writes a partial file; report on a whole run")
        }
    }

    func run() throws {
        var gateFailed = false
        try SmeltCLI.run {
            if let json, !force && Paths.exists(json) { throw OutputError.exists(path: json) }
            // Read before the long evaluation, so a bad file fails at once.
            let reportInputs = try reportOptions.prepare(force: force)
            let b = try eval.load(base)
            let c = try eval.load(candidate)
            let tokens = try eval.tokens(for: b.graph)
            if let s = try shard.resolved() {
                let bos = eval.bosToken(b.graph)
                let chunks = try Perplexity.chunks(of: tokens, ctx: eval.ctx, limit: eval.chunks, bos: bos)
                let range = try ShardOptions.range(s, total: chunks.count)
                let progress = Terminal.ChunkProgress(label: "drift \(s.k)/\(s.n)")
                let t0 = Date()
                let compared = try Drift.compare(base: b.model, candidate: c.model, chunks: chunks, range: range) { ci in
                    let done = ci - range.lowerBound + 1
                    progress.update(done: done, total: range.count, tokensPerSecond: Double(done * eval.ctx * 2) / Date().timeIntervalSince(t0))
                }
                progress.finish()
                let all = Array(compared.joined())
                let partial = PartialFile(
                    kind: .drift, shard: s.k, shards: s.n, chunks: range, totalChunks: chunks.count, ctx: eval.ctx,
                    fingerprint: try Fingerprint.parts(
                        kind: "drift", models: [("base", base), ("candidate", candidate)], tokens: tokens, textPath: eval.text,
                        ctx: eval.ctx, chunks: chunks.count, bos: bos, eval: eval),
                    paths: [base, candidate], text: eval.text ?? "", seconds: Date().timeIntervalSince(t0), threads: eval.threads,
                    tensors: [
                        ("chunk_positions", compared.map { Double($0.count) }), ("kld", all.map(\.kld)), ("delta_p", all.map(\.deltaP)),
                        ("top1_same", all.map { $0.same ? 1 : 0 }), ("nll_base", all.map(\.nllBase)),
                        ("nll_candidate", all.map(\.nllCandidate)),
                    ])
                try partial.write(to: shard.partial!)
                print(partial.summary(written: shard.partial!))
                return
            }
            let progress = Terminal.ChunkProgress(label: "drift")
            let report = try Drift.run(
                base: b.model, candidate: c.model, tokens: tokens, ctx: eval.ctx, chunks: eval.chunks,
                bos: eval.bosToken(b.graph)
            ) { i, n, tps in progress.update(done: i + 1, total: n, tokensPerSecond: tps) }
            progress.finish()
            let gates = DriftGates(maxPPLRatio: maxPplRatio, maxKLD: maxKld, minTop1: minTop1)
            gateFailed = try Self.emit(report, base: base, candidate: candidate, gates: gates, json: json, force: force, threads: eval.threads)
            try reportInputs?.write(report, base: base, candidate: candidate, gates: gates.check(report), candidateGraph: c.graph,
                                    threads: eval.threads, force: force)
        }
        if gateFailed { throw ExitCode(1) }
    }
}

extension DriftCommand {
    /// Prints the report, writes its JSON (atomically) when asked, and says whether a gate failed.
    static func emit(
        _ report: Drift.Report, base: String, candidate: String, gates: DriftGates, json: String?, force: Bool, threads: Int
    ) throws -> Bool {
        let outcomes = gates.check(report)
        print(DriftText.render(report, base: base, candidate: candidate, gates: outcomes))
        if let json {
            let out = try AtomicOutput(path: json, replace: force)
            var fields = DriftText.json(report, base: base, candidate: candidate, gates: outcomes).objectEntries ?? []
            fields.append(("system", SystemReport.json(threads: threads)))
            try out.write(Array((JSONWriter.write(.object(fields), indent: 2) + "\n").utf8))
            try out.commit()
        }
        return outcomes.contains { !$0.passed }
    }
}

/// The gates a drift report can be held to.
struct DriftGates {
    var maxPPLRatio: Double?
    var maxKLD: Double?
    var minTop1: Double?

    struct Outcome {
        let name: String
        let limit: Double
        let value: Double
        let passed: Bool
        let message: String
    }

    func check(_ r: Drift.Report) -> [Outcome] {
        var out: [Outcome] = []
        if let limit = maxPPLRatio {
            let v = r.pplRatio
            out.append(Outcome(name: "max-ppl-ratio", limit: limit, value: v, passed: v <= limit,
                               message: String(format: "PPL ratio %.4f %@ limit %.4f (%@%.4f)", v, v <= limit ? "within" : "exceeds", limit, v <= limit ? "margin " : "over by ", abs(v - limit))))
        }
        if let limit = maxKLD {
            let v = r.kldMean
            out.append(Outcome(name: "max-kld", limit: limit, value: v, passed: v <= limit,
                               message: String(format: "mean KLD %.6f %@ limit %.6f (%@%.6f)", v, v <= limit ? "within" : "exceeds", limit, v <= limit ? "margin " : "over by ", abs(v - limit))))
        }
        if let limit = minTop1 {
            let v = r.top1Agreement * 100
            out.append(Outcome(name: "min-top1", limit: limit, value: v, passed: v >= limit,
                               message: String(format: "top-1 agreement %.3f%% %@ minimum %.3f%% (%@%.3f points)", v, v >= limit ? "meets" : "is below", limit, v >= limit ? "margin " : "short by ", abs(v - limit))))
        }
        return out
    }
}

enum DriftText {
    static func render(_ r: Drift.Report, base: String, candidate: String, gates: [DriftGates.Outcome]) -> String {
        var s = ""
        func line(_ x: String) { s += x + "\n" }
        line("base:       \(base)")
        line("candidate:  \(candidate)")
        line("evaluated:  \(r.chunks) chunks of \(r.ctx) tokens, \(r.positions) positions scored, \(String(format: "%.1f", r.seconds)) s")
        line(String(format: "PPL base:       %.4f ± %.5f", r.base.ppl, r.base.pplError))
        line(String(format: "PPL candidate:  %.4f ± %.5f", r.candidate.ppl, r.candidate.pplError))
        line(String(format: "PPL ratio:      %.5f   difference %+.4f", r.pplRatio, r.pplDifference))
        line(String(format: "KLD mean:       %.6f ± %.6f", r.kldMean, r.kldError))
        line(String(format: "KLD median:     %.6f", r.kldMedian))
        line(String(format: "KLD p90/p95:    %.6f / %.6f", r.kldPercentile(90), r.kldPercentile(95)))
        line(String(format: "KLD p99/p99.9:  %.6f / %.6f", r.kldPercentile(99), r.kldPercentile(99.9)))
        line(String(format: "KLD max:        %.6f", r.kldMax))
        line(String(format: "RMS Δp:         %.4f %%", r.rmsDeltaP * 100))
        line(String(format: "top-1 agree:    %.3f ± %.3f %%", r.top1Agreement * 100, r.top1Error * 100))
        for g in gates { line((g.passed ? "gate passed: " : "GATE FAILED: ") + "--\(g.name): " + g.message) }
        return String(s.dropLast())
    }

    static func json(_ r: Drift.Report, base: String, candidate: String, gates: [DriftGates.Outcome]) -> JSONValue {
        .object([
            ("base", .object([("model", .string(base)), ("ppl", .double(r.base.ppl)), ("ppl_stderr", .double(r.base.pplError))])),
            ("candidate", .object([("model", .string(candidate)), ("ppl", .double(r.candidate.ppl)), ("ppl_stderr", .double(r.candidate.pplError))])),
            ("ctx", .int(r.ctx)), ("chunks", .int(r.chunks)), ("positions", .int(r.positions)),
            ("ppl_ratio", .double(r.pplRatio)), ("ppl_difference", .double(r.pplDifference)),
            ("kld", .object([
                ("mean", .double(r.kldMean)), ("stderr", .double(r.kldError)), ("median", .double(r.kldMedian)),
                ("p90", .double(r.kldPercentile(90))), ("p95", .double(r.kldPercentile(95))),
                ("p99", .double(r.kldPercentile(99))), ("p99_9", .double(r.kldPercentile(99.9))), ("max", .double(r.kldMax)),
            ])),
            ("rms_delta_p", .double(r.rmsDeltaP)),
            ("top1_agreement", .double(r.top1Agreement)), ("top1_agreement_stderr", .double(r.top1Error)),
            ("seconds", .double(r.seconds)),
            ("gates", .array(gates.map { g in
                .object([("gate", .string(g.name)), ("limit", .double(g.limit)), ("value", .double(g.value)),
                         ("passed", .bool(g.passed)), ("message", .string(g.message))])
            })),
            ("passed", .bool(gates.allSatisfy(\.passed))),
        ])
    }
}
