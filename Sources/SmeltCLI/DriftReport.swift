import ArgumentParser
import Calibration
import Evaluator
import Formats
import Foundation
import Reports
import TensorGraph

/// The report options of `smelt drift` and `smelt merge` (drift partials).
struct DriftReportOptions: ParsableArguments {
    @Option(name: .customLong("report"), help: ArgumentHelp("Write an HTML report (index.html, report.json) into this folder.", valueName: "DIR"))
    var reportDir: String?
    @Option(help: ArgumentHelp("With --report: a sensitivity file (smelt sensitivity) for the predicted drift per layer and role.", valueName: "S.json"))
    var sensitivity: String?
    @Option(help: ArgumentHelp("With --report: a quantization recipe whose type for each tensor the report shows.", valueName: "FILE"))
    var recipe: String?

    func validate() throws {
        if reportDir == nil && (sensitivity != nil || recipe != nil) {
            throw ValidationError("--sensitivity and --recipe are for the report: give --report DIR too")
        }
    }

    /// The report's inputs, read (and the folder checked) before any long work; nil without --report.
    func prepare(force: Bool) throws -> DriftReport.Inputs? {
        guard let reportDir else { return nil }
        if !force && Paths.exists(reportDir) { throw OutputError.exists(path: reportDir) }
        return DriftReport.Inputs(
            dir: reportDir, predictions: try sensitivity.map { try DriftReport.Predictions.read($0) },
            recipe: try recipe.map { (path: $0, recipe: try QuantRecipe.read($0)) })
    }
}

/// `smelt drift --report DIR`: the report's data (the `--json` object plus the KLD histogram,
/// the per-chunk figures and the per-layer / per-role breakdown) as `DIR/report.json`, and the
/// page drawn from it as `DIR/index.html`; the folder is built under a temporary name and
/// published whole.
enum DriftReport {
    /// Predicted KLD per tensor and type (a sensitivity file), with its path.
    struct Predictions {
        let path: String
        /// tensor name → stored type (lower-case ggml name) → predicted KLD.
        let kld: [String: [String: Double]]

        /// Reads the tensors' predictions from a sensitivity file (`formats/sensitivity.md`).
        static func read(_ path: String) throws -> Predictions {
            var out: [String: [String: Double]] = [:]
            for t in try SensitivityReport.read(path).tensors {
                for e in t.types { out[t.name, default: [:]][e.stored.lowercased()] = e.predictedKld }
            }
            return Predictions(path: path, kld: out)
        }
    }

    /// What --report, --sensitivity and --recipe asked for, read.
    struct Inputs {
        let dir: String
        let predictions: Predictions?
        let recipe: (path: String, recipe: QuantRecipe)?

        func write(
            _ report: Drift.Report, base: String, candidate: String, gates: [DriftGates.Outcome], candidateGraph: TensorGraph,
            threads: Int, force: Bool
        ) throws {
            let data = DriftReport.data(
                report, base: base, candidate: candidate, gates: gates, candidateGraph: candidateGraph, predictions: predictions,
                recipe: recipe, threads: threads)
            try DriftReport.write(data, page: DriftPage.render, to: dir, force: force)
            print("report:     \(dir)/index.html")
        }
    }

    static func data(
        _ report: Drift.Report, base: String, candidate: String, gates: [DriftGates.Outcome], candidateGraph: TensorGraph,
        predictions: Predictions?, recipe: (path: String, recipe: QuantRecipe)?, threads: Int
    ) -> JSONValue {
        var fields = DriftText.json(report, base: base, candidate: candidate, gates: gates).objectEntries ?? []
        let h = report.kldHistogram()
        fields.append(("kld_histogram", .object([
            ("floor", JSONValue.double(h.floor)), ("below", JSONValue.int(h.below)),
            ("bins", .array(h.bins.map { .object([("low", JSONValue.double($0.low)), ("high", JSONValue.double($0.high)), ("count", JSONValue.int($0.count))]) })),
        ])))
        fields.append(("per_chunk", .array(report.perChunk.map { c in
            .object([("positions", JSONValue.int(c.positions)), ("ppl_base", JSONValue.double(c.pplBase)),
                     ("ppl_candidate", JSONValue.double(c.pplCandidate)), ("kld_mean", JSONValue.double(c.kldMean)),
                     ("top1_agreement", JSONValue.double(c.top1Agreement))])
        })))
        fields.append(("breakdown", breakdown(candidateGraph, predictions: predictions, recipe: recipe)))
        fields.append(("system", SystemReport.json(threads: threads)))
        return .object(fields)
    }

    /// Bytes, parameters and types per layer (`blk.N`, then `other`), per role (llama-quantize's
    /// categories, then `norms and other`) and per tensor; predicted KLD summed the same way when
    /// a sensitivity file gives one for a tensor at the type it has.
    static func breakdown(_ graph: TensorGraph, predictions: Predictions?, recipe: (path: String, recipe: QuantRecipe)?) -> JSONValue {
        let tied = !graph.tensors.contains { $0.name == "output.weight" }
        var layers: [String: Group] = [:], roles: [String: Group] = [:]
        var tensorRows: [JSONValue] = []
        var mismatches = 0
        for t in graph.tensors {
            let layer = LayerNames.layer(t.name)
            let role = FileTypeMix.Role.of(t.name, tiedEmbedding: tied)?.rawValue ?? "other"
            let p = predictions?.kld[t.name]?[t.dtype.rawValue.lowercased()]
            layers[layer, default: Group()].add(t, p)
            roles[role, default: Group()].add(t, p)
            var row: [(String, JSONValue)] = [
                ("name", .string(t.name)), ("type", .string(t.dtype.displayName)), ("layer", .string(layer)), ("role", .string(role)),
                ("parameters", JSONValue.int(t.elementCount)), ("bytes", JSONValue.int(t.byteCount)),
            ]
            if predictions != nil { row.append(("predicted_kld", p.map(JSONValue.double) ?? .null)) }
            if let recipe, let rule = recipe.recipe.rules.first(where: { $0.matches(name: t.name, dims: t.shape.count) }),
               case let .fixed(want) = rule.target
            {
                row.append(("recipe_type", .string(want.displayName)))
                if want != t.dtype { mismatches += 1 }
            }
            tensorRows.append(.object(row))
        }
        func rows(_ groups: [String: Group], order: [String]) -> JSONValue {
            .array(order.compactMap { name in
                guard let g = groups[name] else { return nil }
                var row: [(String, JSONValue)] = [
                    ("name", .string(name)), ("tensors", JSONValue.int(g.tensors)), ("parameters", JSONValue.int(g.parameters)),
                    ("bytes", JSONValue.int(g.bytes)), ("mib", JSONValue.double(Double(g.bytes) / 1_048_576)),
                    ("bits_per_weight", JSONValue.double(g.parameters > 0 ? Double(g.bytes) * 8 / Double(g.parameters) : 0)),
                    ("types", .string(g.types.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                        .map { "\($0.key)×\($0.value)" }.joined(separator: " "))),
                ]
                if predictions != nil { row.append(("predicted_kld", JSONValue.double(g.predicted))) }
                return .object(row)
            })
        }
        let layerOrder = layers.keys.sorted { a, b in
            let la = LayerNames.layerNumber(a), lb = LayerNames.layerNumber(b)
            return la != lb ? (la < 0 ? false : lb < 0 ? true : la < lb) : a < b
        }
        let roleOrder = FileTypeMix.Role.allCases.map(\.rawValue) + ["other"]
        var out: [(String, JSONValue)] = []
        if let predictions {
            out.append(("sensitivity", .string(predictions.path)))
            // Tensors the file has no prediction for (at the type they have) add nothing: listed.
            let total = layers.values.reduce(0.0) { $0 + $1.predicted }
            out.append(("predicted_kld_total", .double(total)))
            out.append(("unpredicted_tensors", .array(graph.tensors.filter {
                predictions.kld[$0.name] != nil && predictions.kld[$0.name]?[$0.dtype.rawValue.lowercased()] == nil
            }.map { .string("\($0.name): \($0.dtype.displayName)") })))
        }
        if let recipe {
            out.append(("recipe", .string(recipe.path)))
            out.append(("recipe_mismatches", JSONValue.int(mismatches)))
        }
        out += [("layers", rows(layers, order: layerOrder)), ("roles", rows(roles, order: roleOrder)), ("tensors", .array(tensorRows))]
        return .object(out)
    }

    /// Writes `index.html` and `report.json` into `dir`, built under a temporary name and
    /// published whole (replacing an existing folder only when `force`).
    static func write(_ data: JSONValue, page: (JSONValue) throws -> String, to dir: String, force: Bool) throws {
        let html = try page(data)
        let folder = try AtomicFolder(path: dir, replace: force)
        for (name, text) in [("report.json", JSONWriter.write(data, indent: 2) + "\n"), ("index.html", html)] {
            let out = try AtomicOutput(path: folder.file(name))
            try out.write(Array(text.utf8))
            try out.commit()
        }
        try folder.commit()
    }
}

/// One row of the breakdown: a layer's or a role's tensors added up.
private struct Group {
    var tensors = 0, parameters = 0, bytes = 0
    var types: [String: Int] = [:]
    var predicted = 0.0

    mutating func add(_ t: Tensor, _ predictedKLD: Double?) {
        tensors += 1
        parameters += t.elementCount
        bytes += t.byteCount
        types[t.dtype.displayName, default: 0] += 1
        predicted += predictedKLD ?? 0
    }
}

/// Layer names for the breakdown: `blk.N` for `blk.N.…` tensors, `other` for the rest.
enum LayerNames {
    static func layerNumber(_ layer: String) -> Int {
        guard layer.hasPrefix("blk.") else { return -1 }
        return Int(layer.dropFirst(4)) ?? -1
    }

    static func layer(_ name: String) -> String {
        guard name.hasPrefix("blk.") else { return "other" }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), Int(rest[..<dot]) != nil else { return "other" }
        return "blk." + rest[..<dot]
    }
}
