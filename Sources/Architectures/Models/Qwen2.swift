import Formats
import TensorGraph

/// Qwen2: Llama's block with biases on Q, K and V, rotary pairs in rotate-half (NeoX) layout
/// (llama.cpp does not permute its rows).
public struct Qwen2: DecoderArchitecture {
    public static let name = "qwen2"

    public var decoder: DecoderConfig

    public init(from decoder: Decoder) throws {
        // transformers' Qwen2Config defaults.
        self.decoder = try DecoderConfig(
            ConfigReader(decoder, architecture: Self.name), defaults: .init(contextLength: 32768, ropeTheta: 10000, rmsNormEps: 1e-6))
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        try decoder.encode(&w)
    }

    public func forwardPlan() throws -> ForwardPlan {
        try decoder.plan(rope: .neox).validated(keys: DecoderConfig.keyNames)
    }

}
