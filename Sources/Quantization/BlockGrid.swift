import TensorGraph

/// A block type whose 32-value blocks decode as `code × d + m` with integer codes in a fixed
/// range: quantizers that choose a block's scale themselves (importance-weighted scale search,
/// GPTQ — which fixes a block's scale and then rounds its columns one by one) work on it through
/// `BlockGrid`. Each type's descriptor (`Blocks/*.swift`) declares its grid:
///
///     type   codes        d, m              stored as
///     Q8_0   -127…127     d (f16), m = 0    int8 codes (ggml's reference never uses -128)
///     Q4_0   -8…7         d (f16), m = 0    nibbles code + 8
///     Q4_1   0…15         d (f16), m (f16)  nibbles code
///     Q5_0   -16…15       d (f16), m = 0    5-bit codes + 16 (nibbles and a high-bit word)
///     Q5_1   0…31         d (f16), m (f16)  5-bit codes
protocol GridBlock: GPTQRoundable {
    /// The smallest and largest code.
    static var codeRange: (lo: Int32, hi: Int32) { get }
    /// Whether blocks carry an offset m (otherwise m is 0).
    static var hasOffset: Bool { get }
    /// The scale (and offset) ggml's round-to-nearest quantizer gives 32 values, as stored.
    static func referenceScale(_ x: UnsafePointer<Float>) -> BlockGrid.Scale
    /// Writes one block with `scale` and 32 `codes` (in the grid) at `dst`.
    static func pack(codes: UnsafePointer<Int32>, scale: BlockGrid.Scale, into dst: UnsafeMutableRawPointer)
}

/// Scale choice and rounding onto the grids of `GridBlock` types. Everything here works on scales
/// already rounded to f16, so the values a quantizer reasons about are exactly the values ggml
/// (and `Dequantize`) decode. Types without a grid are refused by `isSupported` and are a
/// programming error everywhere else (callers check first).
public enum BlockGrid {
    /// One block's scale and offset, as stored (f16-representable); `m` is 0 without an offset.
    public struct Scale: Sendable, Equatable {
        public var d: Float
        public var m: Float
        public init(d: Float, m: Float = 0) {
            self.d = d
            self.m = m
        }
    }

    /// Elements per block of every type with a grid.
    public static let blockSize = 32

    /// The grid of `dtype`, or nil.
    static func grid(_ dtype: DType) -> (any GridBlock.Type)? { BlockTypes.codecs[dtype] as? any GridBlock.Type }

    static func requireGrid(_ dtype: DType) -> any GridBlock.Type {
        guard let g = grid(dtype) else { preconditionFailure("\(dtype.displayName) has no code grid (check BlockGrid.isSupported)") }
        return g
    }

    /// The types with a grid.
    public static func isSupported(_ dtype: DType) -> Bool { grid(dtype) != nil }

    /// The types with a grid, in `DType` order.
    public static var supportedTypes: [DType] { DType.allCases.filter(isSupported) }

    /// The smallest and largest code of `dtype`.
    public static func codeRange(_ dtype: DType) -> (lo: Int32, hi: Int32) { requireGrid(dtype).codeRange }

    /// The nearest code to `x` under `scale` (ties to even, clamped to the grid), and the
    /// value it decodes to. A zero scale gives the code that decodes to `m`.
    @inline(__always)
    public static func round(_ x: Float, _ scale: Scale, lo: Int32, hi: Int32) -> (code: Int32, value: Float) {
        guard scale.d != 0 else {
            let c = max(lo, min(hi, 0))
            return (c, Float(c) * scale.d + scale.m)
        }
        let v = (x - scale.m) / scale.d
        // Nearest integer (ties to even) by adding and subtracting 1.5 × 2²³ (exact for |v| < 2²²;
        // larger values clamp anyway).
        let t = abs(v) < 4_194_304 ? (v + 12_582_912) - 12_582_912 : v
        let c: Int32 = t.isNaN ? 0 : (t <= Float(lo) ? lo : (t >= Float(hi) ? hi : Int32(t)))
        return (c, Float(c) * scale.d + scale.m)
    }

    /// `x` rounded to f16 and widened back.
    @inline(__always)
    public static func f16(_ x: Float) -> Float { widenF16(Half.f16Bits(x)) }

    /// Writes one block of `dtype` with `scale` and 32 `codes` (in the grid) at `dst`.
    public static func pack(_ dtype: DType, codes: UnsafePointer<Int32>, scale: Scale, into dst: UnsafeMutableRawPointer) {
        requireGrid(dtype).pack(codes: codes, scale: scale, into: dst)
    }

    /// The scale ggml's reference (round-to-nearest) quantizer gives 32 values, as stored.
    public static func referenceScale(_ dtype: DType, _ x: UnsafePointer<Float>) -> Scale {
        requireGrid(dtype).referenceScale(x)
    }

    /// Nearest integer (ties to even) for |v| < 2²², by the add-and-subtract trick: pure
    /// arithmetic, so loops over it vectorize (a rounding call would not without SSE4.1).
    @inline(__always)
    static func rint(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let magic = SIMD8<Float>(repeating: 12_582_912)  // 1.5 × 2²³
        return (v + magic) - magic
    }

    /// 32 values as four 8-lane vectors.
    typealias Block = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Block {
        let r = UnsafeRawPointer(p)
        return (
            r.loadUnaligned(as: SIMD8<Float>.self), r.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self),
            r.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self), r.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
        )
    }

    /// Σ wⱼ (xⱼ − x̂ⱼ)² for one 8-lane part under scale d, offset m (codes nearest, clamped).
    @inline(__always)
    static func partError(
        _ x: SIMD8<Float>, _ w: SIMD8<Float>, d: Float, inv: Float, m: Float, lo: Float, hi: Float
    ) -> SIMD8<Float> {
        let q = rint((x - m) * inv).clamp8(lo, hi)
        let diff = x - (q * d + m)
        return w * diff * diff
    }

    /// Σ wⱼ (xⱼ − x̂ⱼ)² for 32 values under `scale` (codes rounded to nearest).
    @inline(__always)
    static func weightedError(_ x: Block, _ w: Block, _ scale: Scale, lo: Float, hi: Float) -> Float {
        let d = scale.d, m = scale.m
        let inv: Float = d != 0 ? 1 / d : 0
        var e = partError(x.0, w.0, d: d, inv: inv, m: m, lo: lo, hi: hi)
        e += partError(x.1, w.1, d: d, inv: inv, m: m, lo: lo, hi: hi)
        e += partError(x.2, w.2, d: d, inv: inv, m: m, lo: lo, hi: hi)
        e += partError(x.3, w.3, d: d, inv: inv, m: m, lo: lo, hi: hi)
        return e.sum()
    }

    /// Keeps `s` when it beats the best so far.
    @inline(__always)
    static func consider(
        _ s: Scale, _ x: Block, _ w: Block, _ lo: Float, _ hi: Float, _ best: inout Scale, _ bestError: inout Float
    ) {
        guard s.d.isFinite, s.m.isFinite, s.d != 0 else { return }
        let e = weightedError(x, w, s, lo: lo, hi: hi)
        if e < bestError {
            bestError = e
            best = s
        }
    }

    /// The scale (and offset) that minimises Σ wⱼ (xⱼ − x̂ⱼ)² over 32 values among a family of
    /// candidates, each judged after rounding to f16 and re-rounding the codes with the stored
    /// scale: for every candidate inverse scale (a grid end mapped to the extreme value, stretched
    /// by tenths of a grid step), codes are rounded, the weighted least-squares scale (and, for
    /// Q4_1, offset) for those codes is solved, rounded to f16, and scored. ggml's reference scale
    /// is always a candidate, so the result is never worse than round-to-nearest under the same
    /// weights. `w` must be non-negative.
    public static func searchScale(_ dtype: DType, _ xp: UnsafePointer<Float>, weights wp: UnsafePointer<Float>) -> Scale {
        let grid = requireGrid(dtype)
        let (loI, hiI) = grid.codeRange
        let lo = Float(loI), hi = Float(hiI)
        let x = load(xp), w = load(wp)
        let reference = grid.referenceScale(xp)
        var best = reference
        var bestError = weightedError(x, w, reference, lo: lo, hi: hi)
        guard bestError > 0, bestError.isFinite else { return best }


        if grid.hasOffset {
            var mn = xp[0], mx = xp[0]
            for j in 1..<32 {
                mn = Swift.min(mn, xp[j])
                mx = Swift.max(mx, xp[j])
            }
            guard mx > mn else { return best }
            let sw = (w.0 + w.1 + w.2 + w.3).sum()
            let sx = (w.0 * x.0 + w.1 * x.1 + w.2 * x.2 + w.3 * x.3).sum()
            for step in -9...9 {
                let iscale = (hi + 0.1 * Float(step)) / (mx - mn)
                @inline(__always) func codes(_ v: SIMD8<Float>) -> SIMD8<Float> {
                    rint((v - mn) * iscale).clamp8(lo, hi)
                }
                let l0 = codes(x.0), l1 = codes(x.1), l2 = codes(x.2), l3 = codes(x.3)
                let sl = (w.0 * l0 + w.1 * l1 + w.2 * l2 + w.3 * l3).sum()
                let sl2 = (w.0 * l0 * l0 + w.1 * l1 * l1 + w.2 * l2 * l2 + w.3 * l3 * l3).sum()
                let sxl = (w.0 * x.0 * l0 + w.1 * x.1 * l1 + w.2 * x.2 * l2 + w.3 * x.3 * l3).sum()
                let det = sw * sl2 - sl * sl
                guard det > 0 else { continue }
                let d = (sw * sxl - sx * sl) / det
                let m = (sl2 * sx - sl * sxl) / det
                consider(Scale(d: f16(d), m: f16(m)), x, w, lo, hi, &best, &bestError)
            }
            return best
        }

        // Symmetric grids: the value of largest magnitude goes to one end of the grid.
        var amax: Float = 0, extreme: Float = 0
        for j in 0..<32 where amax < abs(xp[j]) {
            amax = abs(xp[j])
            extreme = xp[j]
        }
        guard amax > 0 else { return best }
        // A grid one code longer on the negative side (Q4_0, Q5_0) tries both ends; a balanced one
        // (Q8_0) maps the magnitude.
        let balanced = loI == -hiI
        for e in 0..<(balanced ? 1 : 2) {
            let end = e == 0 ? lo : hi
            let steps = e == 0 ? 9 : 5
            for step in -steps...steps {
                // Map `extreme` onto `end` stretched by step/10 grid steps (sign kept).
                let target = (abs(end) + 0.1 * Float(step)) * (end < 0 ? -1 : 1)
                let iscale = balanced ? abs(target) / amax : target / extreme
                @inline(__always) func codes(_ v: SIMD8<Float>) -> SIMD8<Float> {
                    rint(v * iscale).clamp8(lo, hi)
                }
                let l0 = codes(x.0), l1 = codes(x.1), l2 = codes(x.2), l3 = codes(x.3)
                let sxl = (w.0 * x.0 * l0 + w.1 * x.1 * l1 + w.2 * x.2 * l2 + w.3 * x.3 * l3).sum()
                let sl2 = (w.0 * l0 * l0 + w.1 * l1 * l1 + w.2 * l2 * l2 + w.3 * l3 * l3).sum()
                guard sl2 > 0 else { continue }
                consider(Scale(d: f16(sxl / sl2)), x, w, lo, hi, &best, &bestError)
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

extension SIMD8 where Scalar == Float {
    /// Each lane clamped to [lo, hi], written lane by lane: the optimizer turns it into vector
    /// min/max, which the generic `clamped(lowerBound:upperBound:)` does not get.
    @inline(__always)
    func clamp8(_ lo: Float, _ hi: Float) -> SIMD8<Float> {
        var r = self
        for i in 0..<8 {
            let e = r[i]
            r[i] = e < lo ? lo : (e > hi ? hi : e)
        }
        return r
    }
}
