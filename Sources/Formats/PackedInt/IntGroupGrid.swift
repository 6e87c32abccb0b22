import TensorGraph

/// An integer grid with one scale (and zero point) per row and group of columns, as GPTQ and
/// compressed-tensors store: `bits` wide codes, `groupSize` columns per group (the last group
/// shorter when it does not divide the row), symmetric (every zero point at `2^(bits−1)`) or
/// asymmetric. Scales are kept as f16.
public struct IntGroupGrid: Sendable, Equatable, CustomStringConvertible {
    public var bits: Int
    public var groupSize: Int
    public var symmetric: Bool

    public init(bits: Int, groupSize: Int, symmetric: Bool) {
        self.bits = bits
        self.groupSize = groupSize
        self.symmetric = symmetric
    }

    public var maxq: Int32 { (Int32(1) << bits) - 1 }
    public var midpoint: Int32 { Int32(1) << (bits - 1) }
    public var description: String { "int\(bits) g\(groupSize) \(symmetric ? "sym" : "asym")" }

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
        var scales = [Float](repeating: 0, count: rows * groups)
        var zeros = [Int32](repeating: 0, count: rows * groups)
        values.withUnsafeBufferPointer { v in
            for r in 0..<rows {
                for g in 0..<groups {
                    let c0 = g * groupSize, c1 = min(cols, c0 + groupSize)
                    let (s, z) = parameters(UnsafeBufferPointer(rebasing: v[(r * cols + c0)..<(r * cols + c1)]))
                    scales[r * groups + g] = s
                    zeros[r * groups + g] = z
                    for c in c0..<c1 { codes[r * cols + c] = code(v[r * cols + c], scale: s, zero: z) }
                }
            }
        }
        let layout = GroupQuantizedLayout(rows: rows, cols: cols, bits: bits, groupSize: groupSize, groups: groups, symmetric: symmetric)
        return GroupQuantizedMatrix(
            layout: layout, parts: GroupQuantizedParts(scales: scales, zeros: zeros, groupIndex: nil, scaleType: .f16), codes: codes,
            format: format)
    }
}
