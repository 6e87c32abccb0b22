import TensorGraph

/// llama.cpp's CPU backend multiplies block-quantized weights with activations that it first
/// quantizes to 8 bits per block (the weight type's "vec_dot_type"). Rounding the activations the
/// same way before an f32 product reproduces its numbers up to summation order, which is how the
/// gap between its Q4_1 perplexity and the exact model's is explained.
enum ActivationRounding {
    enum Scheme { case q8_0, q8_1 }

    static func scheme(for weight: DType) -> Scheme? {
        switch weight {
        case .q4_0, .q5_0, .q8_0, .iq4_NL, .mxfp4: return .q8_0
        case .q4_1, .q5_1: return .q8_1
        default: return nil
        }
    }

    /// Per block of 32: d = max|x| / 127, q = round(x / d) with the unrounded d, value = q · f16(d)
    /// (the scale is stored as f16, as in ggml's block_q8_0 and block_q8_1).
    static func apply(_ scheme: Scheme, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let n = min(32, count - i)
            var amax: Float = 0
            for j in 0..<n { amax = max(amax, abs(x[i + j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let d16 = Half.f32(f16Bits: Half.f16Bits(d))
            for j in 0..<n { out[i + j] = (x[i + j] * id).rounded(.toNearestOrAwayFromZero) * d16 }
            i += n
        }
        _ = scheme  // Q8_1 differs only in also storing the block sum, which does not change the values.
    }
}
