import Formats
import TensorGraph

/// gpt-oss (OpenAI): a mixture-of-experts decoder. Attention with Q/K/V/O biases, a learned sink
/// logit per head (`attn_sinks.weight`), sliding-window layers alternating with full ones (layer
/// 0 sliding), YaRN rotary positions in the NeoX layout (no Q/K permutation); a router (weight and
/// bias, top-k then softmax over the chosen logits) over experts whose gate and up projections
/// are one interleaved tensor in the checkpoint, with the clamped SwiGLU (`swiglu_alpha`,
/// `swiglu_limit`, `up + 1`).
///
/// Conversion: the expert tensors map through the table's `tensor_groups` (`TensorGroups`): the
/// MXFP4 pairs (`*_blocks` + `*_scales`) become ggml MXFP4 tensors with the codes and exponent
/// bytes moved unchanged, the bf16 form is transposed and de-interleaved, and the
/// `gate_up_proj_bias` is split, as llama.cpp's converter does.
public struct GptOss: Architecture {
    public static let name = "gpt-oss"

    public var decoder: DecoderConfig
    /// `num_local_experts` (transformers' default 128).
    public var experts: Int
    /// `num_experts_per_tok` (4).
    public var expertsUsed: Int
    /// `sliding_window` (128).
    public var slidingWindow: Int
    /// Which layers use the sliding window: `layer_types`, else every even layer (llama.cpp's
    /// pattern for gpt-oss, and transformers' default).
    public var slidingLayers: [Bool]
    /// `swiglu_alpha` (1.702) and `swiglu_limit` (7).
    public var swigluAlpha: Double
    public var swigluLimit: Double

    public init(from decoder: Decoder) throws {
        let r = try ConfigReader(decoder, architecture: Self.name)
        var d = try DecoderConfig(r, defaults: .init(contextLength: 131072, ropeTheta: 150000, rmsNormEps: 1e-5))
        if try r.int("head_dim") == nil { d.headDim = 64 }  // GptOssConfig's default
        if try r.ropeParameters() == nil {
            // GptOssConfig's default rope_parameters.
            d.ropeScaling = RopeScaling(kind: .yarn, factor: 32, originalContext: 4096, betaFast: 32, betaSlow: 1, truncate: false)
            d.ropeParametersLayout = true
        }
        self.decoder = d
        experts = try r.int("num_local_experts") ?? 128
        expertsUsed = try r.int("num_experts_per_tok") ?? 4
        guard experts > 0, expertsUsed > 0, expertsUsed <= experts else {
            throw ArchitectureError.badConfig(key: "num_experts_per_tok", reason: "\(expertsUsed) experts per token of \(experts)")
        }
        slidingWindow = try r.int("sliding_window") ?? 128
        if r.has("layer_types") {
            let types = try r.c.decode([String].self, forKey: .init("layer_types"))
            guard types.count == d.layers else {
                throw ArchitectureError.badConfig(key: "layer_types", reason: "\(types.count) entries for \(d.layers) layers")
            }
            slidingLayers = types.map { $0 == "sliding_attention" }
        } else {
            slidingLayers = (0..<d.layers).map { $0 % 2 == 0 }
        }
        swigluAlpha = try r.double("swiglu_alpha") ?? 1.702
        swigluLimit = try r.double("swiglu_limit") ?? 7
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        try decoder.encode(&w)
        try w.put("num_local_experts", experts)
        try w.put("num_experts_per_tok", expertsUsed)
        try w.put("sliding_window", slidingWindow)
        if !w.forGGUF {
            try w.put("layer_types", slidingLayers.map { $0 ? "sliding_attention" : "full_attention" })
            try w.put("swiglu_alpha", swigluAlpha)
            try w.put("swiglu_limit", swigluLimit)
        }
    }

    /// The forward pass: `GptOssForward.swift`.
    public func forwardPlan() throws -> ForwardPlan { try plannedForward() }

    public func hfConfigExtras(gguf: TensorGraph) -> [(String, JSONValue)] {
        [("hidden_act", .string(Self.table.hfActivation)), DecoderConfig.attentionBias(gguf)]
    }

    /// GGUF has no key for YaRN's `truncate`; gpt-oss's configuration states false (llama.cpp
    /// ignores it), so a configuration made from GGUF keys says false too.
    public mutating func restore(fromGGUF graph: TensorGraph) throws -> Set<String> {
        if decoder.ropeScaling?.kind == .yarn, decoder.ropeScaling?.truncate == nil { decoder.ropeScaling?.truncate = false }
        // transformers 5 keeps the rotary parameters under rope_parameters.
        decoder.ropeParametersLayout = true
        try ExpertChecks.check(graph, hidden: decoder.embedding, ffn: decoder.feedForward, experts: experts, ggufNames: true)
        return []
    }

    /// No generated tensors; checks that the expert tensors agree with each other and with the
    /// configuration before anything is written.
    public func generatedTensors(hf: TensorGraph) throws -> [Tensor] {
        try ExpertChecks.check(hf, hidden: decoder.embedding, ffn: decoder.feedForward, experts: experts, ggufNames: false)
        return []
    }
}

/// The expert tensors of a gpt-oss checkpoint, checked against each other and the configuration
/// before anything is written: the router scores exactly the model's experts, and every expert
/// tensor holds that many experts with the shape hidden and ffn sizes give it.
enum ExpertChecks {
    static func check(_ g: TensorGraph, hidden h: Int, ffn f: Int?, experts e: Int, ggufNames: Bool) throws {
        // Name suffix → expected shape (nil entries: not checked).
        var expected: [(String, [Int]?)] = ggufNames ? [
            ("ffn_gate_inp.weight", [e, h]), ("ffn_gate_inp.bias", [e]),
            ("ffn_gate_exps.weight", f.map { [e, $0, h] }), ("ffn_up_exps.weight", f.map { [e, $0, h] }),
            ("ffn_down_exps.weight", f.map { [e, h, $0] }),
            ("ffn_gate_exps.bias", f.map { [e, $0] }), ("ffn_up_exps.bias", f.map { [e, $0] }), ("ffn_down_exps.bias", [e, h]),
        ] : [
            ("mlp.router.weight", [e, h]), ("mlp.router.bias", [e]),
            ("mlp.experts.gate_up_proj", f.map { [e, h, 2 * $0] }), ("mlp.experts.down_proj", f.map { [e, $0, h] }),
            ("mlp.experts.gate_up_proj_bias", f.map { [e, 2 * $0] }), ("mlp.experts.down_proj_bias", [e, h]),
        ]
        if !ggufNames, h % 32 == 0 {
            expected.append(("mlp.experts.gate_up_proj_blocks", f.map { [e, 2 * $0, h / 32, 16] }))
            expected.append(("mlp.experts.gate_up_proj_scales", f.map { [e, 2 * $0, h / 32] }))
        }
        if !ggufNames, let f, f % 32 == 0 {
            expected.append(("mlp.experts.down_proj_blocks", [e, h, f / 32, 16]))
            expected.append(("mlp.experts.down_proj_scales", [e, h, f / 32]))
        }
        for t in g.tensors {
            guard let (suffix, want) = expected.first(where: { t.name.hasSuffix($0.0) }) else { continue }
            let isRouter = suffix.contains("router") || suffix.contains("gate_inp")
            if t.shape.first != e {
                let what = isRouter ? "the router scores \(t.shape.first ?? 0) experts" : "holds \(t.shape.first ?? 0) experts"
                throw ArchitectureError.badShape(tensor: t.name, shape: t.shape, reason: "\(what) but the model has \(e) (num_local_experts / expert_count)")
            }
            if let want, t.shape != want {
                throw ArchitectureError.badShape(
                    tensor: t.name, shape: t.shape, reason: "expected \(want) for \(e) experts, hidden size \(h) and expert ffn size \(f ?? 0)")
            }
        }
    }
}
