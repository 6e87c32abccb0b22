import Formats
import TensorGraph

/// Llama (and Mistral, SmolLM2): RMSNorm, rotary positions, grouped-query attention, SwiGLU MLP.
/// llama.cpp permutes the Q/K rows so each rotary pair is adjacent (the table's
/// `rope_permute_q/k`), so the pass rotates interleaved pairs.
public struct Llama: DecoderArchitecture {
    public static let name = "llama"

    public var decoder: DecoderConfig

    public init(from decoder: Decoder) throws {
        // transformers' LlamaConfig defaults.
        self.decoder = try DecoderConfig(
            ConfigReader(decoder, architecture: Self.name), defaults: .init(contextLength: 2048, ropeTheta: 10000, rmsNormEps: 1e-6))
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        try decoder.encode(&w)
    }

    public func forwardPlan() throws -> ForwardPlan {
        try decoder.plan(rope: .interleaved).validated(keys: DecoderConfig.keyNames)
    }

}
