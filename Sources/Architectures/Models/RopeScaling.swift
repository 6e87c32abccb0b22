import Foundation
import Formats
import TensorGraph

/// Rotary scaling as a Hugging Face configuration states it (`rope_scaling`, or transformers 5's
/// `rope_parameters`), shared by the Llama-style units.
public struct RopeScaling: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Positions divided by `factor` (GGUF `rope.scaling.type = linear`).
        case linear
        /// YaRN (GGUF `rope.scaling.type = yarn` with its `yarn_*` keys).
        case yarn
        /// Llama 3.1's per-frequency factors, which GGUF holds as the tensor `rope_freqs.weight`.
        case llama3
        /// LongRoPE (Phi-3): per-frequency factors for short and long contexts, which GGUF holds as
        /// `rope_factors_short.weight` / `rope_factors_long.weight`, and a cos/sin scale.
        case longrope
    }

    public var kind: Kind
    public var factor: Double
    /// `original_max_position_embeddings`.
    public var originalContext: Int?
    /// Llama 3: `low_freq_factor`, `high_freq_factor`.
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    /// YaRN: `extrapolation_factor`, `attention_factor`, `beta_fast`, `beta_slow`.
    public var extrapolationFactor: Double?
    public var attentionFactor: Double?
    public var betaFast: Double?
    public var betaSlow: Double?
    /// YaRN: transformers' `truncate` (default true: the correction range rounded to whole
    /// dimensions; gpt-oss states false). GGUF has no key for it.
    public var truncate: Bool?
    /// LongRoPE: `long_factor`, `short_factor` (one per rotary pair).
    public var longFactor: [Double]?
    public var shortFactor: [Double]?

    /// Llama 3.1's published values (llama.cpp's converter uses them where a key is absent).
    public static func llama31(factor: Double? = nil, low: Double? = nil, high: Double? = nil, original: Int? = nil) -> RopeScaling {
        RopeScaling(kind: .llama3, factor: factor ?? 8, originalContext: original ?? 8192, lowFreqFactor: low ?? 1, highFreqFactor: high ?? 4)
    }

    /// The scaling an object (`rope_scaling` / `rope_parameters`) states; nil for `default`.
    /// `prefix` names the object in errors.
    static func read(_ r: ConfigReader, prefix: String) throws -> RopeScaling? {
        guard let type = try r.string("rope_type") ?? r.string("type"), type != "default" else { return nil }
        guard let kind = Kind(rawValue: type) else {
            throw ArchitectureError.badConfig(
                key: prefix + ".rope_type", reason: "'\(type)' is not supported (supported: default, \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        switch kind {
        case .llama3:
            return .llama31(factor: try r.double("factor"), low: try r.double("low_freq_factor"), high: try r.double("high_freq_factor"),
                            original: try r.int("original_max_position_embeddings"))
        case .longrope:
            func factors(_ key: String) throws -> [Double] {
                guard r.has(key) else { throw ArchitectureError.missingConfig(key: prefix + "." + key, architecture: "LongRoPE scaling") }
                return try r.c.decode([Double].self, forKey: .init(key))
            }
            // factor 0: not stated (transformers then derives it from the two context lengths).
            var s = RopeScaling(kind: .longrope, factor: try r.double("factor") ?? 0)
            s.longFactor = try factors("long_factor")
            s.shortFactor = try factors("short_factor")
            s.originalContext = try r.int("original_max_position_embeddings")
            s.attentionFactor = try r.double("attention_factor")
            return s
        case .linear, .yarn:
            guard let factor = try r.double("factor") else { throw ArchitectureError.missingConfig(key: prefix + ".factor", architecture: "rope scaling") }
            var s = RopeScaling(kind: kind, factor: factor)
            s.originalContext = try r.int("original_max_position_embeddings")
            if kind == .yarn {
                guard s.originalContext != nil else {
                    throw ArchitectureError.missingConfig(key: prefix + ".original_max_position_embeddings", architecture: "YaRN rope scaling")
                }
                s.extrapolationFactor = try r.double("extrapolation_factor")
                s.attentionFactor = try r.double("attention_factor") ?? r.double("attn_factor")
                s.betaFast = try r.double("beta_fast")
                s.betaSlow = try r.double("beta_slow")
                s.truncate = try r.bool("truncate")
            }
            return s
        }
    }

    func write(_ w: inout ConfigWriter) throws {
        try w.put("rope_type", kind.rawValue)
        try w.put("factor", kind == .longrope && factor == 0 ? nil : factor)
        try w.put("original_max_position_embeddings", originalContext)
        try w.put("low_freq_factor", lowFreqFactor)
        try w.put("high_freq_factor", highFreqFactor)
        try w.put("extrapolation_factor", extrapolationFactor)
        try w.put("attention_factor", attentionFactor)
        try w.put("beta_fast", betaFast)
        try w.put("beta_slow", betaSlow)
        if !w.forGGUF { try w.put("truncate", truncate) }
        try w.put("long_factor", longFactor)
        try w.put("short_factor", shortFactor)
    }

    /// Llama 3's per-frequency divisors for heads of `headDim` at `base`, computed in float32 in
    /// the order llama.cpp's converter computes them (`rope_freqs.weight`).
    public func llama3Factors(headDim: Int, base: Double) -> [Float] {
        let factor = Float(factor), low = Float(lowFreqFactor ?? 1), high = Float(highFreqFactor ?? 4)
        let old = Double(originalContext ?? 8192)
        let lowWavelen = Float(old / Double(lowFreqFactor ?? 1)), highWavelen = Float(old / Double(highFreqFactor ?? 4))
        return stride(from: 0, to: headDim, by: 2).map { i in
            let freq = 1 / powf(Float(base), Float(i) / Float(headDim))
            let wavelen = Float(2 * Double.pi) / freq
            if wavelen < highWavelen { return 1 }
            if wavelen > lowWavelen { return factor }
            let smooth = (Float(old) / wavelen - low) / (high - low)
            return 1 / ((1 - smooth) / factor + smooth)
        }
    }

    /// YaRN's inverse frequencies and the factor cos/sin are multiplied by, as transformers
    /// computes them (`_compute_yarn_parameters`: float32 tensors, Python floats for the range;
    /// beta_fast 32 and beta_slow 1 by default). The correction range is rounded out to whole
    /// dims when `truncate` says so (absent: true, transformers' default); `alwaysRound` rounds it
    /// whatever the configuration says, as llama.cpp does.
    public func yarnFrequencies(headDim dim: Int, base: Double, alwaysRound: Bool = false) -> (invFreq: [Float], attentionFactor: Float) {
        let original = Double(originalContext ?? 4096)
        func mscale(_ scale: Double) -> Double { scale <= 1 ? 1 : 0.1 * log(scale) + 1 }
        let attention = attentionFactor ?? mscale(factor)
        let fast = betaFast ?? 32, slow = betaSlow ?? 1
        func correctionDim(_ rotations: Double) -> Double {
            Double(dim) * log(original / (rotations * 2 * Double.pi)) / (2 * log(base))
        }
        let round = alwaysRound || (truncate ?? true)
        let low = max(round ? floor(correctionDim(fast)) : correctionDim(fast), 0)
        var high = min(round ? ceil(correctionDim(slow)) : correctionDim(slow), Double(dim - 1))
        if low == high { high += 0.001 }
        let half = dim / 2
        return ((0..<half).map { i in
            let pos = powf(Float(base), Float(2 * i) / Float(dim))
            let extrapolation = 1 / pos
            let interpolation = 1 / (Float(factor) * pos)
            let ramp = min(max((Float(i) - Float(low)) / Float(high - low), 0), 1)
            let extrapolationFactor = 1 - ramp
            return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor
        }, Float(attention))
    }

    /// The tensor llama.cpp's converter writes for Llama 3 scaling.
    public static let freqsTensor = "rope_freqs.weight"
}
