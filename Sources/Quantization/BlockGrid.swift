import TensorGraph

/// The code grids of the block types Smelt encodes (Q8_0, Q4_0, Q4_1), for quantizers that choose
/// a block's scale themselves: importance-weighted scale search (`--imatrix`) and GPTQ, which fixes
/// a block's scale and then rounds its columns one by one. A block decodes as `code × d + m`:
///
///     type   codes        d, m              stored as
///     Q8_0   -127…127     d (f16), m = 0    int8 codes (ggml's reference never uses -128)
///     Q4_0   -8…7         d (f16), m = 0    nibbles code + 8
///     Q4_1   0…15         d (f16), m (f16)  nibbles code
///
/// Everything here works on scales already rounded to f16, so the values a quantizer reasons about
/// are exactly the values ggml (and `Dequantize`) decode.
public enum BlockGrid {
    /// One block's scale and offset, as stored (f16-representable); `m` is 0 for Q8_0 and Q4_0.
    public struct Scale: Sendable, Equatable {
        public var d: Float
        public var m: Float
        public init(d: Float, m: Float = 0) {
            self.d = d
            self.m = m
        }
    }

    /// Elements per block of every type here.
    public static let blockSize = 32

    /// The types with a grid.
    public static func isSupported(_ dtype: DType) -> Bool { dtype == .q8_0 || dtype == .q4_0 || dtype == .q4_1 }

    /// The smallest and largest code of `dtype`.
    @inline(__always)
    public static func codeRange(_ dtype: DType) -> (lo: Int32, hi: Int32) {
        switch dtype {
        case .q8_0: return (-127, 127)
        case .q4_0: return (-8, 7)
        default: return (0, 15)
        }
    }

    /// The nearest code to `x` under `scale` (halves away from zero, clamped to the grid), and the
    /// value it decodes to. A zero scale gives the code that decodes to `m`.
    @inline(__always)
    public static func round(_ x: Float, _ scale: Scale, lo: Int32, hi: Int32) -> (code: Int32, value: Float) {
        guard scale.d != 0 else {
            let c = max(lo, min(hi, 0))
            return (c, Float(c) * scale.d + scale.m)
        }
        let t = ((x - scale.m) / scale.d).rounded()
        let c: Int32 = t.isNaN ? 0 : (t <= Float(lo) ? lo : (t >= Float(hi) ? hi : Int32(t)))
        return (c, Float(c) * scale.d + scale.m)
    }

    /// `x` rounded to f16 and widened back.
    @inline(__always)
    public static func f16(_ x: Float) -> Float { widenF16(Half.f16Bits(x)) }

    /// Writes one block of `dtype` with `scale` and 32 `codes` (in the grid) at `dst`.
    public static func pack(_ dtype: DType, codes: UnsafePointer<Int32>, scale: Scale, into dst: UnsafeMutableRawPointer) {
        dst.storeF16(scale.d, at: 0)
        switch dtype {
        case .q8_0:
            for j in 0..<32 { dst.storeBytes(of: Int8(truncatingIfNeeded: codes[j]), toByteOffset: 2 + j, as: Int8.self) }
        case .q4_0:
            for j in 0..<16 {
                dst.storeU8(UInt8(truncatingIfNeeded: codes[j] + 8) | UInt8(truncatingIfNeeded: codes[j + 16] + 8) << 4, at: 2 + j)
            }
        default:
            dst.storeF16(scale.m, at: 2)
            for j in 0..<16 {
                dst.storeU8(UInt8(truncatingIfNeeded: codes[j]) | UInt8(truncatingIfNeeded: codes[j + 16]) << 4, at: 4 + j)
            }
        }
    }

    /// The scale ggml's reference (round-to-nearest) quantizer gives 32 values, as stored.
    public static func referenceScale(_ dtype: DType, _ x: UnsafePointer<Float>) -> Scale {
        switch dtype {
        case .q8_0:
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(x[j])) }
            return Scale(d: f16(amax / 127))
        case .q4_0:
            var amax: Float = 0, mx: Float = 0
            for j in 0..<32 where amax < abs(x[j]) {
                amax = abs(x[j])
                mx = x[j]
            }
            return Scale(d: f16(mx / -8))
        default:
            var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                mn = min(mn, x[j])
                mx = max(mx, x[j])
            }
            return Scale(d: f16((mx - mn) / 15), m: f16(mn))
        }
    }

    /// Σ wⱼ (xⱼ − x̂ⱼ)² for 32 values under `scale` (codes rounded to nearest).
    @inline(__always)
    static func weightedError(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ scale: Scale, lo: Int32, hi: Int32
    ) -> Float {
        var e: Float = 0
        for j in 0..<32 {
            let diff = x[j] - round(x[j], scale, lo: lo, hi: hi).value
            e += w[j] * diff * diff
        }
        return e
    }

    /// The scale (and offset) that minimises Σ wⱼ (xⱼ − x̂ⱼ)² over 32 values among a family of
    /// candidates, each judged after rounding to f16 and re-rounding the codes with the stored
    /// scale: for every candidate inverse scale (the grid end mapped to the extreme value, then
    /// stretched from −1 to +1 grid steps by tenths), codes are rounded, the weighted
    /// least-squares scale (and, for Q4_1, offset) for those codes is solved, rounded to f16, and
    /// scored. ggml's reference scale is always a candidate, so the result is never worse than
    /// round-to-nearest under the same weights. `w` must be non-negative.
    public static func searchScale(_ dtype: DType, _ x: UnsafePointer<Float>, weights w: UnsafePointer<Float>) -> Scale {
        let (lo, hi) = codeRange(dtype)
        let reference = referenceScale(dtype, x)
        var best = reference
        var bestError = weightedError(x, w, reference, lo: lo, hi: hi)
        guard bestError > 0, bestError.isFinite else { return best }

        func consider(_ s: Scale) {
            guard s.d.isFinite, s.m.isFinite, s.d != 0 else { return }
            let e = weightedError(x, w, s, lo: lo, hi: hi)
            if e < bestError {
                bestError = e
                best = s
            }
        }

        if dtype == .q4_1 {
            var mn = x[0], mx = x[0]
            for j in 1..<32 {
                mn = min(mn, x[j])
                mx = max(mx, x[j])
            }
            guard mx > mn else { return best }
            var sw: Float = 0, sx: Float = 0
            for j in 0..<32 {
                sw += w[j]
                sx += w[j] * x[j]
            }
            for step in -10...10 {
                let iscale = (Float(hi) + 0.1 * Float(step)) / (mx - mn)
                var sl: Float = 0, sl2: Float = 0, sxl: Float = 0
                for j in 0..<32 {
                    let l = max(0, min(Float(hi), ((x[j] - mn) * iscale).rounded()))
                    sl += w[j] * l
                    sl2 += w[j] * l * l
                    sxl += w[j] * x[j] * l
                }
                let det = sw * sl2 - sl * sl
                guard det > 0 else { continue }
                let d = (sw * sxl - sx * sl) / det
                let m = (sl2 * sx - sl * sxl) / det
                consider(Scale(d: f16(d), m: f16(m)))
            }
            return best
        }

        // Symmetric grids: the value of largest magnitude goes to one end of the grid.
        var amax: Float = 0, extreme: Float = 0
        for j in 0..<32 where amax < abs(x[j]) {
            amax = abs(x[j])
            extreme = x[j]
        }
        guard amax > 0 else { return best }
        for e in 0..<(dtype == .q4_0 ? 2 : 1) {
            let end = e == 0 ? Float(hi) : Float(lo)
            for step in -10...10 {
                // Map `extreme` onto `end` stretched by step/10 grid steps (sign kept).
                let target = (abs(end) + 0.1 * Float(step)) * (end < 0 ? -1 : 1)
                let iscale = dtype == .q8_0 ? target / amax : target / extreme
                var sxl: Float = 0, sl2: Float = 0
                for j in 0..<32 {
                    let l = max(Float(lo), min(Float(hi), (x[j] * iscale).rounded()))
                    sxl += w[j] * x[j] * l
                    sl2 += w[j] * l * l
                }
                guard sl2 > 0 else { continue }
                consider(Scale(d: f16(sxl / sl2)))
            }
        }
        return best
    }

    /// Quantizes 32 values with a given scale: codes and the values they decode to.
    public static func quantize(
        _ dtype: DType, _ x: UnsafePointer<Float>, scale: Scale, codes: UnsafeMutablePointer<Int32>
    ) {
        let (lo, hi) = codeRange(dtype)
        for j in 0..<32 { codes[j] = round(x[j], scale, lo: lo, hi: hi).code }
    }
}
