import Foundation
import Formats
import TensorGraph

/// Phi-3: Llama's block with Q, K and V in one projection (`qkv_proj` → `attn_qkv`) and gate and
/// up in one (`gate_up_proj` → `ffn_up`, gate first), both kept fused as llama.cpp keeps them and
/// taken apart as views by the forward pass; rotate-half (NeoX) rotary pairs over
/// `partial_rotary_factor` of each head; LongRoPE (`rope_type = longrope`): per-frequency divisors
/// for short and long contexts, which GGUF holds as the tensors `rope_factors_short.weight` /
/// `rope_factors_long.weight` (the long ones when the sequence exceeds
/// `original_max_position_embeddings`), cos and sin × `rope.scaling.attn_factor`.
public struct Phi3: Architecture {
    public static let name = "phi3"
    static let longTensor = "rope_factors_long.weight", shortTensor = "rope_factors_short.weight"

    /// llama.cpp's Phi-3 converter takes tokenizer.json's added tokens too.
    public static let sentencePieceAddedTokens = HFTokenizer.AddedTokens.decoderThenTokenizerJSON

    public var decoder: DecoderConfig
    /// `original_max_position_embeddings` (top level or under the rope parameters).
    public var originalContext: Int
    /// Rotary dimensions per head: `int(partial_rotary_factor × hidden) // heads`, as llama.cpp's
    /// converter computes them (`rope.dimension_count`).
    public var ropeDims: Int
    public var partialRotaryFactor: Double?
    /// `sliding_window` (GGUF writes 0 for none), over every layer.
    public var slidingWindow: Int?
    /// `rope.scaling.attn_factor`, when read from a GGUF.
    public var ggufAttnFactor: Double?

    public init(from decoder: Decoder) throws {
        let r = try ConfigReader(decoder, architecture: Self.name)
        // transformers' Phi3Config defaults.
        let d = try DecoderConfig(r, defaults: .init(contextLength: 4096, ropeTheta: 10000, rmsNormEps: 1e-5))
        if let s = d.ropeScaling, s.kind != .longrope {
            throw ArchitectureError.badConfig(key: "rope_parameters.rope_type", reason: "Phi-3 takes LongRoPE scaling only, not \(s.kind.rawValue)")
        }
        self.decoder = d
        let rope = try r.ropeParameters()
        originalContext = try r.int("original_max_position_embeddings") ?? rope?.int("original_max_position_embeddings") ?? d.contextLength
        partialRotaryFactor = try rope?.double("partial_rotary_factor") ?? r.double("partial_rotary_factor")
        if let n = try r.int("rope_dimension_count") {
            ropeDims = n
        } else {
            ropeDims = Int((partialRotaryFactor ?? 1) * Double(d.embedding)) / d.heads
        }
        let w = try r.int("sliding_window")
        slidingWindow = w == 0 ? nil : w
        ggufAttnFactor = try r.double("rope_attn_factor")
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        var d = decoder
        if w.forGGUF { d.ropeScaling = nil }  // LongRoPE travels as tensors and rope.scaling.attn_factor
        try d.encode(&w)
        try w.put("original_max_position_embeddings", originalContext)
        if w.forGGUF {
            try w.put("sliding_window", slidingWindow ?? 0)
            try w.put("rope_dimension_count", ropeDims)
            if decoder.ropeScaling != nil { try w.put("rope_attn_factor", converterAttnFactor) }
        } else {
            try w.put("sliding_window", slidingWindow)
            if let f = partialRotaryFactor, f != 1 { try w.put("partial_rotary_factor", f) }
        }
    }

    public var ropeScaling: RopeScaling? { decoder.ropeScaling }

    /// The cos/sin scale llama.cpp's converter writes: √(1 + ln s / ln original) for
    /// s = max_position_embeddings ÷ original_max_position_embeddings > 1, else 1.
    var converterAttnFactor: Double {
        let scale = Double(decoder.contextLength) / Double(originalContext)
        return scale > 1 ? (1 + log(scale) / log(Double(originalContext))).squareRoot() : 1
    }

    /// The scale the forward pass uses: the GGUF's key, else transformers' (a stated
    /// `attention_factor`, else the formula above with `factor` when stated).
    var attnFactor: Double {
        if let g = ggufAttnFactor { return g }
        guard let s = decoder.ropeScaling else { return 1 }
        if let a = s.attentionFactor { return a }
        let scale = s.factor > 0 ? s.factor : Double(decoder.contextLength) / Double(originalContext)
        return scale > 1 ? (1 + log(scale) / log(Double(originalContext))).squareRoot() : 1
    }

    public func forwardPlan() throws -> ForwardPlan {
        var p = decoder.plan(rope: .neox)
        p.ropeFreqFactors = nil
        p.ropeDims = ropeDims
        p.fusedQKV = true
        p.fusedGateUp = true
        if decoder.ropeScaling != nil || ggufAttnFactor != nil {
            p.ropeFactorsLong = Self.longTensor
            p.ropeFactorsShort = Self.shortTensor
            p.ropeLongAfter = originalContext
            p.ropeScale = Float(attnFactor)
        }
        if let w = slidingWindow {
            p.slidingWindow = w
            p.slidingLayers = Array(repeating: true, count: decoder.layers)
        }
        return try p.validated(keys: DecoderConfig.keyNames.merging(["ropeDims": "partial_rotary_factor"]) { $1 })
    }

    /// LongRoPE's factors as llama.cpp's converter writes them (f32, one per rotary pair).
    public func generatedTensors(hf: TensorGraph) throws -> [Tensor] {
        guard let s = decoder.ropeScaling, let long = s.longFactor, let short = s.shortFactor else { return [] }
        for (key, f) in [("long_factor", long), ("short_factor", short)] where f.count != ropeDims / 2 {
            throw ArchitectureError.badConfig(key: "rope_parameters." + key, reason: "\(f.count) factors for \(ropeDims / 2) rotary pairs")
        }
        func tensor(_ name: String, _ values: [Double]) throws -> Tensor {
            var bytes: [UInt8] = []
            for v in values { withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            return try Tensor(name: name, dtype: .f32, shape: [values.count], storage: MemoryStorage(bytes))
        }
        return [try tensor(Self.longTensor, long), try tensor(Self.shortTensor, short)]
    }

    /// GGUF → Hugging Face: the two factor tensors become `rope_scaling` (longrope) again, with
    /// `attention_factor` stated when the GGUF's differs from what transformers would derive.
    public mutating func restore(fromGGUF graph: TensorGraph) throws -> Set<String> {
        guard let long = graph[Self.longTensor], let short = graph[Self.shortTensor] else { return [] }
        func values(_ t: Tensor) throws -> [Double] {
            let b = try (t.dtype == .f32 ? t : t.cast(to: .f32)).storage.readAll()
            return stride(from: 0, to: b.count - 3, by: 4).map {
                Double(Float(bitPattern: UInt32(b[$0]) | UInt32(b[$0 + 1]) << 8 | UInt32(b[$0 + 2]) << 16 | UInt32(b[$0 + 3]) << 24))
            }
        }
        var s = RopeScaling(kind: .longrope, factor: 0)
        s.longFactor = try values(long)
        s.shortFactor = try values(short)
        s.originalContext = originalContext
        if let g = ggufAttnFactor, Float(g) != Float(converterAttnFactor) { s.attentionFactor = g }
        decoder.ropeScaling = s
        return [Self.longTensor, Self.shortTensor]
    }

    public func hfConfigExtras(gguf: TensorGraph) -> [(String, JSONValue)] {
        [("hidden_act", .string(Self.table.hfActivation))]
    }
}
