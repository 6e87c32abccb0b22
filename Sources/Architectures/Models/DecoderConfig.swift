import Formats
import TensorGraph

/// The numbers every Llama-style decoder states (Llama, Qwen2, Qwen3), under transformers' key
/// names, shared by those units. Defaults where a key is absent: key/value heads = attention
/// heads, head size = hidden ÷ heads (as llama.cpp assumes for a GGUF without
/// `attention.key_length`), the rest per architecture.
public struct DecoderConfig: Sendable, Equatable {
    /// `max_position_embeddings`.
    public var contextLength: Int
    /// `hidden_size`.
    public var embedding: Int
    /// `num_hidden_layers`.
    public var layers: Int
    /// `intermediate_size`.
    public var feedForward: Int?
    /// `num_attention_heads`.
    public var heads: Int
    /// `num_key_value_heads`.
    public var kvHeads: Int
    /// `head_dim`.
    public var headDim: Int
    /// `rope_theta` (top level, or under `rope_parameters` / `rope_scaling`).
    public var ropeTheta: Double
    /// `rms_norm_eps`.
    public var rmsNormEps: Double
    /// `vocab_size`.
    public var vocabSize: Int?

    public struct Defaults {
        public var contextLength: Int
        public var ropeTheta: Double
        public var rmsNormEps: Double
    }

    public init(_ r: ConfigReader, defaults: Defaults) throws {
        contextLength = try r.int("max_position_embeddings") ?? defaults.contextLength
        embedding = try r.require("hidden_size")
        layers = try r.require("num_hidden_layers")
        feedForward = try r.int("intermediate_size")
        heads = try r.require("num_attention_heads")
        kvHeads = try r.int("num_key_value_heads") ?? heads
        guard kvHeads > 0 else { throw ArchitectureError.badConfig(key: "num_key_value_heads", reason: "must be positive, not \(kvHeads)") }
        if let d = try r.int("head_dim") {
            headDim = d
        } else {
            guard embedding % heads == 0 else {
                throw ArchitectureError.badConfig(key: "num_attention_heads", reason: "\(heads) heads do not divide hidden_size \(embedding) and head_dim is not stated")
            }
            headDim = embedding / heads
        }
        ropeTheta = try r.ropeParameters()?.double("rope_theta") ?? r.double("rope_theta") ?? defaults.ropeTheta
        rmsNormEps = try r.double("rms_norm_eps") ?? defaults.rmsNormEps
        vocabSize = try r.int("vocab_size")
    }

    public func encode(_ w: inout ConfigWriter) throws {
        try w.put("max_position_embeddings", contextLength)
        try w.put("hidden_size", embedding)
        try w.put("num_hidden_layers", layers)
        try w.put("intermediate_size", feedForward)
        try w.put("num_attention_heads", heads)
        try w.put("num_key_value_heads", kvHeads)
        try w.put("head_dim", headDim)
        try w.put("rope_theta", ropeTheta)
        try w.put("rms_norm_eps", rmsNormEps)
        try w.put("vocab_size", vocabSize)
    }

    /// RMSNorm, rotary positions over whole heads, grouped-query attention, SwiGLU.
    public func plan(rope: ForwardPlan.Rope) -> ForwardPlan {
        var p = ForwardPlan(
            embedding: embedding, layers: layers, heads: heads, kvHeads: kvHeads, headDim: headDim, valueDim: headDim,
            contextLength: contextLength, norm: .rms, normEps: Float(rmsNormEps))
        p.rope = rope
        p.ropeDims = headDim
        p.ropeBase = ropeTheta
        return p
    }

    /// Plan fields → config keys, for error messages.
    public static let keyNames = ["kvHeads": "num_key_value_heads", "ropeDims": "head_dim", "headDim": "head_dim"]

    /// config.json's `attention_bias`: whether the GGUF has Q biases.
    static func attentionBias(_ gguf: TensorGraph) -> (String, JSONValue) {
        ("attention_bias", .bool(gguf.tensors.contains { $0.name.hasSuffix("attn_q.bias") }))
    }
}
