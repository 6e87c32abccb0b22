import Formats
import TensorGraph

/// Gemma 3 (text): embeddings scaled by √hidden, sandwich norms (before and after attention and
/// the MLP), GELU-tanh gated MLP, per-head Q/K norms, NeoX rotary pairs, and sliding-window
/// layers (5 local : 1 global) with their own rotary base; linear rope scaling on global layers
/// only. Gemma's RMSNorm multiplies by (1 + w): llama.cpp's converter stores w + 1 (added in the
/// tensor's own type), so the norms here are plain RMSNorms and GGUF → HF subtracts the 1 again.
public struct Gemma3: Architecture {
    public static let name = "gemma3"

    public var decoder: DecoderConfig
    /// `sliding_window` (transformers' default 4096).
    public var slidingWindow: Int
    /// Which layers use the sliding window: `layer_types`, or every layer but each 6th
    /// (`sliding_window_pattern`; llama.cpp assumes 6).
    public var slidingLayers: [Bool]
    /// `rope_local_base_freq`, or `rope_parameters.sliding_attention.rope_theta` (10000).
    public var localRopeTheta: Double
    /// `query_pre_attn_scalar` (attention scores × its −½ power); head_dim when absent, as
    /// llama.cpp assumes.
    public var queryPreAttnScalar: Int
    /// `final_logit_softcapping`.
    public var finalLogitSoftcapping: Double?

    static let pattern = 6

    /// llama.cpp's converter writes `add_space_prefix = false` with Gemma 3's tokenizer.model.
    public static let sentencePieceSpacePrefix: Bool? = false

    public init(from decoder: Decoder) throws {
        let r = try ConfigReader(decoder, architecture: Self.name)
        // transformers' Gemma3TextConfig defaults.
        var d = try DecoderConfig(r, defaults: .init(contextLength: 131072, ropeTheta: 1_000_000, rmsNormEps: 1e-6))
        if d.headDim == d.embedding / d.heads, try r.int("head_dim") == nil { d.headDim = 256 }
        // transformers 5: rope_parameters per layer type.
        if let p = try r.object("rope_parameters"), let full = try p.object("full_attention") {
            d.ropeTheta = try full.double("rope_theta") ?? 1_000_000
            d.ropeScaling = try RopeScaling.read(full, prefix: "rope_parameters.full_attention")
            localRopeTheta = try p.object("sliding_attention")?.double("rope_theta") ?? 10000
        } else {
            localRopeTheta = try r.double("rope_local_base_freq") ?? r.double("rope_freq_base_swa") ?? 10000
        }
        if let s = d.ropeScaling, s.kind != .linear {
            throw ArchitectureError.badConfig(key: "rope_scaling", reason: "Gemma 3 takes linear scaling only, not \(s.kind.rawValue)")
        }
        self.decoder = d
        slidingWindow = try r.int("sliding_window") ?? 4096
        let types: [String]? = try r.has("layer_types") ? r.c.decode([String].self, forKey: .init("layer_types")) : nil
        if let types {
            guard types.count == d.layers else {
                throw ArchitectureError.badConfig(key: "layer_types", reason: "\(types.count) entries for \(d.layers) layers")
            }
            slidingLayers = types.map { $0 == "sliding_attention" }
        } else {
            let pattern = try r.int("sliding_window_pattern") ?? Self.pattern
            slidingLayers = (0..<d.layers).map { ($0 + 1) % pattern != 0 }
        }
        queryPreAttnScalar = try r.int("query_pre_attn_scalar") ?? d.headDim
        finalLogitSoftcapping = try r.double("final_logit_softcapping")
    }

    public func encode(to encoder: Encoder) throws {
        var w = ConfigWriter(encoder)
        var d = decoder
        d.ropeParametersLayout = false
        try d.encode(&w)
        try w.put("sliding_window", slidingWindow)
        try w.put("rope_local_base_freq", localRopeTheta)
        try w.put("final_logit_softcapping", finalLogitSoftcapping)
        if !w.forGGUF {
            try w.put("layer_types", slidingLayers.map { $0 ? "sliding_attention" : "full_attention" })
            try w.put("query_pre_attn_scalar", queryPreAttnScalar)
        }
    }

    public func forwardPlan() throws -> ForwardPlan {
        var p = decoder.plan(rope: .neox)
        p.ropeFreqFactors = nil
        p.qkNorm = true
        p.activation = .geluTanh
        p.embeddingScale = Float(Double(decoder.embedding).squareRoot())
        p.sandwichNorms = true
        p.attentionScale = Float(1 / Double(queryPreAttnScalar).squareRoot())
        p.slidingWindow = slidingWindow
        p.slidingLayers = slidingLayers
        p.localRopeBase = localRopeTheta
        p.finalLogitSoftcap = finalLogitSoftcapping.map(Float.init)
        return try p.validated(keys: DecoderConfig.keyNames)
    }

    /// GGUF can say only llama.cpp's fixed pattern (each 6th layer global): another is refused.
    public func generatedTensors(hf: TensorGraph) throws -> [Tensor] {
        let expected = (0..<decoder.layers).map { ($0 + 1) % Self.pattern != 0 }
        guard slidingLayers == expected else {
            throw ArchitectureError.badConfig(key: "layer_types", reason: "GGUF (llama.cpp) has Gemma 3's sliding layers fixed at 5 local : 1 global; this model's differ")
        }
        return []
    }

    public var ropeScaling: RopeScaling? { decoder.ropeScaling }

    /// llama.cpp's converter cuts `token_embd.weight` to the vocabulary it writes: with a
    /// `tokenizer.model`, config.json's `vocab_size` (else the model's piece count); with only a
    /// `tokenizer.json`, its vocab plus its added tokens (counted again even when they are in the
    /// vocab, as the converter counts them).
    public func vocabularyRows(hf: TensorGraph) throws -> Int? {
        if let bytes = HFFolder.binarySideFile(hf, "tokenizer.model") {
            if let v = decoder.vocabSize { return v }
            return try SentencePieceModelFile(bytes: bytes).pieces.count
        }
        guard let text = hf.metadata[HFFolder.metadataPrefix + "tokenizer.json"]?.stringValue else { return nil }
        let json: JSONValue
        do { json = try JSONParser.parse(text) } catch { throw ArchitectureError.badTokenizer(reason: "\(error)") }
        return (json["model"]?["vocab"]?.objectEntries?.count ?? 0) + (json["added_tokens"]?.arrayValue?.count ?? 0)
    }

    public func hfConfigExtras(gguf: TensorGraph) -> [(String, JSONValue)] {
        [("hidden_activation", .string(Self.table.hfActivation)), DecoderConfig.attentionBias(gguf)]
    }

    public func transformToGGUF(_ t: Tensor, ggufName: String) throws -> Tensor {
        ggufName.hasSuffix("norm.weight") ? try NormShift.shifted(t, by: 1) : t
    }

    public func transformToHF(_ t: Tensor, ggufName: String) throws -> Tensor {
        ggufName.hasSuffix("norm.weight") ? try NormShift.shifted(t, by: -1) : t
    }
}

/// Adds a constant to a small (1-D) float tensor, in the tensor's own type as PyTorch would
/// (`w + 1` on a bf16 tensor rounds to bf16), giving f32.
enum NormShift {
    static func shifted(_ t: Tensor, by delta: Float) throws -> Tensor {
        let f = try t.dtype == .f32 ? t : t.cast(to: .f32)
        let bytes = try f.storage.readAll()
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for i in stride(from: 0, to: bytes.count, by: 4) {
            let bits = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            var v = Float(bitPattern: bits) + delta
            switch t.dtype {
            case .bf16: v = Half.f32(bf16Bits: Half.bf16Bits(v))
            case .f16: v = Half.f32(f16Bits: Half.f16Bits(v))
            default: break
            }
            withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
        let shifted = try Tensor(name: t.name, dtype: .f32, shape: t.shape, storage: MemoryStorage(out))
        return t.dtype == .f32 ? shifted : try shifted.cast(to: t.dtype)
    }
}
