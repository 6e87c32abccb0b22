import Formats
import TensorGraph

/// Qwen3: Qwen2's block without the Q/K/V biases (unless `attention_bias`), an RMSNorm over each
/// head of Q and K before the rotation (`attn_q_norm` / `attn_k_norm`), and a head size of its own
/// (`head_dim`, GGUF `attention.key_length` / `value_length`), not hidden ÷ heads.
public struct Qwen3: DecoderArchitecture {
    public static let name = "qwen3"

    public var decoder: DecoderConfig

    public init(from decoder: Decoder) throws {
        // transformers' Qwen3Config defaults (its head_dim default, 128, applies only to configs
        // without one; a GGUF without key_length means hidden ÷ heads to llama.cpp, and so here).
        self.decoder = try DecoderConfig(
            ConfigReader(decoder, architecture: Self.name), defaults: .init(contextLength: 32768, ropeTheta: 10000, rmsNormEps: 1e-6))
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        try decoder.encode(&w)
    }

    public func forwardPlan() throws -> ForwardPlan {
        var p = decoder.plan(rope: .neox)
        p.qkNorm = true
        return try p.validated(keys: DecoderConfig.keyNames)
    }

}
