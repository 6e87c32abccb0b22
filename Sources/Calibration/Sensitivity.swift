import Dispatch
import Evaluator
import Foundation
import Quantization
import TensorGraph

/// Per-tensor sensitivity: how much drift (mean KLD against the unquantized model) quantizing one
/// tensor alone to a type causes, estimated from calibration text.
///
/// The estimator: for tensor W and type τ, the importance-weighted squared rounding error
/// e(W, τ) = Σ_rows Σ_j imp_j (w − ŵ)², imp_j the mean square of input column j over the
/// calibration tokens (the importance matrix; the diagonal of the input covariance, so e is the
/// output error ‖X(W − Ŵ)ᵀ‖² per token when inputs are uncorrelated). A per-tensor gain turns it
/// into KLD: W is quantized to one reference type (Q4_K, or Q4_0 where K blocks do not fit, or the
/// next candidate when that one rounds W at least as exactly as Q8_0: see `chooseReference`), the
/// exact KLD of the model with only that tensor changed is measured on a few calibration chunks
/// (from the tensor's layer on: the residual streams entering each layer are cached), and
/// gain = measured KLD ÷ e(W, reference). Predicted KLD(W, τ) = gain × e(W, τ); a mix's drift is
/// predicted as the sum over its tensors. Cost: every tensor quantized once per candidate, and one
/// partial forward pass per tensor and gain chunk — linear in the number of tensors.
public enum Sensitivity {
    /// The candidate types: legacy, K-quants, IQ4, Q8_0 and F16.
    public static let defaultCandidates: [DType] = [
        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .iq4_XS, .f16,
    ]

    public static let estimatorSummary =
        "importance-weighted squared rounding error per tensor and type, times a per-tensor gain = exact single-tensor KLD at a reference type (q4_k, else q4_0, else the next candidate; the first whose error exceeds q8_0's on that tensor) on the gain chunks ÷ that type's weighted error; a mix's KLD is the sum"

    public struct Options: Sendable {
        public var candidates: [DType] = Sensitivity.defaultCandidates
        /// Held-out exact measurements to compare with the prediction (on the check chunks).
        public var checkPairs: Int = 32
        public var threads: Int = 2
        public init() {}
    }

    /// Which tensors the allocation chooses for: those the recipe leaves to the requested type
    /// (2-D or larger, float or quantized); the others keep the recipe's type.
    public static func split(_ graph: TensorGraph, recipe: QuantRecipe) -> (free: [Int], fixed: [(index: Int, type: DType)]) {
        var free: [Int] = [], fixed: [(Int, DType)] = []
        for (i, t) in graph.tensors.enumerated() {
            let d = recipe.decide(t, requested: .q8_0)
            if d.rule?.target == .requested, t.shape.count >= 2, d.dtype.isQuantized {
                free.append(i)
            } else {
                fixed.append((i, d.dtype))
            }
        }
        return (free, fixed)
    }

    /// A tensor's values as f32.
    static func values(_ t: Tensor) throws -> [Float] {
        let f: Tensor = t.dtype == .f32 ? t : (Tensor.castableTypes.contains(t.dtype) ? try t.cast(to: .f32) : try t.dequantized(to: .f32))
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBytes { try f.storage.read(offset: 0, into: $0) }
        return out
    }

    /// `values` (shape `shape`) rounded to `type` and back: (bytes, the dequantized values).
    static func roundTrip(_ name: String, _ values: [Float], shape: [Int], type: DType, importance: [Float]?) throws -> (bytes: Int, values: [Float]) {
        let src = try Tensor(name: name, dtype: .f32, shape: shape,
                             storage: MemoryStorage(values.withUnsafeBytes { Array($0) }))
        let q: Tensor
        switch type {
        case .f32: return (values.count * 4, values)
        case .f16: q = try src.cast(to: .f16)
        default: q = try importance.map { try src.quantized(to: type, importance: $0, method: .search) } ?? src.quantized(to: type)
        }
        return (q.byteCount, try Self.values(q))
    }

    /// Σ_rows Σ_j imp_j (a − b)².
    static func weightedError(_ a: [Float], _ b: [Float], importance: [Float]?, rowLength: Int) -> Double {
        var total = 0.0
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                let rows = a.count / max(1, rowLength)
                for r in 0..<rows {
                    var s = 0.0
                    for j in 0..<rowLength {
                        let d = Double(a[r * rowLength + j] - b[r * rowLength + j])
                        s += Double(importance?[j] ?? 1) * d * d
                    }
                    total += s
                }
            }
        }
        return total
    }

    /// N of `blk.N.`.
    static func layer(_ name: String) -> Int? {
        let n = ModelQuantizer.layerNumber(name)
        return n >= 0 ? n : nil
    }

    /// Exact single-tensor KLD on a few chunks: base logits and the residual stream entering each
    /// layer are kept, so a tensor of layer L costs layers L… and the head.
    final class Measurer {
        let model: LanguageModel
        let chunks: [[Int32]]
        let rows: Range<Int>
        var base: [[Float]] = []
        /// streams[c][L]: the stream entering layer L of chunk c (L ≥ 1; index 0 unused).
        var streams: [[[Float]]] = []

        init(model: LanguageModel, chunks: [[Int32]]) throws {
            self.model = model
            self.chunks = chunks
            rows = Perplexity.scoredRows(ctx: chunks.first?.count ?? 0)
            let layers = model.config.layers
            for c in chunks {
                base.append(try model.logits(tokens: c, outputRows: rows))
                var s: [[Float]] = [[]]
                var x: [Float]? = nil
                for l in 0..<layers {
                    x = try model.residualStream(tokens: c, layers: l..<(l + 1), from: x)
                    s.append(x!)
                }
                streams.append(s)
            }
        }

        /// Mean KLD over the chunks' scored positions with `name` replaced by `values`.
        func kld(_ name: String, values: [Float]) throws -> Double {
            try model.overrideWeight(name, values: values)
            defer { model.removeOverride(name) }
            let layers = model.config.layers
            var total = 0.0, count = 0
            for (ci, c) in chunks.enumerated() {
                let logits: [Float]
                if name == "output.weight" {
                    logits = try model.logits(tokens: c, outputRows: rows, fromLayer: layers, input: streams[ci][layers])
                } else if let l = Sensitivity.layer(name), l >= 1, l < layers {
                    logits = try model.logits(tokens: c, outputRows: rows, fromLayer: l, input: streams[ci][l])
                } else {
                    logits = try model.logits(tokens: c, outputRows: rows)
                }
                let (s, n) = Sensitivity.klSum(base: base[ci], candidate: logits, vocab: model.config.vocabSize, threads: model.threadCount)
                total += s
                count += n
            }
            return count > 0 ? total / Double(count) : 0
        }
    }

    /// Σ over rows of KL(base ‖ candidate), and the row count.
    static func klSum(base: [Float], candidate: [Float], vocab: Int, threads: Int) -> (Double, Int) {
        let rows = base.count / vocab
        let parts = max(1, min(threads, rows))
        var sums = [Double](repeating: 0, count: parts)
        base.withUnsafeBufferPointer { b in
            candidate.withUnsafeBufferPointer { c in
                sums.withUnsafeMutableBufferPointer { out in
                    // Each iteration reads shared rows and writes only its own slot.
                    let shared = UncheckedSendable((b.baseAddress!, c.baseAddress!, out.baseAddress!))
                    DispatchQueue.concurrentPerform(iterations: parts) { p in
                        let (b, c, o) = shared.value
                        var s = 0.0
                        for r in stride(from: p, to: rows, by: parts) {
                            let br = UnsafeBufferPointer(start: b + r * vocab, count: vocab)
                            let cr = UnsafeBufferPointer(start: c + r * vocab, count: vocab)
                            s += max(0, Drift.kl(base: br, Drift.logSumExp(br), candidate: cr, Drift.logSumExp(cr)))
                        }
                        o[p] = s
                    }
                }
            }
        }
        return (sums.reduce(0, +), rows)
    }

    /// The reference types for a tensor's gain, in order of preference: q4_k when its blocks fit,
    /// q4_0, then the other valid candidates below 8 bits in candidate order.
    static func references(shape: [Int], candidates: [DType]) -> [DType] {
        let fits = { (t: DType) in FileTypeMix.fitting(t, shape: shape)?.via.isEmpty == true }
        var out = [DType.q4_K, .q4_0].filter(fits)
        for c in candidates where c.isQuantized && c != .q8_0 && fits(c) && !out.contains(c) { out.append(c) }
        return out
    }

    /// The preferred reference (the check's draw uses it: it depends on the shape alone).
    static func reference(shape: [Int], candidates: [DType]) -> DType? {
        references(shape: shape, candidates: candidates).first
    }

    /// The reference actually used: the first of `order` whose weighted error is above Q8_0's on
    /// the same tensor (`floor`). A 4-bit type that rounds a tensor at least as exactly as the
    /// 8-bit grid does has found the grid the weights already sit on (a model dequantized from
    /// that type); its KLD is then zero or rounding noise and cannot measure the tensor's gain.
    /// When no candidate clears the floor, the preferred one is used.
    public static func chooseReference(_ order: [DType], floor: Double, error: (DType) throws -> Double) rethrows -> DType? {
        for t in order where try error(t) > floor { return t }
        return order.first
    }

    /// The estimate for `graph` (in GGUF layout; `model` runs it).
    public static func estimate(
        graph: TensorGraph, model: LanguageModel, recipe: QuantRecipe, importance: ImportanceMatrix?,
        gainChunks: [[Int32]], checkChunks: [[Int32]], options: Options, range: Range<Int>? = nil,
        progress: (_ phase: String, _ done: Int, _ total: Int) -> Void = { _, _, _ in }
    ) throws -> (tensors: [SensitivityReport.TensorEntry], fixed: [SensitivityReport.FixedEntry], check: [(index: Int, pair: SensitivityReport.Check.Pair)]) {
        let tied = !graph.tensors.contains { $0.name == "output.weight" }
        let (allFree, fixedList) = split(graph, recipe: recipe)
        let range = range ?? allFree.indices
        let free = Array(allFree[range])
        var fixed: [SensitivityReport.FixedEntry] = []
        for (i, type) in fixedList {
            let t = graph.tensors[i]
            let bytes = (try? type.byteCount(shape: t.shape)) ?? t.byteCount
            fixed.append(.init(name: t.name, role: FileTypeMix.Role.of(t.name, tiedEmbedding: tied)?.rawValue, layer: layer(t.name),
                               type: type.rawValue, parameters: t.elementCount, bytes: bytes))
        }
        progress("base", 0, free.count)
        let gain = try Measurer(model: model, chunks: gainChunks)
        var entries: [SensitivityReport.TensorEntry] = []
        for (n, i) in free.enumerated() {
            let t = graph.tensors[i]
            progress(t.name, n, free.count)
            let w = try values(t)
            let rowLength = t.shape.last ?? 1
            let imp = importance?.importance(for: t.name).flatMap { $0.count == rowLength ? $0 : nil }
            var byStored: [DType: (bytes: Int, error: Double, values: [Float]?)] = [:]
            let order = references(shape: t.shape, candidates: options.candidates)
            guard let preferred = order.first else {
                throw CalibrationError.badInput("tensor '\(t.name)' (shape \(t.shape)): no candidate type divides its rows of \(rowLength)")
            }
            // Rounds `type` once; keeps the values only for the preferred reference (the usual pick).
            func rounded(_ type: DType) throws -> (bytes: Int, error: Double, values: [Float]?) {
                if let s = byStored[type] { return s }
                let (bytes, q) = try roundTrip(t.name, w, shape: t.shape, type: type, importance: imp)
                let s = (bytes, weightedError(w, q, importance: imp, rowLength: rowLength), type == preferred ? q : nil)
                byStored[type] = s
                return s
            }
            var types: [SensitivityReport.TypeEntry] = []
            for c in options.candidates {
                let fit = FileTypeMix.fitting(c, shape: t.shape)
                let stored = fit?.type ?? .f32
                let s = try rounded(stored)
                types.append(.init(type: c.rawValue, valid: fit?.via.isEmpty == true, stored: stored.rawValue, bytes: s.bytes,
                                   weightedError: s.error, predictedKld: 0))
            }
            let floor = FileTypeMix.fitting(.q8_0, shape: t.shape)?.via.isEmpty == true ? try rounded(.q8_0).error : 0
            let ref = try chooseReference(order, floor: floor) { try rounded($0).error }!
            if byStored[ref]!.values == nil {
                byStored[ref]!.values = try roundTrip(t.name, w, shape: t.shape, type: ref, importance: imp).values
            }
            let measured = try gain.kld(t.name, values: byStored[ref]!.values!)
            let refError = byStored[ref]!.error
            let g = refError > 0 ? measured / refError : 0
            for k in types.indices { types[k].predictedKld = g * types[k].weightedError }
            entries.append(.init(
                name: t.name, role: FileTypeMix.Role.of(t.name, tiedEmbedding: tied)?.rawValue, layer: layer(t.name), shape: t.shape,
                parameters: t.elementCount, gain: g, reference: ref.rawValue, measuredKld: measured, types: types))
        }
        progress("done", free.count, free.count)

        // The held-out check: the pairs are drawn from every chosen tensor (by shape alone, so a
        // shard draws the same sequence) and measured where the tensor is in this run's range.
        var check: [(index: Int, pair: SensitivityReport.Check.Pair)] = []
        let picks = checkPlan(allFree.map { graph.tensors[$0].shape }, candidates: options.candidates, count: options.checkPairs)
        let mine = picks.enumerated().filter { range.contains($0.element.tensor) }
        if !mine.isEmpty, !checkChunks.isEmpty {
            let held = try Measurer(model: model, chunks: checkChunks)
            for (n, (index, pick)) in mine.enumerated() {
                progress("check", n, mine.count)
                let e = entries[pick.tensor - range.lowerBound]
                let t = graph[e.name]!
                let imp = importance?.importance(for: t.name).flatMap { $0.count == (t.shape.last ?? 0) ? $0 : nil }
                let (_, q) = try roundTrip(t.name, try values(t), shape: t.shape, type: pick.type, importance: imp)
                let measured = try held.kld(t.name, values: q)
                let predicted = e.types.first { $0.stored == pick.type.rawValue }!.predictedKld
                check.append((index, .init(tensor: e.name, type: pick.type.rawValue, predictedKld: predicted, measuredKld: measured)))
            }
        }
        return (entries, fixed, check)
    }

    /// The check's pairs (index among the chosen tensors, stored type), drawn deterministically:
    /// types other than the tensor's reference (and F16, whose drift is below the measurement's
    /// resolution).
    static func checkPlan(_ shapes: [[Int]], candidates: [DType], count: Int) -> [(tensor: Int, type: DType)] {
        guard !shapes.isEmpty else { return [] }
        var rng = UInt64(0x9E37_79B9_7F4A_7C15)
        func next(_ n: Int) -> Int {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Int((rng >> 33) % UInt64(n))
        }
        var out: [(Int, DType)] = []
        for _ in 0..<count {
            let i = next(shapes.count)
            let ref = reference(shape: shapes[i], candidates: candidates)
            let stored = Set(candidates.compactMap { FileTypeMix.fitting($0, shape: shapes[i])?.type })
            let choices = stored.filter { $0 != ref && $0.isQuantized }.sorted { $0.rawValue < $1.rawValue }
            guard !choices.isEmpty else { continue }
            out.append((i, choices[next(choices.count)]))
        }
        return out
    }

    /// The check from its measured pairs (in draw order).
    public static func check(_ pairs: [SensitivityReport.Check.Pair]) -> SensitivityReport.Check? {
        guard !pairs.isEmpty else { return nil }
        let ratios = pairs.filter { $0.measuredKld > 0 }.map { $0.predictedKld / $0.measuredKld }.sorted()
        return .init(
            spearman: spearman(pairs.map(\.predictedKld), pairs.map(\.measuredKld)),
            medianRatio: ratios.isEmpty ? .nan : ratios[ratios.count / 2], pairs: pairs)
    }

    /// Spearman's rank correlation (ties get their mean rank).
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        func ranks(_ x: [Double]) -> [Double] {
            let order = x.indices.sorted { x[$0] < x[$1] }
            var r = [Double](repeating: 0, count: x.count)
            var i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
                for k in i...j { r[order[k]] = Double(i + j) / 2 }
                i = j + 1
            }
            return r
        }
        guard a.count == b.count, a.count > 1 else { return .nan }
        let ra = ranks(a), rb = ranks(b)
        let ma = ra.reduce(0, +) / Double(ra.count), mb = rb.reduce(0, +) / Double(rb.count)
        var num = 0.0, da = 0.0, db = 0.0
        for k in ra.indices {
            num += (ra[k] - ma) * (rb[k] - mb)
            da += (ra[k] - ma) * (ra[k] - ma)
            db += (rb[k] - mb) * (rb[k] - mb)
        }
        return da > 0 && db > 0 ? num / (da * db).squareRoot() : .nan
    }

    // MARK: - From a sensitivity file to the allocator

    /// The allocator's options for the file's tensors: the distinct stored types (F32 excluded),
    /// bytes optionally rounded up to `alignment` (the GGUF layout), cost the predicted KLD.
    public static func options(_ report: SensitivityReport, alignment: Int = 1)
        -> [(name: String, types: [DType], options: [Allocation.Option])]
    {
        report.tensors.map { t in
            var seen = Set<String>(), types: [DType] = [], opts: [Allocation.Option] = []
            for e in t.types where e.stored != "f32" && seen.insert(e.stored).inserted {
                guard let d = DType(name: e.stored) else { continue }
                types.append(d)
                opts.append(.init(bytes: (e.bytes + alignment - 1) / alignment * alignment, cost: e.predictedKld))
            }
            return (t.name, types, opts)
        }
    }

    /// llama.cpp's file types on this model: per file type, every tensor's type and bytes (their
    /// mix as `ModelQuantizer.plan` makes it, with an importance matrix).
    public struct FileTypePlan: Codable, Sendable {
        public var name: String
        public var tensors: [String]
        public var types: [String]
        public var bytes: [Int]
    }

    public static func fileTypePlans(graph: TensorGraph, recipe: QuantRecipe) -> [FileTypePlan] {
        FileTypeMix.all.map { mix in
            let plan = ModelQuantizer.plan(graph, recipe: recipe, request: .init(mix: mix, exactGGML: true, hasImatrix: true))
            return FileTypePlan(
                name: mix.name, tensors: plan.map(\.name), types: plan.map(\.target.rawValue),
                bytes: plan.map { (try? $0.target.byteCount(shape: $0.shape)) ?? $0.shape.reduce(1, *) * 4 })
        }
    }

    /// The predicted KLD and tensor bytes of each file type's mix, priced with the report (a mix
    /// using a type the report does not price is left out).
    public static func fileTypePoints(_ report: SensitivityReport, plans: [FileTypePlan]) -> [SensitivityReport.Point] {
        let byName = Dictionary(uniqueKeysWithValues: report.tensors.map { ($0.name, $0) })
        let total = max(1, report.parameters)
        return plans.compactMap { plan in
            var kld = 0.0
            for (name, type) in zip(plan.tensors, plan.types) {
                guard let e = byName[name] else { continue }
                guard let te = e.types.first(where: { $0.stored == type }) else { return nil }
                kld += te.predictedKld
            }
            let bytes = plan.bytes.reduce(0, +)
            return .init(name: plan.name, tensorBytes: bytes, bitsPerWeight: Double(bytes) * 8 / Double(total), predictedKld: kld)
        }
    }

    /// The allocator's frontier at `count` sizes evenly spread over the reachable range.
    public static func curve(_ report: SensitivityReport, count: Int = 24) -> [SensitivityReport.Point] {
        let items = options(report).map(\.options)
        let r = Allocation.range(items)
        guard count >= 2, r.largest > r.smallest else { return [] }
        let budgets = (0..<count).map { r.smallest + (r.largest - r.smallest) * $0 / (count - 1) }
        guard let sols = try? Allocation.frontier(items, budgets: budgets) else { return [] }
        let fixed = report.fixedBytes, total = max(1, report.parameters)
        return sols.map {
            .init(name: nil, tensorBytes: $0.bytes + fixed, bitsPerWeight: Double($0.bytes + fixed) * 8 / Double(total), predictedKld: $0.cost)
        }
    }
}

/// A value handed to concurrent iterations that each write only their own part of it.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
