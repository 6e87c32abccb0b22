/// What an architecture's forward pass is made of, as its unit states it; the evaluator builds
/// the pass from shared blocks (norms, rotary variants, attention, MLPs) following it. Tensor
/// names are GGUF's (`blk.N.attn_q.weight`, …); optional tensors (biases) are used when present.
public struct ForwardPlan: Sendable, Equatable {
    public enum Norm: Sendable, Equatable {
        /// x / rms(x) · w
        case rms
        /// (x − mean) / sd · w + b
        case layer
    }

    /// How rotary pairs sit in a head's rows.
    public enum Rope: Sendable, Equatable {
        /// Pairs (2i, 2i+1): llama.cpp permutes Llama's Q/K rows into this layout.
        case interleaved
        /// Pairs (i, i + n/2) (rotate-half, GPT-NeoX layout): the rows as Hugging Face has them.
        case neox
    }

    public enum Activation: Sendable, Equatable {
        case silu
        /// GELU, tanh approximation.
        case geluTanh
    }

    public var embedding: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    /// Size of a query/key head (`attention.key_length`).
    public var headDim: Int
    /// Size of a value head (`attention.value_length`).
    public var valueDim: Int
    public var contextLength: Int

    public var norm: Norm
    public var normEps: Float

    /// Learned absolute positions (`position_embd.weight`) added to the embeddings.
    public var learnedPositions = false
    /// Rotary positions on Q and K, or none.
    public var rope: Rope?
    /// Leading dimensions of each head that rotate.
    public var ropeDims = 0
    public var ropeBase = 10000.0
    /// A tensor of per-frequency divisors (`rope_freqs.weight`, Llama 3), used when the model has it.
    public var ropeFreqFactors: String?
    /// Linear scaling: positions divided by this.
    public var ropeLinearFactor = 1.0
    /// YaRN scaling: its own frequencies, cos and sin scaled by its attention factor.
    public var ropeYarn: RopeScaling?

    /// One `attn_qkv` projection instead of `attn_q` / `attn_k` / `attn_v`.
    public var fusedQKV = false
    /// RMSNorm over each head of Q and K (`attn_q_norm` / `attn_k_norm`, one head's worth of
    /// weights) before the rotation.
    public var qkNorm = false

    /// Embeddings multiplied by this (Gemma: √embedding).
    public var embeddingScale: Float?
    /// Norms after attention and after the MLP too (`post_attention_norm`, `post_ffw_norm`),
    /// applied to the block's output before it joins the residual stream.
    public var sandwichNorms = false
    /// Attention scores × this; 1/√headDim when nil.
    public var attentionScale: Float?
    /// Sliding-window attention: a query sees the last `slidingWindow` positions (itself
    /// included) on the layers `slidingLayers` marks; those layers rotate with `localRopeBase`
    /// and without scaling.
    public var slidingWindow: Int?
    public var slidingLayers: [Bool] = []
    public var localRopeBase: Double?
    /// Logits ← tanh(logits / cap) · cap.
    public var finalLogitSoftcap: Float?

    /// gate(x) ⊙ up(x) → down (`ffn_gate`, `ffn_up`, `ffn_down`) or up → act → down.
    public var gatedMLP = true
    public var activation: Activation = .silu
    /// Gate and up as the two halves of one `ffn_up` projection (gate first), as Phi-3 has them.
    public var fusedGateUp = false
    /// LongRoPE: per-frequency divisors from the tensor `ropeFactorsLong` when the sequence is
    /// longer than `ropeLongAfter` tokens, else from `ropeFactorsShort`; cos and sin × `ropeScale`.
    public var ropeFactorsLong: String?
    public var ropeFactorsShort: String?
    public var ropeLongAfter = Int.max
    public var ropeScale: Float = 1

    /// The norm before the feed-forward block (`blk.N.<name>.weight`): `ffn_norm`, or
    /// `post_attention_norm` where llama.cpp names it so (gpt-oss).
    public var ffnNorm = "ffn_norm"
    /// Per-head attention sinks (`attn_sinks.weight`, one logit per head) that enter only the
    /// softmax denominator.
    public var attentionSinks = false
    /// A mixture of experts instead of the dense MLP (every layer), or nil.
    public var experts: MixtureOfExperts?

    /// A mixture-of-experts feed-forward block: a router (`ffn_gate_inp.weight`, `.bias` when
    /// present) scores every expert per token, the top `used` are chosen, their weights come from
    /// a softmax, and each chosen expert (`ffn_gate_exps`, `ffn_up_exps`, `ffn_down_exps`:
    /// [experts, rows, columns], biases [experts, rows] when present) runs its gated MLP; the
    /// outputs are summed with those weights.
    public struct MixtureOfExperts: Sendable, Equatable {
        public enum Activation: Sendable, Equatable {
            /// silu(gate) · up.
            case swiglu
            /// gpt-oss: g = min(gate, limit), u = clamp(up, ±limit), g · σ(alpha · g) · (u + 1).
            case clampedSwiGLU(alpha: Float, limit: Float)
        }

        public var experts: Int
        public var used: Int
        /// true: softmax over the chosen experts' logits (gpt-oss; Mixtral and Qwen3-MoE with
        /// `norm_topk_prob`, which renormalize the chosen probabilities: the same values); false:
        /// the chosen experts' probabilities of the softmax over all experts.
        public var normalizeChosen = true
        public var activation: Activation = .swiglu

        public init(experts: Int, used: Int, normalizeChosen: Bool = true, activation: Activation = .swiglu) {
            self.experts = experts
            self.used = used
            self.normalizeChosen = normalizeChosen
            self.activation = activation
        }
    }

    public init(
        embedding: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int, valueDim: Int, contextLength: Int, norm: Norm,
        normEps: Float
    ) {
        self.embedding = embedding
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.valueDim = valueDim
        self.contextLength = contextLength
        self.norm = norm
        self.normEps = normEps
    }

    /// Checks the numbers against each other; the error names the configuration keys in `keys`
    /// (plan field → the architecture's key name).
    public func validated(keys: [String: String]) throws -> ForwardPlan {
        func key(_ f: String) -> String { keys[f] ?? f }
        if heads % kvHeads != 0 {
            throw ArchitectureError.badConfig(
                key: key("kvHeads"), reason: "\(kvHeads) key/value heads do not divide \(heads) attention heads")
        }
        if rope != nil, ropeDims % 2 != 0 || ropeDims > headDim {
            throw ArchitectureError.badConfig(key: key("ropeDims"), reason: "\(ropeDims) rotary dimensions for heads of \(headDim)")
        }
        if fusedQKV, headDim != valueDim {
            throw ArchitectureError.badConfig(key: key("headDim"), reason: "a fused QKV projection needs equal key and value head sizes")
        }
        if let e = experts, e.used < 1 || e.used > e.experts {
            throw ArchitectureError.badConfig(key: key("expertsUsed"), reason: "\(e.used) experts per token out of \(e.experts)")
        }
        return self
    }
}
