import TensorGraph

/// Round-to-nearest onto an MLX affine grid, one group at a time.
///
/// Asymmetric (MLX's default): scale = (max − min) / (2^bits − 1) and bias = min, both rounded
/// to the scale type, then each code the nearest of the grid `scale × q + bias` (clamped).
/// Symmetric (`--sym`): the value of largest magnitude m maps to code 0 (scale = m / −2^(bits−1),
/// bias = −2^(bits−1) × scale), as ggml's Q4_0 and Q8_0 do, so 4- and 8-bit symmetric groups of
/// 32, 64 or 128 move to Q4_0 / Q8_0 exactly. With `importance`, each group's scale is searched
/// (a few candidate ranges around min/max) for the least importance-weighted squared error.
public enum MLXQuantize {
    public struct Result: Sendable {
        public var codes: [UInt8]
        public var scales: [Float]
        public var biases: [Float]
        /// The largest |decoded − original| over the values.
        public var maxChange: Double
    }

    /// A group's scale and bias, rounded to `scaleType`: asymmetric over `lo…hi`
    /// (`scale = (hi − lo) / (2^bits − 1)`, `bias = lo`); symmetric with `largest` (the value
    /// of largest magnitude) at code 0.
    public static func range(lo: Float, hi: Float, largest m: Float, bits: Int, symmetric: Bool, scaleType: DType) -> (scale: Float, bias: Float) {
        if symmetric {
            let half = Float(1 << (bits - 1))
            let s = rounded(m / -half, to: scaleType)
            return (s, rounded(-half * s, to: scaleType))
        }
        return (rounded((hi - lo) / Float((1 << bits) - 1), to: scaleType), rounded(lo, to: scaleType))
    }

    /// Quantizes `values` (rows of `cols`, `cols` a multiple of the group size).
    public static func affine(
        _ values: [Float], cols: Int, grid: MLXGrid, symmetric: Bool, scaleType: DType, importance: [Float]? = nil
    ) -> Result {
        let g = grid.groupSize
        let groups = values.count / g
        var codes = [UInt8](repeating: 0, count: values.count)
        var scales = [Float](repeating: 0, count: groups), biases = [Float](repeating: 0, count: groups)
        var maxChange = 0.0
        let top = Float(grid.maxCode)
        let width = grid.bits
        for gi in 0..<groups {
            let base = gi * g
            let w = importance.map { imp in (0..<g).map { imp[(base + $0) % cols] } }
            var lo = Float.infinity, hi = -Float.infinity, m: Float = 0
            for i in base..<(base + g) {
                lo = min(lo, values[i])
                hi = max(hi, values[i])
                if abs(values[i]) > abs(m) { m = values[i] }
            }
            func grid(_ lo: Float, _ hi: Float) -> (Float, Float) {
                range(lo: lo, hi: hi, largest: m, bits: width, symmetric: symmetric, scaleType: scaleType)
            }
            func encode(_ s: Float, _ b: Float, into out: inout [UInt8], error: inout Double) {
                error = 0
                for i in 0..<g {
                    let x = values[base + i]
                    var q: Float = s == 0 ? 0 : ((x - b) / s).rounded()
                    q = min(max(q, 0), top)
                    out[i] = UInt8(q)
                    let d = Double(s * q + b - x)
                    error += Double(w?[i] ?? 1) * d * d
                }
            }
            var (s, b) = grid(lo, hi)
            var best = [UInt8](repeating: 0, count: g)
            var bestErr = 0.0
            encode(s, b, into: &best, error: &bestErr)
            if w != nil && !symmetric {
                // Shrink the range from either end in small steps; keep the best.
                var trial = [UInt8](repeating: 0, count: g)
                var err = 0.0
                for step in 1...10 {
                    let f = Float(step) * 0.02 * (hi - lo)
                    for (l, h) in [(lo + f, hi), (lo, hi - f), (lo + f / 2, hi - f / 2)] {
                        let (s2, b2) = grid(l, h)
                        encode(s2, b2, into: &trial, error: &err)
                        if err < bestErr { bestErr = err; best = trial; s = s2; b = b2 }
                    }
                }
            }
            scales[gi] = s
            biases[gi] = b
            for i in 0..<g {
                codes[base + i] = best[i]
                maxChange = max(maxChange, Double(abs(s * Float(best[i]) + b - values[base + i])))
            }
        }
        return Result(codes: codes, scales: scales, biases: biases, maxChange: maxChange)
    }
}
