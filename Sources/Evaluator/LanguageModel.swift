import Architectures
import Kernels
import TensorGraph

/// A causal language model ready to run: weights in GGUF layout and names, the architecture's
/// forward pass, and the numbers it needs. Each call runs one sequence from position 0 (the way
/// perplexity evaluates independent chunks), all activations in f32.
public final class LanguageModel: @unchecked Sendable {
    public let architecture: String
    public let config: Config
    let weights: Weights
    let threads: Int
    private let forwardPass: ForwardPass

    /// Sees the input of every linear layer before it is multiplied: the weight's GGUF name, the
    /// activations (row-major [rows × columns]), rows and columns. Calibration (importance matrices,
    /// GPTQ Hessians) installs one; `nil` costs nothing.
    public var linearInputObserver: ((_ weight: String, _ x: UnsafePointer<Float>, _ rows: Int, _ columns: Int) -> Void)?

    /// Sees the input of each expert's products in a mixture of experts: the weight's GGUF name
    /// (`blk.N.ffn_up_exps.weight`, …), the expert, the tensor's expert count, and the rows
    /// routed to that expert ([rows × columns]). Experts no token is routed to are not called.
    public var expertInputObserver: ((_ weight: String, _ expert: Int, _ experts: Int, _ x: UnsafePointer<Float>, _ rows: Int, _ columns: Int) -> Void)?

    /// YaRN's correction range rounded to whole dimensions whatever the configuration's
    /// `truncate` says, as llama.cpp computes it (off: as transformers does).
    public var yarnAlwaysRound = false

    /// Replaces a weight's values for later forward passes (GPTQ feeds each layer the outputs of
    /// the already-quantized layers before it). `values` are f32, row-major, the tensor's shape.
    public func overrideWeight(_ name: String, values: [Float]) throws {
        try weights.override(name, values: values)
    }

    /// The threads the model runs on.
    public var threadCount: Int { threads }

    /// Undoes `overrideWeight`: the stored weight is used again.
    public func removeOverride(_ name: String) { weights.removeOverride(name) }

    /// When set, the inputs of products with block-quantized weights are rounded to 8 bits per
    /// 32-value block first (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL weights, Q8_1 for Q4_1/Q5_1), the way
    /// llama.cpp's CPU backend computes them; off, activations stay f32 (the exact model).
    public var quantizeActivations = false

    /// When set, keys and values are rounded to f16 before attention, as llama.cpp's default f16
    /// KV cache stores them.
    public var roundKVToF16 = false

    func roundToF16(_ p: UnsafeMutablePointer<Float>, count: Int) {
        guard roundKVToF16 else { return }
        for i in 0..<count { p[i] = Half.f32(f16Bits: Half.f16Bits(p[i])) }
    }

    /// The graph the model runs (GGUF layout and names).
    public var graph: TensorGraph { weights.graph }

    /// A partial forward pass (calibration runs a model a few layers at a time over a cached
    /// residual stream): run only `layers`, starting from `input` (the stream entering
    /// `layers.lowerBound`, [tokens × embedding]) instead of the embeddings when it is set; with
    /// `head` false stop after them, leaving the stream in `output`.
    struct Span {
        let layers: Range<Int>
        let input: [Float]?
        let head: Bool
        var output: [Float] = []
    }
    var span: Span?

    /// The residual stream after layers `layers` ([tokens × embedding], row-major), from `input`
    /// (the stream entering `layers.lowerBound`) or, when `input` is nil, from the token embeddings
    /// (then `layers` must start at 0). Observers see the linear layers of `layers` only.
    public func residualStream(tokens: [Int32], layers: Range<Int>, from input: [Float]?) throws -> [Float] {
        try checkSpan(tokens: tokens, layers: layers, input: input)
        span = Span(layers: layers, input: input, head: false)
        defer { span = nil }
        _ = try logits(tokens: tokens, outputRows: 0..<tokens.count)
        return span?.output ?? []
    }

    /// Logits for `outputRows`, running layers `layer...` and the output head on `input`, the
    /// residual stream entering layer `layer` (`layer` may be the layer count: the head only).
    public func logits(tokens: [Int32], outputRows: Range<Int>, fromLayer layer: Int, input: [Float]) throws -> [Float] {
        try checkSpan(tokens: tokens, layers: layer..<config.layers, input: input)
        span = Span(layers: layer..<config.layers, input: input, head: true)
        defer { span = nil }
        return try logits(tokens: tokens, outputRows: outputRows)
    }

    private func checkSpan(tokens: [Int32], layers: Range<Int>, input: [Float]?) throws {
        guard layers.lowerBound >= 0, layers.upperBound <= config.layers, input != nil || layers.lowerBound == 0 else {
            throw EvaluatorError.badInput("layers \(layers) of a \(config.layers)-layer model need the stream entering them")
        }
        if let input, input.count != tokens.count * config.embedding {
            throw EvaluatorError.badInput("a residual stream of \(input.count) values for \(tokens.count) tokens of \(config.embedding)")
        }
    }

    /// The start of a forward pass: the span's input stream, or the token embeddings.
    /// Returns the layers to run.
    func beginLayers(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) throws -> (layers: Range<Int>, embedded: Bool) {
        if let input = span?.input {
            input.withUnsafeBufferPointer { x.update(from: $0.baseAddress!, count: $0.count) }
            return (span!.layers, false)
        }
        try embed(tokens, into: x)
        return (span?.layers ?? 0..<config.layers, true)
    }

    /// After the layers: true when the span stops before the head (its output is then kept).
    func endLayers(_ x: UnsafePointer<Float>, count: Int) -> Bool {
        guard let s = span, !s.head else { return false }
        span!.output = Array(UnsafeBufferPointer(start: x, count: count))
        return true
    }

    /// The numbers a forward pass needs, from the architecture unit's plan.
    public struct Config: Sendable {
        public let vocabSize: Int
        public let embedding: Int
        public let layers: Int
        public let heads: Int
        public let kvHeads: Int
        public let headDim: Int
        public let ropeDims: Int
        public let ropeBase: Double
        public let normEps: Float
        public let contextLength: Int
        /// Everything the architecture's forward pass is built from.
        public let plan: ForwardPlan
    }

    /// `graph` must be in GGUF layout and names (`ModelSource.openGGUFLayout` makes one of any
    /// source); its architecture unit, configured from the `{arch}.*` keys, says what the forward
    /// pass is. `threads` bounds the cores used by both OpenBLAS and the element-wise work.
    public init(graph: TensorGraph, threads: Int, cacheDecoded: Bool = false) throws {
        guard let arch = graph.architecture else { throw EvaluatorError.unsupported("the model does not state its architecture") }
        architecture = arch
        let plan = try ArchitectureRegistry.forwardPlan(gguf: graph)
        guard let embd = graph["token_embd.weight"], embd.shape.count == 2 else { throw EvaluatorError.missingTensor(name: "token_embd.weight") }
        config = Config(
            vocabSize: embd.shape[0], embedding: plan.embedding, layers: plan.layers, heads: plan.heads, kvHeads: plan.kvHeads,
            headDim: plan.headDim, ropeDims: plan.ropeDims, ropeBase: plan.ropeBase, normEps: plan.normEps,
            contextLength: plan.contextLength, plan: plan)
        guard embd.shape[1] == plan.embedding else {
            throw EvaluatorError.badShape(tensor: "token_embd.weight", shape: embd.shape, expected: [config.vocabSize, plan.embedding])
        }
        self.threads = max(1, threads)
        weights = Weights(graph: graph, cacheDecoded: cacheDecoded)
        forwardPass = TransformerForward(plan: plan)
    }

    /// Logits for `outputRows` of the sequence `tokens` (row-major [outputRows.count × vocab]).
    public func logits(tokens: [Int32], outputRows: Range<Int>) throws -> [Float] {
        guard !tokens.isEmpty, outputRows.lowerBound >= 0, outputRows.upperBound <= tokens.count else {
            throw EvaluatorError.badInput("output rows \(outputRows) outside a sequence of \(tokens.count) tokens")
        }
        for t in tokens where t < 0 || Int(t) >= config.vocabSize {
            throw EvaluatorError.badInput("token id \(t) is outside the vocabulary of \(config.vocabSize)")
        }
        // OpenBLAS runs single-threaded inside our own threads: its worker threads spin between
        // calls and fight the element-wise work for the cores otherwise.
        BLAS.setThreads(1)
        return try forwardPass.run(self, tokens: tokens, outputRows: outputRows)
    }

    // MARK: building blocks shared by the architectures

    /// out[rows × outDim] = x[rows × inDim] · Wᵀ (+ bias), W stored [outDim × inDim].
    func linear(_ x: UnsafePointer<Float>, rows: Int, weight: String, bias: String? = nil, out: UnsafeMutablePointer<Float>) throws {
        let w = try weights.tensor(weight)
        guard w.shape.count == 2 else { throw EvaluatorError.badShape(tensor: weight, shape: w.shape, expected: [0, 0]) }
        let (outDim, inDim) = (w.shape[0], w.shape[1])
        linearInputObserver?(weight, x, rows, inDim)
        var rounded: Buffer?
        if quantizeActivations, let scheme = ActivationRounding.scheme(for: w.dtype) {
            let b = Buffer(rows * inDim)
            ActivationRounding.apply(scheme, x, b.p, count: rows * inDim)
            rounded = b
        }
        let x = UnsafePointer(rounded?.p) ?? x
        if weights.decodesInTiles(weight, bytes: outDim * inDim * 4) {
            // A large matrix that must be decoded (a big-vocabulary output head in bf16, say):
            // a block of its rows at a time, each product writing those output columns.
            let tile = max(64, Weights.tileBytes / (inDim * 4))
            for o0 in stride(from: 0, to: outDim, by: tile) {
                let o1 = min(outDim, o0 + tile)
                try Profile.measure("weights") {
                    try weights.withRowsF32(weight, rows: o0..<o1) { wp in
                        Profile.measure("sgemm") {
                            BLAS.parallelSgemm(m: rows, n: o1 - o0, k: inDim, a: x, lda: inDim, b: wp, ldb: inDim,
                                               c: out + o0, ldc: outDim, transposeB: true, threads: threads)
                        }
                    }
                }
            }
        } else {
            try Profile.measure("weights") {
                try weights.withF32(weight) { wp in
                    Profile.measure("sgemm") {
                        // Tiles of the output over the threads, each a single-threaded sgemm.
                        BLAS.parallelSgemm(m: rows, n: outDim, k: inDim, a: x, lda: inDim, b: wp, ldb: inDim,
                                           c: out, ldc: outDim, transposeB: true, threads: threads)
                    }
                }
            }
        }
        if let bias, weights.has(bias) {
            try weights.withF32(bias) { Ops.addBias(out, $0, rows: rows, dim: outDim) }
        }
    }

    /// Causal multi-head attention with grouped key/value heads. q rows have `qStride` floats,
    /// k rows `kStride`, v rows `vStride`; head h reads key/value head h / (heads / kvHeads).
    /// Query/key heads have `headDim` values, value heads `valueDim`. The result for head h goes
    /// to columns h·valueDim of `out` (rows of `outStride`). Scores are scaled by `scale`
    /// (1/√headDim by default); with a `window` a query sees only the last `window` positions;
    /// `sinks` (one logit per head) join each softmax's denominator.
    func attention(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, kStride: Int, v: UnsafePointer<Float>,
                   vStride: Int, rows: Int, heads: Int, kvHeads: Int, headDim: Int, valueDim: Int,
                   out: UnsafeMutablePointer<Float>, outStride: Int, scale: Float? = nil, window: Int? = nil,
                   sinks: UnsafePointer<Float>? = nil) {
        let group = heads / kvHeads
        let scale = scale ?? 1 / Float(headDim).squareRoot()
        Profile.measure("attention") {
            // Causal: a block of queries [r0, r1) only needs keys [0, r1), so the products skip
            // most of the masked upper triangle. Every (head, query block) pair is independent:
            // they are spread over the threads, so all cores stay busy whatever the head count
            // (9 heads on 2 threads would otherwise leave one idle a ninth of the time).
            let blocks = (rows + Self.attentionBlock - 1) / Self.attentionBlock
            let scratch = Ops.PerThreadScratch(count: threads, capacity: Self.attentionBlock * rows)
            Ops.parallelItems(heads * blocks, threads: threads) { item, worker in
                // Later blocks see more keys: hand them out first so the tail is short.
                let h = item % heads, b = blocks - 1 - item / heads
                let g = h / group
                let r0 = b * Self.attentionBlock, r1 = min(rows, r0 + Self.attentionBlock)
                let m = r1 - r0
                let scores = scratch.buffer(worker)
                BLAS.sgemm(m: m, n: r1, k: headDim, a: q + r0 * qStride + h * headDim, lda: qStride,
                           b: k + g * headDim, ldb: kStride, c: scores, ldc: r1, transposeB: true)
                Ops.causalSoftmax(scores, rows: m, cols: r1, firstRow: r0, scale: scale, window: window, sink: sinks?[h])
                BLAS.sgemm(m: m, n: valueDim, k: r1, a: scores, lda: r1, b: v + g * valueDim, ldb: vStride,
                           c: out + r0 * outStride + h * valueDim, ldc: outStride, transposeB: false)
            }
        }
    }

    /// Queries per attention block (see `attention`).
    static let attentionBlock = 64

    /// Rows of the embedding table for `tokens`.
    func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) throws {
        let e = config.embedding
        if let mapped = try? weights.tensor("token_embd.weight"), mapped.dtype == .f32 {
            try weights.withF32("token_embd.weight") { table in
                for (i, t) in tokens.enumerated() { (x + i * e).update(from: table + Int(t) * e, count: e) }
            }
            return
        }
        for (i, t) in tokens.enumerated() { try weights.row("token_embd.weight", Int(t), into: x + i * e) }
    }

    /// The output head: `output.weight`, or the token embedding when the head is tied.
    var outputWeight: String { weights.has("output.weight") ? "output.weight" : "token_embd.weight" }
}

/// One architecture's forward pass.
protocol ForwardPass: Sendable {
    func run(_ m: LanguageModel, tokens: [Int32], outputRows: Range<Int>) throws -> [Float]
}

/// A scratch f32 buffer that frees itself.
final class Buffer {
    let p: UnsafeMutablePointer<Float>
    let count: Int
    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))
    }
    deinit { p.deallocate() }
}
