import ArgumentParser
import Calibration
import Evaluator
import Formats
import Foundation
import Quantization
import TensorGraph

/// `quantize --target-bpw/--target-size/--max-kld`: one type per tensor from a sensitivity file,
/// chosen by `Allocation` (an exact multiple-choice knapsack on a fine byte grid).
extension QuantizeCommand {
    var budgetMode: Bool { targetBpw != nil || targetSize != nil || maxKld != nil }
    var allowedTypes: [String]? { types.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } } }

    func validateBudget() throws {
        let given = [targetBpw != nil, targetSize != nil, maxKld != nil].filter { $0 }.count
        guard given <= 1 else { throw ValidationError("give one of --target-bpw, --target-size and --max-kld") }
        if !budgetMode {
            if sensitivity != nil || writeRecipe != nil || types != nil {
                throw ValidationError("--sensitivity, --types and --write-recipe go with a budget: --target-bpw, --target-size or --max-kld")
            }
            return
        }
        guard sensitivity != nil || calibrationText != nil else {
            throw ValidationError("a budget needs --sensitivity S.json (from smelt sensitivity) or --calibration-text FILE to measure it")
        }
        if exactGGML { throw ValidationError("--exact-ggml reproduces llama-quantize's fixed mixes; a budget chooses its own") }
        if pure { throw ValidationError("--pure and a budget contradict each other") }
        if shard.partial != nil { throw ValidationError("a budget is not available with --shard") }
        try Usage.size("--target-size", targetSize)
        for name in allowedTypes ?? [] where DType(name: name) == nil {
            throw ValidationError("--types: unknown type '\(Usage.echo(name))'")
        }
        try Usage.number("--target-bpw", targetBpw, in: 0.001...64, what: "a positive number of bits")
        try Usage.number("--max-kld", maxKld, in: 0...1e9, what: "a non-negative KLD")
        if targetSize != nil, let output, FormatRegistry.outputFormat(for: output) != .gguf {
            throw ValidationError("--target-size counts the bytes of a GGUF file: OUT must end in .gguf")
        }
    }

    /// What the allocation decided.
    struct Budget {
        var recipe: QuantRecipe
        var mix: FileTypeMix
        var predictedKld: Double
        var asked: String
        var reachable: String
        var json: [(String, JSONValue)]
        /// Every tensor's planned type, for --write-recipe.
        var rules: [(name: String, type: DType, why: String)]
        var targetFileBytes: Int?
    }

    /// Reads (or measures) the sensitivity, solves the knapsack and returns a recipe naming every
    /// tensor's type, in front of `recipe`.
    func allocate(graph: TensorGraph, recipe: QuantRecipe, imatrix matrix: ImportanceMatrix?) throws -> Budget {
        let report: SensitivityReport
        if let path = sensitivity {
            report = try SensitivityReport.read(path)
        } else {
            let eval = try EvalOptions.parse(["--text", calibrationText!, "--ctx", "\(ctx)", "--threads", "\(threads)"])
            report = try SensitivityCommand.measure(
                model: input, eval: eval, imatrixChunks: chunks, gainChunks: 2, checkChunks: 0, checkPairs: 0,
                imatrix: imatrix, writeImatrix: nil, recipe: recipe, force: force).0
        }
        let source = sensitivity ?? "the sensitivity measured on \(calibrationText!)"
        if matrix == nil && report.rounding == "imatrix" && method == "rtn" {
            Terminal.printErr("smelt: note: the sensitivity was estimated with importance-weighted rounding; without --imatrix the tensors are rounded to nearest and drift more than predicted")
        }
        let byName = Dictionary(report.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let (free, fixedList) = Sensitivity.split(graph, recipe: recipe)
        for i in free {
            let t = graph.tensors[i]
            guard let e = byName[t.name] else {
                throw CalibrationError.badInput("\(source): has no entry for tensor '\(t.name)' of \(input) (was it made for another model or recipe?)")
            }
            guard e.shape == t.shape else {
                throw CalibrationError.badInput("\(source): tensor '\(t.name)' has shape \(e.shape) there but \(t.shape) in \(input)")
            }
        }
        // Bytes as the budget counts them: the GGUF slots (rounded up to the alignment) for
        // --target-size, the tensor bytes otherwise.
        var alignment = 1, header = 0
        if targetSize != nil {
            let provisional = ModelQuantizer.plan(graph, recipe: recipe, type: .q8_0)
            let g = try ModelQuantizer.output(graph, plan: provisional, type: .q8_0, imatrix: matrix, imatrixPath: imatrix,
                                              method: QuantMethod(rawValue: method)!).graph
            (header, alignment) = try GGUFWriter.layout(g)
        }
        func slot(_ b: Int) -> Int { (b + alignment - 1) / alignment * alignment }
        var fixedBytes = 0
        var rules: [(name: String, type: DType, why: String)] = []
        for (i, type) in fixedList {
            let t = graph.tensors[i]
            let b = t.dtype.isFloat || t.dtype.isQuantized ? ((try? type.byteCount(shape: t.shape)) ?? t.byteCount) : t.byteCount
            fixedBytes += slot(b)
            if t.dtype.isFloat || t.dtype.isQuantized { rules.append((t.name, type, "fixed by the recipe")) }
        }
        var options = Sensitivity.options(report, alignment: alignment)
        if let allowed = allowedTypes.map({ Set($0.compactMap { DType(name: $0) }) }) {
            for k in options.indices {
                let keep = options[k].types.indices.filter { allowed.contains(options[k].types[$0]) }
                guard !keep.isEmpty else {
                    throw CalibrationError.badInput("--types \(types!): none of them is a candidate for tensor '\(options[k].name)' (it takes \(options[k].types.map(\.rawValue).joined(separator: ", ")))")
                }
                options[k] = (options[k].name, keep.map { options[k].types[$0] }, keep.map { options[k].options[$0] })
            }
        }
        let optionsByName = Dictionary(options.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let items = free.map { optionsByName[graph.tensors[$0].name]! }
        let r = Allocation.range(items.map(\.options))
        let params = graph.parameterCount
        func bpw(_ bytes: Int) -> Double { Double(bytes) * 8 / Double(max(1, params)) }

        let solution: Allocation.Solution
        let asked: String, reachable: String
        var targetFileBytes: Int?
        do {
            if let b = targetBpw {
                let budget = Int((b * Double(params) / 8).rounded(.down)) - fixedBytes
                reachable = String(format: "%.4f…%.4f bits per weight", bpw(r.smallest + fixedBytes), bpw(r.largest + fixedBytes))
                asked = String(format: "%.4f bits per weight", b)
                guard budget >= r.smallest, budget <= r.largest else {
                    throw CalibrationError.badInput("--target-bpw \(b) is outside the reachable range \(reachable) (every tensor at its smallest candidate … at its largest, F16 unless --types)")
                }
                solution = try Allocation.minimizeCost(items.map(\.options), budget: budget)
            } else if let s = targetSize {
                let size = parseSize(s)!
                let budget = size - header - fixedBytes
                reachable = "\(header + fixedBytes + r.smallest)…\(header + fixedBytes + r.largest) bytes"
                asked = "\(size) bytes (GGUF file)"
                guard budget >= r.smallest, budget <= r.largest else {
                    throw CalibrationError.badInput("--target-size \(s) (\(size) bytes) is outside the reachable range \(reachable) of GGUF files (every tensor at its smallest candidate … at its largest, F16 unless --types)")
                }
                targetFileBytes = size
                solution = try Allocation.minimizeCost(items.map(\.options), budget: budget)
            } else {
                let k = maxKld!
                reachable = "predicted KLD down to that of every tensor at its largest candidate"
                asked = "predicted KLD ≤ \(k)"
                solution = try Allocation.minimizeBytes(items.map(\.options), maxCost: k)
            }
        } catch let e as Allocation.Failure {
            throw CalibrationError.badInput("\(e)")
        }
        var chosenParams: [DType: Int] = [:]
        for (k, i) in free.enumerated() {
            let t = graph.tensors[i]
            let type = items[k].types[solution.choice[k]]
            chosenParams[type, default: 0] += t.elementCount
            rules.append((t.name, type, String(format: "allocated: predicted KLD %.3g", items[k].options[solution.choice[k]].cost)))
        }
        // general.file_type names the block type holding the most parameters (F16 is no file type
        // --type accepts, so the replay could not name it).
        let dominant = chosenParams.filter { $0.key.isQuantized && FileTypeMix.named($0.key.displayName) != nil }.max { $0.value != $1.value ? $0.value < $1.value : $0.key.rawValue > $1.key.rawValue }?.key ?? .q8_0
        let mix: FileTypeMix = self.mix ?? FileTypeMix.named(dominant.displayName)
            ?? FileTypeMix.pure(dominant, fileType: ModelQuantizer.fileType(dominant))
        let exact = QuantRecipe(rules: rules.map {
            QuantRecipe.Rule(pattern: Self.globEscaped($0.name), target: .fixed($0.type), why: $0.why, origin: "allocation")
        })
        return Budget(
            recipe: recipe.overridden(by: exact), mix: mix, predictedKld: solution.cost, asked: asked, reachable: reachable,
            json: [("budget", .string(asked)), ("reachable", .string(reachable)), ("predicted_kld", .double(solution.cost)),
                   ("sensitivity", sensitivity.map(JSONValue.string) ?? .null), ("grid_unit_bytes", .int(solution.unit))],
            rules: rules, targetFileBytes: targetFileBytes)
    }

    /// `name` as a glob matching only itself.
    static func globEscaped(_ name: String) -> String {
        var out = ""
        for c in name { out += "*?[]\\".contains(c) ? "[\(c)]" : String(c) }
        return out
    }

    /// Writes the chosen mix as a recipe `--recipe` replays: one rule per tensor by exact name.
    static func writeRecipe(_ b: Budget, to path: String, replace: Bool) throws {
        if !replace && Paths.exists(path) { throw OutputError.exists(path: path) }
        let rules: [JSONValue] = b.rules.map {
            .object([("pattern", .string(globEscaped($0.name))), ("type", .string($0.type.rawValue)), ("why", .string($0.why))])
        }
        let about = "The mix smelt quantize chose for \(b.asked) (predicted KLD \(String(format: "%.5f", b.predictedKld))). "
            + "Replay: smelt quantize IN OUT --type \(b.mix.name) --recipe THIS_FILE (with the same --imatrix or --method)."
        let text = JSONWriter.write(.object([("about", .string(about)), ("type", .string(b.mix.name)), ("rules", .array(rules))]), indent: 1)
        let tmp = path + ".tmp-\(getpid())"
        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw CalibrationError.badInput("\(path): cannot write the recipe (errno \(errno))")
        }
    }
}
