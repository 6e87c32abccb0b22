import Formats
import TensorGraph

/// GPT-2: learned positions, LayerNorm, one fused QKV projection with biases, GELU (tanh) MLP,
/// output head tied to the embedding (GGUF holds it as `output.weight`, a copy). Conv1D weights
/// are stored [in, out] by Hugging Face (the table's `transpose`).
public struct GPT2: Architecture {
    public static let name = "gpt2"

    /// `n_positions` (transformers' default 1024).
    public var contextLength: Int
    /// `n_embd`.
    public var embedding: Int
    /// `n_layer`.
    public var layers: Int
    /// `n_inner`; null means 4 × `n_embd`.
    public var feedForward: Int
    /// `n_head`.
    public var heads: Int
    /// `layer_norm_epsilon` (1e-5).
    public var layerNormEpsilon: Double
    /// `vocab_size`.
    public var vocabSize: Int?

    public init(from decoder: Decoder) throws {
        let r = try ConfigReader(decoder, architecture: Self.name)
        contextLength = try r.int("n_positions") ?? 1024
        embedding = try r.require("n_embd")
        layers = try r.require("n_layer")
        heads = try r.require("n_head")
        feedForward = try r.int("n_inner") ?? 4 * embedding
        layerNormEpsilon = try r.double("layer_norm_epsilon") ?? 1e-5
        vocabSize = try r.int("vocab_size")
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        try w.put("n_positions", contextLength)
        try w.put("n_embd", embedding)
        try w.put("n_layer", layers)
        try w.put("n_inner", feedForward)
        try w.put("n_head", heads)
        try w.put("layer_norm_epsilon", layerNormEpsilon)
        try w.put("vocab_size", vocabSize)
    }

    public func forwardPlan() throws -> ForwardPlan {
        guard embedding % heads == 0 else {
            throw ArchitectureError.badConfig(key: "n_head", reason: "\(heads) heads do not divide n_embd \(embedding)")
        }
        var p = ForwardPlan(
            embedding: embedding, layers: layers, heads: heads, kvHeads: heads, headDim: embedding / heads,
            valueDim: embedding / heads, contextLength: contextLength, norm: .layer, normEps: Float(layerNormEpsilon))
        p.learnedPositions = true
        p.fusedQKV = true
        p.gatedMLP = false
        p.activation = .geluTanh
        return try p.validated(keys: [:])
    }

    public func hfConfigExtras(gguf: TensorGraph) -> [(String, JSONValue)] {
        [("n_ctx", .int(contextLength)), ("activation_function", .string(Self.table.hfActivation))]
    }
}
