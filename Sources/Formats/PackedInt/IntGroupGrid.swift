import TensorGraph

/// An integer grid with one scale (and zero point) per row and group of columns, as GPTQ and
/// compressed-tensors store: `bits` wide codes, `groupSize` columns per group (the last group
/// shorter when it does not divide the row), symmetric (every zero point at `2^(bits−1)`) or
/// asymmetric. Scales are kept as f16.
///
/// With `affineBias` the grid is MLX's affine one instead: a value is `scale · q + bias`, scale
/// and bias both f16, chosen as `MLXQuantize` chooses them (asymmetric: the group's min/max
/// range; symmetric: the value of largest magnitude at code 0), so what a quantizer decides on
/// this grid is exactly what an MLX file stores and decodes.
public struct IntGroupGrid: Sendable, Equatable, CustomStringConvertible {
    public var bits: Int
    public var groupSize: Int
    public var symmetric: Bool
    public var affineBias: Bool

    public init(bits: Int, groupSize: Int, symmetric: Bool, affineBias: Bool = false) {
        self.bits = bits
        self.groupSize = groupSize
        self.symmetric = symmetric
        self.affineBias = affineBias
    }

    public var maxq: Int32 { (Int32(1) << bits) - 1 }
    public var midpoint: Int32 { Int32(1) << (bits - 1) }
    public var description: String {
        affineBias ? "affine \(bits)-bit g\(groupSize) \(symmetric ? "sym" : "asym")" : "int\(bits) g\(groupSize) \(symmetric ? "sym" : "asym")"
    }

    /// One group's parameters. A value is `scale · q + bias`; on a zero-point grid
    /// `bias = −zero · scale` (exact in f32, so the same value as `scale · (q − zero)`).
    public struct Group: Sendable, Equatable {
        public var scale: Float
        public var zero: Int32
        public var bias: Float

        public init(scale: Float, zero: Int32, bias: Float) {
            self.scale = scale
            self.zero = zero
            self.bias = bias
        }
    }

    /// A group's round-to-nearest parameters (`parameters` on a zero-point grid; MLX's range on
    /// an affine one).
    public func group(_ values: UnsafeBufferPointer<Float>) -> Group {
        guard affineBias else {
            let p = parameters(values)
            return Group(scale: p.scale, zero: p.zero, bias: -Float(p.zero) * p.scale)
        }
        var lo = Float.infinity, hi = -Float.infinity, m: Float = 0
        for v in values where v.isFinite {
            lo = min(lo, v)
            hi = max(hi, v)
            if abs(v) > abs(m) { m = v }
        }
        if lo > hi { (lo, hi) = (0, 0) }
        let (s, b) = MLXQuantize.range(lo: lo, hi: hi, largest: m, bits: bits, symmetric: symmetric, scaleType: .f16)
        return Group(scale: s, zero: symmetric ? midpoint : 0, bias: b)
    }

    /// The affine group of scale `scale` (rounded to f16) nearest the range `lo…hi`: centred on
    /// it (asymmetric) or with code 0 at `−2^(bits−1) · scale` (symmetric).
    public func affineGroup(scale: Float, lo: Float, hi: Float) -> Group {
        let s = Half.f32(f16Bits: Half.f16Bits(scale))
        if symmetric { return Group(scale: s, zero: midpoint, bias: Half.f32(f16Bits: Half.f16Bits(-Float(midpoint) * s))) }
        let b = lo + ((hi - lo) - s * Float(maxq)) / 2
        return Group(scale: s, zero: 0, bias: Half.f32(f16Bits: Half.f16Bits(b)))
    }

    /// The code of `v` in `g`.
    @inline(__always)
    public func code(_ v: Float, _ g: Group) -> UInt8 {
        guard affineBias else { return code(v, scale: g.scale, zero: g.zero) }
        let q = g.scale == 0 ? 0 : ((v - g.bias) / g.scale).rounded()
        return UInt8(q.isFinite ? max(Float(0), min(Float(maxq), q)) : 0)
    }

    /// The value code `q` of `g` decodes to (what the written file decodes to).
    @inline(__always)
    public func value(_ q: UInt8, _ g: Group) -> Float {
        affineBias ? g.scale * Float(q) + g.bias : Float(Int32(q) - g.zero) * g.scale
    }

    public func groups(cols: Int) -> Int { (cols + groupSize - 1) / groupSize }

    /// Round-to-nearest parameters for one group, as GPTQ's and compressed-tensors' min-max
    /// observers choose them: symmetric `scale = 2·max|x| / maxq` with the zero in the middle;
    /// asymmetric over `[min(x, 0), max(x, 0)]` with `zero = round(−min / scale)`. The scale is
    /// rounded to f16 before codes are chosen.
    public func parameters(_ values: UnsafeBufferPointer<Float>) -> (scale: Float, zero: Int32) {
        var lo: Float = 0, hi: Float = 0
        for v in values where v.isFinite {
            lo = min(lo, v)
            hi = max(hi, v)
        }
        var scale: Float
        var zero: Int32
        if symmetric {
            let amax = max(-lo, hi)
            scale = 2 * amax / Float(maxq)
            zero = midpoint
        } else {
            scale = (hi - lo) / Float(maxq)
            zero = 0
        }
        scale = Half.f32(f16Bits: Half.f16Bits(scale))
        if !(scale > 0) || !scale.isFinite { scale = scale.isFinite ? Half.f32(f16Bits: 1) : Half.f32(f16Bits: 0x7bff) }
        if !symmetric { zero = Int32(max(0, min(Float(maxq), (-lo / scale).rounded()))) }
        return (scale, zero)
    }

    /// The code of `v` on a group's grid.
    @inline(__always)
    public func code(_ v: Float, scale: Float, zero: Int32) -> UInt8 {
        let q = (v / scale).rounded()
        let c = q.isFinite ? max(Float(0), min(Float(maxq), q + Float(zero))) : Float(zero)
        return UInt8(c)
    }

    /// `values` (`rows × cols`, row-major) rounded to nearest on this grid.
    public func quantize(_ values: [Float], rows: Int, cols: Int, format: String = "round to nearest") -> GroupQuantizedMatrix {
        let groups = groups(cols: cols)
        var codes = [UInt8](repeating: 0, count: rows * cols)
        var params = [Group](repeating: Group(scale: 0, zero: 0, bias: 0), count: rows * groups)
        values.withUnsafeBufferPointer { v in
            for r in 0..<rows {
                for g in 0..<groups {
                    let c0 = g * groupSize, c1 = min(cols, c0 + groupSize)
                    let p = group(UnsafeBufferPointer(rebasing: v[(r * cols + c0)..<(r * cols + c1)]))
                    params[r * groups + g] = p
                    for c in c0..<c1 { codes[r * cols + c] = code(v[r * cols + c], p) }
                }
            }
        }
        return matrix(rows: rows, cols: cols, codes: codes, groups: params, format: format)
    }

    /// Codes and per-group parameters (`rows × groups(cols)`, row-major) as a matrix on this grid
    /// (with biases on an affine grid).
    public func matrix(rows: Int, cols: Int, codes: [UInt8], groups params: [Group], format: String) -> GroupQuantizedMatrix {
        let layout = GroupQuantizedLayout(rows: rows, cols: cols, bits: bits, groupSize: groupSize, groups: groups(cols: cols), symmetric: symmetric)
        let parts = GroupQuantizedParts(
            scales: params.map(\.scale), zeros: params.map(\.zero), groupIndex: nil, scaleType: .f16,
            biases: affineBias ? params.map(\.bias) : nil)
        return GroupQuantizedMatrix(layout: layout, parts: parts, codes: codes, format: format)
    }
}
