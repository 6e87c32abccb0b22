import Evaluator
import Foundation
import Kernels
import Quantization
import TensorGraph

/// GPTQ over a whole model, layer by layer: the calibration chunks' residual stream is kept
/// between layers, so each layer runs on the outputs of the layers before it as already quantized.
/// Within a layer the linear weights are taken in groups of those reading the same input, in the
/// order the forward pass runs them (Llama: q/k/v, output, gate/up, down): one pass of the layer
/// over the chunks gathers H = XᵀX of a group, the group is quantized (`GPTQ.quantize`) and its
/// weights replaced by their decoded values (`LanguageModel.overrideWeight`), and the next pass
/// sees them. Expert weights (a mixture of experts) follow, one Hessian per expert
/// (`GPTQExperts.swift`). A last pass advances the stream. After the last layer, the output head (the tied
/// token embedding, or `output.weight`) is quantized from the final norm's outputs.
///
/// Memory: the residual stream of the chunks (chunks × ctx × embedding floats) and one group's
/// Hessian; the quantized blocks are kept until the file is written.
public final class GPTQRunner {
    public let model: LanguageModel
    /// Weight name → target block type, for the weights to quantize with GPTQ.
    public let targets: [String: DType]
    public let chunks: [[Int32]]
    public let options: GPTQ.Options

    /// What the runner reports: the phase (`blk.3` or `output`), units done and total.
    public typealias Progress = (_ phase: String, _ done: Int, _ total: Int) -> Void

    /// Per weight: the quantized blocks.
    public private(set) var results: [String: [UInt8]] = [:]
    /// Per weight: ‖XW − XŴ‖² / ‖XW‖² on the calibration inputs it was quantized with, estimated
    /// from H as tr(ΔW H ΔWᵀ) / tr(W H Wᵀ).
    public private(set) var relativeErrors: [String: Double] = [:]
    /// The same measure for ggml's round-to-nearest, when `compareWithRTN` is set.
    public private(set) var rtnRelativeErrors: [String: Double] = [:]
    /// Also measure round-to-nearest's error on each weight's Hessian (costs a second product).
    public var compareWithRTN = false
    /// Quantizes one weight onto another grid than ggml's blocks (GPTQ / compressed-tensors
    /// groups): given the name, the f32 values, rows, columns and the symmetric Hessian, returns
    /// the values it decodes to (it keeps its own result); `results` then stays empty for it.
    public var matrixQuantizer: ((_ name: String, _ w: [Float], _ rows: Int, _ cols: Int, _ hessian: [Float]) throws -> [Float])?

    public init(model: LanguageModel, targets: [String: DType], chunks: [[Int32]], options: GPTQ.Options) {
        self.model = model
        self.targets = targets
        self.chunks = chunks
        self.options = options
    }

    /// Records a weight's measured errors (expert weights: `GPTQExperts.swift`).
    func recordError(_ name: String, gptq: Double, rtn: Double?) {
        relativeErrors[name] = gptq
        if let rtn { rtnRelativeErrors[name] = rtn }
    }

    func storeResult(_ name: String, blocks: [UInt8]) throws { results[name] = blocks }

    public func run(progress: Progress = { _, _, _ in }) throws {
        let previous = model.linearInputObserver
        defer { model.linearInputObserver = previous }
        let layers = model.config.layers
        var streams: [[Float]] = try chunks.map { try model.residualStream(tokens: $0, layers: 0..<0, from: nil) }
        for l in 0..<layers {
            let prefix = "blk.\(l)."
            var groups: [[String]]? = nil
            var g = 0
            var expertsDone = false
            while true {
                // One pass of layer l over the chunks: the first also finds the groups (and gathers
                // the first group's Hessian); then one per group; the last advances the stream.
                let discovering = groups == nil
                let advancing = !discovering && g >= groups!.count
                // Before the stream advances: the layer's expert weights, one Hessian per expert.
                if advancing && !expertsDone {
                    try runExperts(layer: l, streams: streams, progress: progress)
                    expertsDone = true
                }
                let target: String? = discovering || advancing ? nil : groups![g].first
                var recording = discovering
                var sequence: [(String, UnsafePointer<Float>)] = []
                var hessian = Gram()
                model.linearInputObserver = { name, x, rows, cols in
                    if recording, name.hasPrefix(prefix) { sequence.append((name, x)) }
                    let wanted = target ?? (discovering ? self.firstTarget(in: sequence) : nil)
                    if let wanted, name == wanted { hessian.add(x, rows: rows, cols: cols) }
                }
                progress(
                    "blk.\(l) " + (discovering ? "pass 1" : advancing ? "advance" : groups![g].map(Self.short).joined(separator: "+")),
                    l, layers + 1)
                var next: [[Float]] = []
                for (c, chunk) in chunks.enumerated() {
                    let out = try model.residualStream(tokens: chunk, layers: l..<(l + 1), from: streams[c])
                    if advancing { next.append(out) }
                    recording = false
                }
                if advancing {
                    streams = next
                    break
                }
                if discovering {
                    groups = groupsOf(sequence)
                    if groups!.isEmpty { continue }
                }
                try quantize(groups![g], hessian: &hessian)
                g += 1
            }
        }
        // The output head.
        let head = model.graph["output.weight"] != nil ? "output.weight" : "token_embd.weight"
        if targets[head] != nil {
            progress("output head", layers, layers + 1)
            var hessian = Gram()
            model.linearInputObserver = { name, x, rows, cols in
                if name == head { hessian.add(x, rows: rows, cols: cols) }
            }
            for (c, chunk) in chunks.enumerated() {
                _ = try model.logits(tokens: chunk, outputRows: 0..<chunk.count, fromLayer: layers, input: streams[c])
            }
            try quantize([head], hessian: &hessian)
        }
        progress("done", layers + 1, layers + 1)
    }

    /// `blk.3.attn_q.weight` → `attn_q`.
    static func short(_ name: String) -> String {
        var parts = name.split(separator: ".")
        if parts.last == "weight" { parts.removeLast() }
        return String(parts.last ?? Substring(name))
    }

    /// XᵀX summed over calls (upper triangle until `symmetrized`).
    struct Gram {
        var values: [Float] = []
        var columns = 0

        mutating func add(_ x: UnsafePointer<Float>, rows: Int, cols: Int) {
            if values.isEmpty {
                columns = cols
                values = [Float](repeating: 0, count: cols * cols)
            }
            guard cols == columns else { return }
            values.withUnsafeMutableBufferPointer { BLAS.gramAccumulate(x, rows: rows, n: cols, into: $0.baseAddress!) }
        }
    }

    /// The first weight of the sequence seen so far that is a target (the first pass gathers the
    /// first group's Hessian while it discovers the groups).
    private func firstTarget(in sequence: [(String, UnsafePointer<Float>)]) -> String? {
        sequence.first { targets[$0.0] != nil }?.0
    }

    /// Consecutive calls reading the same input buffer form a group; groups without targets drop.
    private func groupsOf(_ sequence: [(String, UnsafePointer<Float>)]) -> [[String]] {
        var groups: [[String]] = []
        var last: UnsafePointer<Float>?
        for (name, x) in sequence {
            if let last, last == x, !groups.isEmpty {
                groups[groups.count - 1].append(name)
            } else {
                groups.append([name])
            }
            last = x
        }
        return groups.map { $0.filter { targets[$0] != nil } }.filter { !$0.isEmpty }
    }

    /// Quantizes every weight of a group with the group's Hessian, and overrides its values.
    func quantize(_ group: [String], hessian gram: inout Gram, override: Bool = true) throws {
        guard !gram.values.isEmpty else { return }
        let columns = gram.columns
        gram.values.withUnsafeMutableBufferPointer { BLAS.symmetrize($0.baseAddress!, n: columns) }
        let hessian = gram.values
        for name in group {
            guard let dtype = targets[name], let t = model.graph[name] else { continue }
            let rows = t.shape.first ?? 0
            guard t.shape.count == 2, t.shape[1] == columns else {
                throw CalibrationError.numerical(tensor: name, reason: "shape \(t.shape) does not take \(columns) inputs")
            }
            let w = try f32Values(t)
            if let matrixQuantizer {
                let values = try matrixQuantizer(name, w, rows, columns, hessian)
                relativeErrors[name] = GPTQ.relativeError(original: w, quantized: values, rows: rows, cols: columns, hessian: hessian)
                if override { try model.overrideWeight(name, values: values) }
                continue
            }
            let tiedWeighted = isTiedEmbedding(name) && !options.walkTiedEmbedding
                ? try weightedRounding(w, rows: rows, cols: columns, hessian: hessian, dtype: dtype) : nil
            let (blocks, values) = try tiedWeighted ?? w.withUnsafeBufferPointer { wp in
                try hessian.withUnsafeBufferPointer { hp in
                    try GPTQ.quantize(
                        wp.baseAddress!, rows: rows, cols: columns, hessian: hp.baseAddress!, dtype: dtype, options: options,
                        name: name)
                }
            }
            relativeErrors[name] = GPTQ.relativeError(original: w, quantized: values, rows: rows, cols: columns, hessian: hessian)
            if compareWithRTN {
                let rtn = try w.withUnsafeBufferPointer { wp in
                    try Quantize.rows(dtype, wp).withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
                }
                rtnRelativeErrors[name] = GPTQ.relativeError(original: w, quantized: rtn, rows: rows, cols: columns, hessian: hessian)
            }
            results[name] = blocks
            if override { try model.overrideWeight(name, values: values) }
        }
    }

    /// `token_embd.weight` when there is no `output.weight`: one matrix read two ways, as the
    /// output head (what its Hessian describes) and row by row as the input embedding.
    func isTiedEmbedding(_ name: String) -> Bool {
        name == "token_embd.weight" && model.graph["output.weight"] == nil
    }

    /// With `walkTiedEmbedding` off, a tied embedding is rounded by the type's importance-weighted
    /// encoder, importance = the head's Hessian diagonal (what an importance matrix holds for it),
    /// instead of by the walk: the walk moves each value's rounding error onto the later columns
    /// of its row, which lowers the head's output error on the calibration inputs but is error,
    /// uncompensated, wherever the row is looked up as a token's input vector. Measured on Gemma 3
    /// 270M (token_embd, 168 M of its 268 M parameters, at Q5_1 in a budgeted mix): walked, mean
    /// KLD 0.0090 with a long tail (max 5.1); this rounding, 0.0078 (max 0.75). On SmolLM2-135M
    /// all-Q4_0 the walk wins (0.182 vs 0.208), so it stays the default (`--gptq-tied-embedding`).
    /// Nil when the type has no encoder outside the walk (then the walk runs).
    func weightedRounding(_ w: [Float], rows: Int, cols: Int, hessian: [Float], dtype: DType) throws -> ([UInt8], [Float])? {
        let importance = (0..<cols).map { max(0, hessian[$0 * cols + $0]) }
        var blocks: [UInt8]
        do {
            blocks = try w.withUnsafeBufferPointer { try Quantize.rows(dtype, $0) }
        } catch QuantizationError.noEncoder {
            return nil
        }
        do {
            try w.withUnsafeBufferPointer { wp in
                try importance.withUnsafeBufferPointer { ip in
                    try blocks.withUnsafeMutableBytes {
                        try Quantize.weightedRows(dtype, wp.baseAddress!, rows: rows, rowLength: cols, importance: ip.baseAddress!,
                                                  into: $0.baseAddress!)
                    }
                }
            }
        } catch QuantizationError.noEncoder {}  // no weighted encoder: round to nearest
        return (blocks, try blocks.withUnsafeBytes { try Dequantize.toF32(dtype, $0) })
    }

    func f32Values(_ t: Tensor) throws -> [Float] {
        let f = try t.dtype == .f32 ? t : (Tensor.castableTypes.contains(t.dtype) ? t.cast(to: .f32) : t.dequantized(to: .f32))
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBytes { try f.storage.read(offset: 0, into: $0) }
        return out
    }
}

extension GPTQ {
    /// tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) with ΔW = W − Ŵ: the squared output error on the calibration
    /// inputs relative to the output's squared norm (H = XᵀX, symmetric).
    public static func relativeError(original w: [Float], quantized q: [Float], rows: Int, cols: Int, hessian: [Float]) -> Double {
        var dw = [Float](repeating: 0, count: w.count)
        for i in 0..<w.count { dw[i] = w[i] - q[i] }
        func quadratic(_ a: [Float]) -> Double {
            var prod = [Float](repeating: 0, count: rows * cols)
            a.withUnsafeBufferPointer { ap in
                hessian.withUnsafeBufferPointer { hp in
                    prod.withUnsafeMutableBufferPointer { pp in
                        BLAS.sgemm(m: rows, n: cols, k: cols, a: ap.baseAddress!, b: hp.baseAddress!, c: pp.baseAddress!)
                    }
                }
            }
            var s = 0.0
            for i in 0..<a.count { s += Double(prod[i]) * Double(a[i]) }
            return s
        }
        let den = quadratic(w)
        return den > 0 ? quadratic(dw) / den : 0
    }
}
