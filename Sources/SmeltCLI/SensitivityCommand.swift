import ArgumentParser
import Calibration
import Evaluator
import Formats
import Foundation
import TensorGraph

struct SensitivityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensitivity",
        abstract: "Estimate, per tensor and type, the drift (mean KLD) quantizing that tensor alone would cause.",
        discussion: """
            From calibration text only. The importance matrix is collected on the first --chunks \
            chunks (default 16) of --ctx tokens, or read with --imatrix. For every tensor the recipe \
            quantizes (formats/quant-recipe.json, plus --recipe/--keep) and every candidate type \
            (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K…Q6_K, IQ4_NL, IQ4_XS, F16; a type whose blocks do not \
            divide the rows is priced as its fallback), the tensor is rounded as `quantize --imatrix` \
            rounds it and its importance-weighted squared error is taken; a per-tensor gain, the \
            exact KLD of the model with only that tensor quantized to a reference type (Q4_K, or Q4_0 \
            where K blocks do not fit) on the first --gain-chunks chunks divided by that type's \
            error, turns errors into predicted KLD. --check-pairs random tensor/type pairs are then \
            measured exactly on the next --check-chunks chunks and compared with the prediction \
            (Spearman rank correlation). The result (formats/sensitivity.md) feeds \
            `smelt quantize --sensitivity S.json --target-bpw B`. --report DIR also writes DIR/index.html, \
            a self-contained page with the size-vs-predicted-drift curve and llama.cpp's file types \
            marked on it, and DIR/report.json with the figures it shows.

            --shard K/N --partial FILE measures shard K's contiguous share of the tensors (it needs \
            --imatrix: collect one first, e.g. with `smelt calibrate --shard` and `smelt merge`); \
            `smelt merge` joins the partials into the file one run writes (every field but seconds) \
            and, with --report DIR, writes the report.
            """
    )

    @Argument(help: "The model (any format smelt reads; the unquantized weights).") var model: String
    @OptionGroup var eval: EvalOptions
    @Option(help: "Where to write the sensitivity file (JSON).") var output: String?
    @Option(help: "Chunks of the text the exact per-tensor KLD (the gain) is measured on.") var gainChunks: Int = 2
    @Option(help: "Chunks after those the held-out check is measured on (0: no check).") var checkChunks: Int = 1
    @Option(help: "Tensor/type pairs the held-out check measures.") var checkPairs: Int = 32
    @Option(help: "An importance matrix to use instead of collecting one.") var imatrix: String?
    @Option(help: "Also write the collected importance matrix here (for quantize --imatrix).") var writeImatrix: String?
    @Option(help: "Keep tensors whose GGUF name matches this glob unquantized (F32); repeatable.") var keep: [String] = []
    @Option(help: "A recipe file whose rules come before the built-in recipe's.") var recipe: String?
    @Option(name: .customLong("report"), help: ArgumentHelp("Also write an HTML report (index.html, report.json) into this folder.", valueName: "DIR"))
    var reportDir: String?
    @Flag(help: "Replace existing outputs.") var force = false
    @Flag(help: "Print a JSON summary.") var json = false
    @OptionGroup var shard: ShardOptions

    func validate() throws {
        if shard.partial != nil {
            guard output == nil else { throw ValidationError("give --output or --partial, not both") }
            guard reportDir == nil else { throw ValidationError("--report with --shard: give --report to `smelt merge`") }
            guard imatrix != nil else {
                throw ValidationError("--shard needs --imatrix FILE (every shard must use the same one: collect it with `smelt calibrate --shard` and `smelt merge`)")
            }
        } else if output == nil {
            throw ValidationError("give --output FILE")
        }
        guard gainChunks >= 1 else { throw ValidationError("--gain-chunks must be at least 1") }
        guard checkChunks >= 0, checkPairs >= 0 else { throw ValidationError("--check-chunks and --check-pairs must not be negative") }
        if let c = eval.chunks, c < 1 { throw ValidationError("--chunks must be at least 1") }
    }

    func run() throws {
        try SmeltCLI.run {
            if let output, !force && Paths.exists(output) { throw OutputError.exists(path: output) }
            if let reportDir, !force && Paths.exists(reportDir) { throw OutputError.exists(path: reportDir) }
            var r = QuantRecipe.builtIn()
            if let path = recipe { r = r.overridden(by: try QuantRecipe.read(path)) }
            r = r.keeping(keep)
            if let s = try shard.resolved() { return try runShard(s, recipe: r) }
            let output = output!
            let (report, _, _) = try Self.measure(
                model: model, eval: eval, imatrixChunks: eval.chunks ?? 16, gainChunks: gainChunks, checkChunks: checkChunks,
                checkPairs: checkPairs, imatrix: imatrix, writeImatrix: writeImatrix, recipe: r, force: force)
            try report.write(to: output)
            if let reportDir {
                try SensitivityReportOutput.write(report, to: reportDir, force: force)
                FileHandle.standardError.write(Data("report: \(reportDir)/index.html\n".utf8))
            }
            if json {
                FileHandle.standardOutput.write(try report.json())
                print()
            } else {
                print(Self.summary(report, written: output))
            }
        }
    }

    static func summary(_ r: SensitivityReport, written: String) -> String {
        var lines = ["wrote \(written): \(r.tensors.count) tensors × \(r.candidates.count) types, "
            + String(format: "%.1f s on %d threads", r.seconds, r.threads)]
        if let c = r.check {
            lines.append(String(format: "held-out check: %d pairs, Spearman %.3f, median predicted/measured %.2f",
                                c.pairs.count, c.spearman, c.medianRatio))
        }
        for p in r.fileTypes where ["Q3_K_M", "Q4_K_M", "Q6_K", "Q8_0"].contains(p.name ?? "") {
            lines.append(String(format: "%@ mix: %.3f bits per weight, predicted KLD %.4f", p.name!, p.bitsPerWeight, p.predictedKld))
        }
        return lines.joined(separator: "\n")
    }

    /// The whole measurement (also `quantize --calibration-text` without --sensitivity): the
    /// importance matrix (collected or read), the gains and the check. Returns the report and
    /// the importance matrix used.
    static func measure(
        model path: String, eval: EvalOptions, imatrixChunks: Int, gainChunks: Int, checkChunks: Int, checkPairs: Int,
        imatrix: String?, writeImatrix: String?, recipe: QuantRecipe, force: Bool, shard: (k: Int, n: Int)? = nil
    ) throws -> (SensitivityReport, ImportanceMatrix, SensitivityPartial?) {
        let started = Date()
        let loaded = try eval.load(path)
        let tokens = try eval.tokens(for: loaded.graph)
        let bos = eval.bosToken(loaded.graph)
        let all = try Perplexity.chunks(of: tokens, ctx: eval.ctx, limit: nil, bos: bos)
        guard all.count >= gainChunks + checkChunks else {
            throw EvaluatorError.badInput("\(eval.text ?? "the text") has \(all.count) chunks of \(eval.ctx) tokens: --gain-chunks \(gainChunks) and --check-chunks \(checkChunks) need \(gainChunks + checkChunks)")
        }
        let matrix: ImportanceMatrix
        if let imatrix {
            matrix = try ImportanceMatrix.read(imatrix)
        } else {
            let chunks = Array(all.prefix(imatrixChunks))
            let progress = Terminal.ChunkProgress(label: "sensitivity: importance")
            let t0 = Date()
            matrix = try Calibrate.importanceMatrix(model: loaded.model, chunks: chunks, dataset: eval.text ?? "") { done, total in
                progress.update(done: done, total: total, tokensPerSecond: Double(done * eval.ctx) / Date().timeIntervalSince(t0))
            }
            progress.finish()
            if let writeImatrix { try matrix.write(to: writeImatrix, replace: force) }
        }
        var options = Sensitivity.Options()
        options.threads = eval.threads
        options.checkPairs = checkChunks > 0 ? checkPairs : 0
        let freeCount = Sensitivity.split(loaded.graph, recipe: recipe).free.count
        var range = 0..<freeCount
        if let shard { range = try ShardOptions.range(shard, total: freeCount) }
        let bar = StepBar(label: shard.map { "sensitivity \($0.k)/\($0.n)" } ?? "sensitivity")
        let est = try Sensitivity.estimate(
            graph: loaded.graph, model: loaded.model, recipe: recipe, importance: matrix,
            gainChunks: Array(all.prefix(gainChunks)), checkChunks: Array(all[gainChunks..<(gainChunks + checkChunks)]),
            options: options, range: range) { phase, done, total in bar.update(phase: phase, done: done, total: total) }
        bar.finish()
        var report = SensitivityReport(
            model: path, architecture: loaded.graph.architecture,
            calibration: .init(text: eval.text ?? "", ctx: eval.ctx, chunks: imatrix == nil ? min(imatrixChunks, all.count) : matrix.chunkCount,
                               gainChunks: gainChunks, checkChunks: options.checkPairs > 0 ? checkChunks : 0, imatrix: imatrix),
            rounding: "imatrix", estimator: Sensitivity.estimatorSummary, candidates: options.candidates.map(\.rawValue),
            parameters: loaded.graph.parameterCount, tensors: est.tensors, fixed: est.fixed,
            check: Sensitivity.check(est.check.map(\.pair)), seconds: 0, threads: eval.threads)
        let plans = Sensitivity.fileTypePlans(graph: loaded.graph, recipe: recipe)
        if shard != nil {
            report.seconds = Date().timeIntervalSince(started)
            let partial = SensitivityPartial(
                report: report, tensors: range, totalTensors: freeCount, checkIndices: est.check.map(\.index), plans: plans)
            return (report, matrix, partial)
        }
        Self.finish(&report, plans: plans)
        report.seconds = Date().timeIntervalSince(started)
        return (report, matrix, nil)
    }

    /// The parts computed from all tensors: llama.cpp's file types and the frontier.
    static func finish(_ report: inout SensitivityReport, plans: [Sensitivity.FileTypePlan]) {
        report.fileTypes = Sensitivity.fileTypePoints(report, plans: plans)
        report.curve = Sensitivity.curve(report)
    }

    func runShard(_ s: (k: Int, n: Int), recipe r: QuantRecipe) throws {
        let started = Date()
        let (_, _, partial) = try Self.measure(
            model: model, eval: eval, imatrixChunks: eval.chunks ?? 16, gainChunks: gainChunks, checkChunks: checkChunks,
            checkPairs: checkPairs, imatrix: imatrix, writeImatrix: nil, recipe: r, force: force, shard: s)
        let p = partial!
        let loaded = try ModelQuantizer.open(model)
        let tokens = try eval.tokens(for: loaded)
        var fingerprint = try Fingerprint.parts(
            kind: "sensitivity", models: [("model", model)], tokens: tokens, textPath: eval.text, ctx: eval.ctx,
            chunks: gainChunks + checkChunks, bos: eval.bosToken(loaded), eval: eval)
        for (role, path) in [("imatrix", imatrix), ("recipe", recipe)] {
            guard let path else { continue }
            for (name, size, hash, how) in try Fingerprint.modelFiles(path) {
                fingerprint.append("\(role).file[\(name)]=\(size) bytes, xxh64-\(how) \(Fingerprint.hex(hash))")
            }
        }
        fingerprint += ["gain_chunks=\(gainChunks)", "check_chunks=\(checkChunks)", "check_pairs=\(checkPairs)",
                        "keep=\(keep.joined(separator: ","))", "tensors=\(p.totalTensors)"]
        var file = PartialFile(
            kind: .sensitivity, shard: s.k, shards: s.n, chunks: p.tensors, totalChunks: p.totalTensors, ctx: eval.ctx,
            fingerprint: fingerprint, paths: [model], text: eval.text ?? "", seconds: Date().timeIntervalSince(started),
            threads: eval.threads, tensors: [])
        file.payload = String(decoding: try SensitivityPartial.encoder.encode(p), as: UTF8.self)
        try file.write(to: shard.partial!)
        print(file.summary(written: shard.partial!).replacingOccurrences(of: "chunks", with: "tensors"))
    }

    /// The sensitivity file of a whole run from its shards (checked by `ShardSet.check`).
    static func merge(_ set: [PartialFile], seconds: Double) throws -> SensitivityReport {
        var parts: [SensitivityPartial] = []
        for p in set {
            guard let payload = p.payload else { throw EvaluatorError.badInput("\(p.path): not a usable partial result: no sensitivity payload") }
            do { parts.append(try SensitivityPartial.decoder.decode(SensitivityPartial.self, from: Data(payload.utf8))) } catch {
                throw EvaluatorError.badInput("\(p.path): not a usable partial result: \(error)")
            }
        }
        var report = parts[0].report
        report.tensors = parts.flatMap(\.report.tensors)
        guard report.tensors.count == parts[0].totalTensors else {
            throw EvaluatorError.badInput("the partials hold \(report.tensors.count) tensors of \(parts[0].totalTensors)")
        }
        let pairs = parts.flatMap { zip($0.checkIndices, $0.report.check?.pairs ?? []) }.sorted { $0.0 < $1.0 }.map(\.1)
        report.check = Sensitivity.check(pairs)
        finish(&report, plans: parts[0].plans)
        report.seconds = seconds
        return report
    }
}

/// One shard's share of a sensitivity file: its tensors and check pairs (with their place in the
/// whole run's draw), and the file types' plans the merge prices.
struct SensitivityPartial: Codable {
    var report: SensitivityReport
    var tensors: Range<Int>
    var totalTensors: Int
    var checkIndices: [Int]
    var plans: [Sensitivity.FileTypePlan]
}

extension SensitivityPartial {
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }
    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
