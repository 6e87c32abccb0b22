import Formats
import TensorGraph

/// Qwen3-MoE: Qwen3's attention (per-head Q/K norms, NeoX rotary pairs, head_dim of its own) with
/// a mixture of experts in every layer: a router without bias (`mlp.gate`), top-k of the softmax
/// over all experts, renormalized over the chosen ones when `norm_topk_prob` (llama.cpp always
/// renormalizes), SwiGLU experts without biases. The checkpoint holds one tensor per expert,
/// stacked into `ffn_*_exps` by the table's `expert_stacks`. The MoE block is the shared one
/// (`ForwardPlan.MixtureOfExperts`), as gpt-oss uses it.
public struct Qwen3Moe: DecoderArchitecture {
    public static let name = "qwen3moe"

    public var decoder: DecoderConfig
    /// `num_experts` (transformers also writes it as `num_local_experts`; default 128).
    public var experts: Int
    /// `num_experts_per_tok` (8).
    public var expertsUsed: Int
    /// `moe_intermediate_size` (768).
    public var expertFeedForward: Int
    /// `norm_topk_prob`: absent, as from GGUF (which has no key for it), counts as true, the
    /// way llama.cpp computes every qwen3moe model and every released Qwen3-MoE states it
    /// (transformers' own default is false: a config.json that wants false states it).
    public var normTopKProb: Bool?

    public init(from decoder: Decoder) throws {
        let r = try ConfigReader(decoder, architecture: Self.name)
        self.decoder = try DecoderConfig(r, defaults: .init(contextLength: 32768, ropeTheta: 10000, rmsNormEps: 1e-6))
        experts = try r.int("num_experts") ?? r.int("num_local_experts") ?? 128
        expertsUsed = try r.int("num_experts_per_tok") ?? 8
        expertFeedForward = try r.int("moe_intermediate_size") ?? 768
        normTopKProb = try r.bool("norm_topk_prob")
        // llama.cpp's qwen3moe has experts in every layer.
        if let step = try r.int("decoder_sparse_step"), step != 1 {
            throw ArchitectureError.badConfig(key: "decoder_sparse_step", reason: "\(step): only models with experts in every layer (1) are supported, as in llama.cpp")
        }
        if r.has("mlp_only_layers"), try !r.c.decode([Int].self, forKey: .init("mlp_only_layers")).isEmpty {
            throw ArchitectureError.badConfig(key: "mlp_only_layers", reason: "dense layers among the expert layers are not supported, as in llama.cpp")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        try decoder.encode(&w)
        try w.put("num_experts", experts)
        try w.put("num_experts_per_tok", expertsUsed)
        try w.put("moe_intermediate_size", expertFeedForward)
        if !w.forGGUF { try w.put("norm_topk_prob", normTopKProb ?? true) }
    }

    public func forwardPlan() throws -> ForwardPlan {
        var p = decoder.plan(rope: .neox)
        p.qkNorm = true
        p.experts = ForwardPlan.MixtureOfExperts(experts: experts, used: expertsUsed, normalizeChosen: normTopKProb ?? true, activation: .swiglu)
        return try p.validated(keys: DecoderConfig.keyNames.merging(["expertsUsed": "num_experts_per_tok"]) { a, _ in a })
    }
}
