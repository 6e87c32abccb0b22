import ArgumentParser
import Calibration
import Evaluator
import Formats
import Foundation
import TensorGraph

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the partial results of a sharded perplexity, drift, calibrate, quantize or sensitivity run into one run's result.",
        discussion: """
            Each PARTIAL is what `--shard K/N --partial FILE` wrote. They must all be shards of the \
            same run (same fingerprint: model files, text, ctx, chunking, threads, kernels, Smelt \
            version), every K from 0 to N-1 exactly once; otherwise nothing is written and the error \
            names the files. The numbers are added in the same order one run adds them, so the \
            result equals a single run's in every field but elapsed times (the sum of the shards') \
            and paths: perplexity writes the `perplexity --json` report to --output, drift prints \
            its report, writes the `drift --json` report to --output and applies the gates (exit 1 \
            when one fails), calibrate writes the importance-matrix GGUF, quantize the quantized GGUF, \
            sensitivity the sensitivity file. For drift and sensitivity, --report DIR also writes the \
            report folder `drift --report` / `sensitivity --report` writes.
            """
    )

    @Argument(help: "The partial files (any order).") var partials: [String]
    @Option(help: "Where to write the merged result (JSON report, or the imatrix GGUF for calibrate).") var output: String
    @Option(help: "drift: fail (exit 1) when candidate PPL / base PPL exceeds this.") var maxPplRatio: Double?
    @Option(help: "drift: fail (exit 1) when the mean KL divergence exceeds this.") var maxKld: Double?
    @Option(help: "drift: fail (exit 1) when top-1 agreement (percent) is below this.") var minTop1: Double?
    @OptionGroup var reportOptions: DriftReportOptions
    @Flag(help: "Replace an existing output (and --report folder).") var force = false

    func validate() throws {
        guard !partials.isEmpty else { throw ValidationError("give the partial files") }
    }

    func run() throws {
        var gateFailed = false
        try SmeltCLI.run {
            if !force && Paths.exists(output) { throw OutputError.exists(path: output) }
            let reportInputs = try reportOptions.prepare(force: force)
            let set = try ShardSet.check(partials.map(PartialFile.read))
            let first = set[0]
            if let r = reportInputs {
                guard first.kind == .drift || first.kind == .sensitivity else {
                    throw EvaluatorError.badInput("--report is for drift and sensitivity partials; \(first.path) is a \(first.kind) partial")
                }
                guard first.kind == .drift || (r.predictions == nil && r.recipe == nil) else {
                    throw EvaluatorError.badInput("--sensitivity and --recipe are for a drift report; \(first.path) is a sensitivity partial")
                }
            }
            let seconds = set.reduce(0) { $0 + $1.seconds }
            switch first.kind {
            case .perplexity:
                var perChunk: [[Double]] = []
                for p in set { perChunk += try ShardSet.split(p.tensor("nll"), p, by: p.tensor("chunk_positions")) }
                let result = Perplexity.result(ctx: first.ctx, perChunkNLL: perChunk, seconds: seconds)
                try Self.writeJSON(PerplexityCommand.json(result, model: first.paths[0], threads: first.threads), to: output, force: force)
                print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.ppl, result.pplError))
                print("merged \(set.count) shards (\(perChunk.count) chunks) into \(output)")
            case .drift:
                var perChunk: [[Drift.Position]] = []
                for p in set {
                    let kld = try p.tensor("kld"), dp = try p.tensor("delta_p"), same = try p.tensor("top1_same")
                    let nb = try p.tensor("nll_base"), nc = try p.tensor("nll_candidate")
                    guard [dp.count, same.count, nb.count, nc.count].allSatisfy({ $0 == kld.count }) else {
                        throw EvaluatorError.badInput("\(p.path): not a usable partial result: its position tensors differ in length")
                    }
                    let positions = kld.indices.map {
                        Drift.Position(kld: kld[$0], deltaP: dp[$0], same: same[$0] != 0, nllBase: nb[$0], nllCandidate: nc[$0])
                    }
                    perChunk += try ShardSet.split(positions, p, by: p.tensor("chunk_positions"))
                }
                let report = Drift.report(ctx: first.ctx, perChunk: perChunk, seconds: seconds)
                guard first.paths.count == 2 else { throw EvaluatorError.badInput("\(first.path): a drift partial names two models") }
                let gates = DriftGates(maxPPLRatio: maxPplRatio, maxKLD: maxKld, minTop1: minTop1)
                gateFailed = try DriftCommand.emit(
                    report, base: first.paths[0], candidate: first.paths[1], gates: gates, json: output, force: force, threads: first.threads)
                // The breakdown reads the candidate's tensor list (its header only).
                try reportInputs?.write(
                    report, base: first.paths[0], candidate: first.paths[1], gates: gates.check(report),
                    candidateGraph: try ModelQuantizer.open(first.paths[1]), threads: first.threads, force: force)
            case .quantize:
                guard FormatRegistry.outputFormat(for: output) == .gguf else {
                    throw EvaluatorError.badInput("\(output): merged quantize shards are written as GGUF: give a .gguf output")
                }
                // The whole output's metadata (from shard 0, without the partial's own keys) and
                // every shard's tensors in shard order: the graph one run writes.
                var metadata = Metadata()
                for (k, v) in first.graph!.metadata.entries where !k.hasPrefix(PartialFile.keyPrefix) { metadata[k] = v }
                guard case let .array(_, names)? = first.graph!.metadata[PartialFile.keyPrefix + "tensor_names"] else {
                    throw EvaluatorError.badInput("\(first.path): not a usable partial result: smelt.partial.tensor_names is missing")
                }
                var byName: [String: (Tensor, String)] = [:]
                for p in set {
                    for t in p.graph!.tensors {
                        if let other = byName[t.name] {
                            throw EvaluatorError.badInput("tensor '\(t.name)' is in two partials: \(other.1) and \(p.path)")
                        }
                        byName[t.name] = (t, p.path)
                    }
                }
                var graph = try TensorGraph(metadata: metadata)
                for name in names.compactMap(\.stringValue) {
                    guard let t = byName.removeValue(forKey: name) else {
                        throw EvaluatorError.badInput("no partial holds tensor '\(name)'")
                    }
                    try graph.append(t.0)
                }
                guard byName.isEmpty else {
                    throw EvaluatorError.badInput("tensor '\(byName.keys.sorted()[0])' is not in the output's tensor list")
                }
                try GGUFWriter.write(graph, to: output, replace: force)
                print("merged \(set.count) shards into \(output): \(graph.tensors.count) tensors")
            case .sensitivity:
                let report = try SensitivityCommand.merge(set, seconds: seconds)
                if !force && Paths.exists(output) { throw OutputError.exists(path: output) }
                try report.write(to: output)
                print(SensitivityCommand.summary(report, written: output))
                if let r = reportInputs {
                    try SensitivityReportOutput.write(report, to: r.dir, force: force)
                    print("report: \(r.dir)/index.html")
                }
            case .calibrate:
                var nodes: [ChunkTree.Node: ImportanceSums] = [:]
                for p in set {
                    for (node, sums) in try CalibrationPartial.nodes(p) {
                        guard nodes[node] == nil else {
                            throw EvaluatorError.badInput("\(p.path): chunks \(node.first)… appear in two partials")
                        }
                        nodes[node] = sums
                    }
                }
                let total: ImportanceSums
                do {
                    total = try ChunkTree.total(nodes, count: first.totalChunks) { $0.adding($1) }
                } catch {
                    throw EvaluatorError.badInput("the partials do not cover chunks 0..<\(first.totalChunks) once each: \(error)")
                }
                let matrix = total.matrix(datasets: [first.text], chunkCount: first.totalChunks, chunkSize: first.ctx)
                try matrix.write(to: output, replace: force)
                print("merged \(set.count) shards into \(output): \(matrix.entries.count) weights, \(first.totalChunks) chunks of \(first.ctx) tokens")
            }
        }
        if gateFailed { throw ExitCode(1) }
    }

    static func writeJSON(_ value: JSONValue, to path: String, force: Bool) throws {
        let out = try AtomicOutput(path: path, replace: force)
        try out.write(Array((JSONWriter.write(value, indent: 2) + "\n").utf8))
        try out.commit()
    }
}

/// The checks a set of partials must pass before it merges.
enum ShardSet {
    /// The partials sorted by shard, when they are exactly shards 0..<N of one run.
    static func check(_ partials: [PartialFile]) throws -> [PartialFile] {
        let first = partials[0]
        for p in partials.dropFirst() {
            guard p.kind == first.kind else {
                throw EvaluatorError.badInput("\(p.path) is a \(p.kind.rawValue) partial but \(first.path) is a \(first.kind.rawValue) partial")
            }
            if p.fingerprint != first.fingerprint {
                let a = Set(first.fingerprint), b = Set(p.fingerprint)
                let differs = (b.subtracting(a).sorted().first ?? "?")
                let other = a.subtracting(b).sorted().first ?? "?"
                throw EvaluatorError.badInput(
                    "\(p.path) (shard \(p.shard)/\(p.shards)) is not from the same run as \(first.path) (shard \(first.shard)/\(first.shards)): "
                        + "\(differs) vs \(other)")
            }
            guard p.shards == first.shards else {
                throw EvaluatorError.badInput("\(p.path) is shard \(p.shard) of \(p.shards) but \(first.path) is shard \(first.shard) of \(first.shards)")
            }
        }
        var byShard: [Int: PartialFile] = [:]
        for p in partials {
            if let other = byShard[p.shard] {
                throw EvaluatorError.badInput("shard \(p.shard)/\(p.shards) is given twice: \(other.path) and \(p.path)")
            }
            byShard[p.shard] = p
        }
        let missing = (0..<first.shards).filter { byShard[$0] == nil }
        guard missing.isEmpty else {
            throw EvaluatorError.badInput(
                "missing shard\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(first.shards)" }.joined(separator: ", ")) "
                    + "(have \(partials.map { "\($0.path) = \($0.shard)/\($0.shards)" }.joined(separator: ", ")))")
        }
        let sorted = (0..<first.shards).map { byShard[$0]! }
        var next = 0
        for p in sorted {
            let expected = Perplexity.shardRange(p.shard, of: p.shards, chunks: p.totalChunks)
            guard p.chunks == expected, p.chunks.lowerBound == next else {
                throw EvaluatorError.badInput("\(p.path): shard \(p.shard)/\(p.shards) holds chunks \(p.chunks) where \(expected) was expected")
            }
            next = p.chunks.upperBound
        }
        guard next == first.totalChunks else {
            throw EvaluatorError.badInput("the shards cover chunks 0..<\(next) of \(first.totalChunks)")
        }
        return sorted
    }

    /// Cuts a partial's positions into its chunks.
    static func split<T>(_ values: [T], _ p: PartialFile, by counts: [Double]) throws -> [[T]] {
        guard counts.count == p.chunks.count, Int(counts.reduce(0, +)) == values.count else {
            throw EvaluatorError.badInput(
                "\(p.path): not a usable partial result: \(counts.count) chunks of \(Int(counts.reduce(0, +))) positions for \(p.chunks.count) chunks and \(values.count) values")
        }
        var out: [[T]] = []
        var i = 0
        for c in counts {
            out.append(Array(values[i..<(i + Int(c))]))
            i += Int(c)
        }
        return out
    }
}

/// How calibrate partials name their `ChunkTree` nodes: `n<level>.<index>:<weight>.in_sum2`.
enum CalibrationPartial {
    static func prefix(_ node: ChunkTree.Node) -> String { "n\(node.level).\(node.index):" }

    static func nodes(_ p: PartialFile) throws -> [ChunkTree.Node: ImportanceSums] {
        var out: [ChunkTree.Node: ImportanceSums] = [:]
        func bad(_ why: String) -> EvaluatorError { .badInput("\(p.path): not a usable partial result: \(why)") }
        for (name, values) in p.tensors {
            guard name.hasPrefix("n"), let colon = name.firstIndex(of: ":") else { throw bad("unexpected tensor '\(name)'") }
            let id = name[name.index(after: name.startIndex)..<colon].split(separator: ".")
            guard id.count == 2, let level = Int(id[0]), let index = Int(id[1]), level >= 0, level < 62, index >= 0 else {
                throw bad("unexpected tensor '\(name)'")
            }
            let node = ChunkTree.Node(level: level, index: index)
            let rest = String(name[name.index(after: colon)...])
            guard node.first >= p.chunks.lowerBound, min(node.first + (1 << level), p.totalChunks) <= p.chunks.upperBound else { throw bad("tensor '\(name)' lies outside the shard's chunks \(p.chunks)") }
            if rest.hasSuffix(ImportanceMatrix.sumsSuffix) {
                out[node, default: ImportanceSums()].sums[String(rest.dropLast(ImportanceMatrix.sumsSuffix.count))] = values
            } else if rest.hasSuffix(ImportanceMatrix.countsSuffix), values.count == 1 {
                out[node, default: ImportanceSums()].counts[String(rest.dropLast(ImportanceMatrix.countsSuffix.count))] = Int(values[0])
            } else if rest.hasSuffix(ImportanceMatrix.countsSuffix), values.count > 1 {
                // An expert weight: one count per expert.
                out[node, default: ImportanceSums()].expertCounts[String(rest.dropLast(ImportanceMatrix.countsSuffix.count))] = values.map { Int($0) }
            } else {
                throw bad("unexpected tensor '\(name)'")
            }
        }
        for (node, s) in out where Set(s.sums.keys) != Set(s.counts.keys).union(s.expertCounts.keys) {
            throw bad("node \(prefix(node)) has sums and counts for different weights")
        }
        return out
    }
}

extension PartialFile {
    func summary(written path: String) -> String {
        "wrote \(path): \(kind.rawValue) shard \(shard)/\(shards), chunks \(chunks.lowerBound)..<\(chunks.upperBound) of \(totalChunks), "
            + String(format: "%.1f s", seconds) + ", fingerprint \(fingerprintHash)"
    }
}
