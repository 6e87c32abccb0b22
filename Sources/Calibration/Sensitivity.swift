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
/// into KLD: W is quantized to one reference type (Q4_K, or Q4_0 where K blocks do not fit), the
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
        "importance-weighted squared rounding error per tensor and type, times a per-tensor gain = exact single-tensor KLD at a reference type (q4_k, else q4_0) on the gain chunks ÷ that type's weighted error; a mix's KLD is the sum"

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
                            let br = b + r * vocab, cr = c + r * vocab
                            var mb = -Float.infinity, mc = -Float.infinity
                            for i in 0..<vocab { mb = max(mb, br[i]); mc = max(mc, cr[i]) }
                            var zb = 0.0, zc = 0.0
                            for i in 0..<vocab { zb += Double(expf(br[i] - mb)); zc += Double(expf(cr[i] - mc)) }
                            let lzb = log(zb), lzc = log(zc)
                            var kl = 0.0
                            for i in 0..<vocab {
                                let lb = Double(br[i] - mb) - lzb, lc = Double(cr[i] - mc) - lzc
                                kl += exp(lb) * (lb - lc)
                            }
                            s += max(0, kl)
                        }
                        o[p] = s
                    }
                }
            }
        }
        return (sums.reduce(0, +), rows)
    }

    /// The reference type for a tensor's gain: q4_k when its blocks fit, else q4_0, else the
    /// first valid candidate below 8 bits.
    static func reference(shape: [Int], candidates: [DType]) -> DType? {
        for t in [DType.q4_K, .q4_0] where FileTypeMix.fitting(t, shape: shape)?.via.isEmpty == true { return t }
        return candidates.first { $0.isQuantized && $0 != .q8_0 && FileTypeMix.fitting($0, shape: shape)?.via.isEmpty == true }
    }

    /// The estimate for `graph` (in GGUF layout; `model` runs it).
    public static func estimate(
        graph: TensorGraph, model: LanguageModel, recipe: QuantRecipe, importance: ImportanceMatrix?,
        gainChunks: [[Int32]], checkChunks: [[Int32]], options: Options,
        progress: (_ phase: String, _ done: Int, _ total: Int) -> Void = { _, _, _ in }
    ) throws -> (tensors: [SensitivityReport.TensorEntry], fixed: [SensitivityReport.FixedEntry], check: SensitivityReport.Check?) {
        let tied = !graph.tensors.contains { $0.name == "output.weight" }
        let (free, fixedList) = split(graph, recipe: recipe)
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
            guard let ref = reference(shape: t.shape, candidates: options.candidates) else {
                throw CalibrationError.badInput("tensor '\(t.name)' (shape \(t.shape)): no candidate type divides its rows of \(rowLength)")
            }
            var types: [SensitivityReport.TypeEntry] = []
            for c in options.candidates {
                let fit = FileTypeMix.fitting(c, shape: t.shape)
                let stored = fit?.type ?? .f32
                if byStored[stored] == nil {
                    let (bytes, q) = try roundTrip(t.name, w, shape: t.shape, type: stored, importance: imp)
                    byStored[stored] = (bytes, weightedError(w, q, importance: imp, rowLength: rowLength), stored == ref ? q : nil)
                }
                let s = byStored[stored]!
                types.append(.init(type: c.rawValue, valid: fit?.via.isEmpty == true, stored: stored.rawValue, bytes: s.bytes,
                                   weightedError: s.error, predictedKld: 0))
            }
            if byStored[ref] == nil {
                let (bytes, q) = try roundTrip(t.name, w, shape: t.shape, type: ref, importance: imp)
                byStored[ref] = (bytes, weightedError(w, q, importance: imp, rowLength: rowLength), q)
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

        var check: SensitivityReport.Check?
        if options.checkPairs > 0, !checkChunks.isEmpty, !entries.isEmpty {
            let held = try Measurer(model: model, chunks: checkChunks)
            // Deterministic pairs: tensors spread over the model, types other than the reference
            // (and F16, whose drift is below the measurement's resolution).
            var rng = UInt64(0x9E37_79B9_7F4A_7C15)
            func next(_ n: Int) -> Int {
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                return Int((rng >> 33) % UInt64(n))
            }
            var pairs: [SensitivityReport.Check.Pair] = []
            for p in 0..<options.checkPairs {
                progress("check", p, options.checkPairs)
                let e = entries[next(entries.count)]
                let choices = Array(Set(e.types.filter { $0.stored != e.reference && $0.stored != "f16" && $0.stored != "f32" }.map(\.stored))).sorted()
                guard !choices.isEmpty else { continue }
                let stored = DType(name: choices[next(choices.count)])!
                let t = graph[e.name]!
                let imp = importance?.importance(for: t.name).flatMap { $0.count == (t.shape.last ?? 0) ? $0 : nil }
                let (_, q) = try roundTrip(t.name, try values(t), shape: t.shape, type: stored, importance: imp)
                let measured = try held.kld(t.name, values: q)
                let predicted = e.types.first { $0.stored == stored.rawValue }!.predictedKld
                pairs.append(.init(tensor: e.name, type: stored.rawValue, predictedKld: predicted, measuredKld: measured))
            }
            let ratios = pairs.filter { $0.measuredKld > 0 }.map { $0.predictedKld / $0.measuredKld }.sorted()
            check = .init(
                spearman: spearman(pairs.map(\.predictedKld), pairs.map(\.measuredKld)),
                medianRatio: ratios.isEmpty ? .nan : ratios[ratios.count / 2], pairs: pairs)
        }
        return (entries, fixed, check)
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

    /// The predicted KLD and tensor bytes of llama.cpp's file types on this model (their mix as
    /// `ModelQuantizer.plan` makes it, with an importance matrix), priced with the report.
    public static func fileTypePoints(_ report: SensitivityReport, graph: TensorGraph, recipe: QuantRecipe) -> [SensitivityReport.Point] {
        let byName = Dictionary(uniqueKeysWithValues: report.tensors.map { ($0.name, $0) })
        let total = max(1, report.parameters)
        return FileTypeMix.all.compactMap { mix in
            let plan = ModelQuantizer.plan(graph, recipe: recipe, request: .init(mix: mix, exactGGML: true, hasImatrix: true))
            var bytes = 0, kld = 0.0
            for p in plan {
                let params = p.shape.reduce(1, *)
                bytes += (try? p.target.byteCount(shape: p.shape)) ?? params * 4
                if let e = byName[p.name] {
                    guard let te = e.types.first(where: { $0.stored == p.target.rawValue }) else { return nil }
                    kld += te.predictedKld
                }
            }
            return .init(name: mix.name, tensorBytes: bytes, bitsPerWeight: Double(bytes) * 8 / Double(total), predictedKld: kld)
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
