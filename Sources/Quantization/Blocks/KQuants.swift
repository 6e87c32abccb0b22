import TensorGraph

// The K-quants: super-blocks of 256 values made of sub-blocks of 16 or 32, each sub-block with its
// own small integer scale (and minimum) that the super-block's f16 scales multiply.

/// Q2_K: 2-bit codes in 16 sub-blocks of 16; each sub-block has a 4-bit scale and a 4-bit minimum.
/// Value = d × scale × code - dmin × min.
///
///     offset  size  field
///          0    16  scales  sub-block j: scale in the low nibble, minimum in the high nibble
///         16    64  qs      codes: 2 bits each (see `decode` for the order)
///         80     2  d       f16 super-block scale of the scales
///         82     2  dmin    f16 super-block scale of the minimums
enum Q2_KBlock: QuantBlock {
    static let dtype = DType.q2_K
    static let elements = 256
    static let scalesOffset = 0, qsOffset = 16, dOffset = 80, dminOffset = 82
    static let bytes = dminOffset + 2

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            var y = dst + b &* elements
            let d = block.f16(dOffset)
            let dmin = block.f16(dminOffset)
            var sub = 0
            // Two halves of 128 values; each uses 32 code bytes, taking bits 0-1, 2-3, 4-5, 6-7 in
            // turn; each bit pair covers two sub-blocks (bytes 0-15, then bytes 16-31).
            for half in 0..<2 {
                let q = block + (qsOffset &+ half &* 32)
                for shift in stride(from: UInt8(0), to: 8, by: 2) {
                    for part in 0..<2 {
                        let sc = block.u8(scalesOffset &+ sub)
                        sub &+= 1
                        let dl = d * Float(sc & 0x0F)
                        let ml = dmin * Float(sc >> 4)
                        for l in 0..<16 {
                            y[l] = dl * Float((q.u8(part &* 16 &+ l) >> shift) & 3) - ml
                        }
                        y += 16
                    }
                }
            }
        }
    }
}

/// Q3_K: 3-bit codes (two low bits plus a high bit) in 16 sub-blocks of 16 with 6-bit signed
/// scales. Value = d × (scale - 32) × (low - (high bit set ? 0 : 4)).
///
///     offset  size  field
///          0    32  hmask   high bits: bit k of byte l belongs to value 32k + l
///         32    64  qs      low two bits (order as in Q2_K)
///         96    12  scales  sixteen 6-bit scales: low nibbles in bytes 0-7, high pairs in 8-11
///        108     2  d       f16 super-block scale
enum Q3_KBlock: QuantBlock {
    static let dtype = DType.q3_K
    static let elements = 256
    static let hmaskOffset = 0, qsOffset = 32, scalesOffset = 96, dOffset = 108
    static let bytes = dOffset + 2

    /// Sub-block k's scale: bits 0-3 from byte k (k < 8, low nibble) or byte k - 8 (high nibble);
    /// bits 4-5 from byte 8 + k % 4, at bit 2 × (k / 4).
    @inline(__always)
    static func scale(_ block: UnsafeRawPointer, _ k: Int) -> Int32 {
        let s = block + scalesOffset
        let low = k < 8 ? s.u8(k) & 0x0F : s.u8(k &- 8) >> 4
        let high = (s.u8(8 &+ k & 3) >> UInt8(2 &* (k >> 2))) & 3
        return Int32(low | high << 4) &- 32
    }

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            var y = dst + b &* elements
            let d = block.f16(dOffset)
            let hm = block + hmaskOffset
            var sub = 0
            var mask: UInt8 = 1
            for half in 0..<2 {
                let q = block + (qsOffset &+ half &* 32)
                for shift in stride(from: UInt8(0), to: 8, by: 2) {
                    for part in 0..<2 {
                        let dl = d * Float(scale(block, sub))
                        sub &+= 1
                        let o = part &* 16
                        for l in 0..<16 {
                            let low = Int32((q.u8(o &+ l) >> shift) & 3)
                            let high: Int32 = hm.u8(o &+ l) & mask != 0 ? 0 : 4
                            y[l] = dl * Float(low &- high)
                        }
                        y += 16
                    }
                    mask <<= 1
                }
            }
        }
    }
}

/// The 6-bit scale and minimum of sub-block `j` (0..<8) of a Q4_K / Q5_K super-block, from the 12
/// packed bytes at `s`: sub-blocks 0-3 keep their six bits in the low bits of bytes j (scale) and
/// j + 4 (minimum); sub-blocks 4-7 take four bits from byte j + 4 (low nibble: scale, high nibble:
/// minimum) and their top two bits from the spare top bits of bytes j - 4 (scale) and j (minimum).
@inline(__always)
func kScaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
    if j < 4 {
        return (s.u8(j) & 63, s.u8(j &+ 4) & 63)
    }
    let packed = s.u8(j &+ 4)
    return ((packed & 0x0F) | (s.u8(j &- 4) >> 6) << 4, (packed >> 4) | (s.u8(j) >> 6) << 4)
}

/// Q4_K: 4-bit codes in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit minimum.
/// Value = d × scale × code - dmin × min.
///
///     offset  size  field
///          0     2  d       f16 super-block scale of the scales
///          2     2  dmin    f16 super-block scale of the minimums
///          4    12  scales  eight 6-bit scales and eight 6-bit minimums (see `kScaleMin`)
///         16   128  qs      codes: each 32 bytes hold two sub-blocks (low nibbles, then high)
enum Q4_KBlock: QuantBlock {
    static let dtype = DType.q4_K
    static let elements = 256
    static let dOffset = 0, dminOffset = 2, scalesOffset = 4, qsOffset = 16
    static let bytes = qsOffset + 128

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            let dmin = block.f16(dminOffset)
            let scales = block + scalesOffset
            for pair in 0..<4 {
                let q = block + (qsOffset &+ pair &* 32)
                let (sc1, m1) = kScaleMin(scales, 2 &* pair)
                let (sc2, m2) = kScaleMin(scales, 2 &* pair &+ 1)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let d2 = d * Float(sc2), min2 = dmin * Float(m2)
                let y1 = y + pair &* 64, y2 = y1 + 32
                for l in 0..<32 {
                    let v = q.u8(l)
                    y1[l] = d1 * Float(v & 0x0F) - min1
                    y2[l] = d2 * Float(v >> 4) - min2
                }
            }
        }
    }
}

/// Q5_K: Q4_K plus a fifth bit per value. Value = d × scale × code - dmin × min.
///
///     offset  size  field
///          0     2  d       f16 super-block scale of the scales
///          2     2  dmin    f16 super-block scale of the minimums
///          4    12  scales  as in Q4_K
///         16    32  qh      fifth bits: bit k of byte l belongs to value 32k + l
///         48   128  qs      low four bits, as Q4_K's codes
enum Q5_KBlock: QuantBlock {
    static let dtype = DType.q5_K
    static let elements = 256
    static let dOffset = 0, dminOffset = 2, scalesOffset = 4, qhOffset = 16, qsOffset = 48
    static let bytes = qsOffset + 128

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            let dmin = block.f16(dminOffset)
            let scales = block + scalesOffset
            let qh = block + qhOffset
            for pair in 0..<4 {
                let q = block + (qsOffset &+ pair &* 32)
                let (sc1, m1) = kScaleMin(scales, 2 &* pair)
                let (sc2, m2) = kScaleMin(scales, 2 &* pair &+ 1)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let d2 = d * Float(sc2), min2 = dmin * Float(m2)
                let shift1 = UInt8(2 &* pair), shift2 = UInt8(2 &* pair &+ 1)
                let y1 = y + pair &* 64, y2 = y1 + 32
                for l in 0..<32 {
                    let v = q.u8(l)
                    let h = qh.u8(l)
                    y1[l] = d1 * Float((v & 0x0F) | ((h >> shift1) & 1) << 4) - min1
                    y2[l] = d2 * Float((v >> 4) | ((h >> shift2) & 1) << 4) - min2
                }
            }
        }
    }
}

/// Q6_K: 6-bit codes around 32 in 16 sub-blocks of 16 with int8 scales. Value = d × scale × (code - 32).
///
///     offset  size  field
///          0   128  ql      low four bits (see `decode` for the order)
///        128    64  qh      high two bits
///        192    16  scales  int8 sub-block scales
///        208     2  d       f16 super-block scale
enum Q6_KBlock: QuantBlock {
    static let dtype = DType.q6_K
    static let elements = 256
    static let qlOffset = 0, qhOffset = 128, scalesOffset = 192, dOffset = 208
    static let bytes = dOffset + 2

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let d = block.f16(dOffset)
            // Each half of 128 values uses 64 ql bytes, 32 qh bytes and 8 scales. Value l + 32k
            // (l < 32) takes ql byte l (k = 0, 2) or l + 32 (k = 1, 3), its low (k < 2) or high
            // nibble, and bits 2k, 2k + 1 of qh byte l; its scale is number l / 16 + 2k.
            for half in 0..<2 {
                let ql = block + (qlOffset &+ half &* 64)
                let qh = block + (qhOffset &+ half &* 32)
                let sc = block + (scalesOffset &+ half &* 8)
                let y = dst + (b &* elements &+ half &* 128)
                for group in 0..<2 {
                    // d × scale first, as the reference computes (d * sc) * q.
                    let s0 = d * Float(sc.i8(group)), s1 = d * Float(sc.i8(group &+ 2))
                    let s2 = d * Float(sc.i8(group &+ 4)), s3 = d * Float(sc.i8(group &+ 6))
                    for l in group &* 16..<group &* 16 &+ 16 {
                        let a = ql.u8(l), c = ql.u8(l &+ 32), h = qh.u8(l)
                        let q0 = Int32((a & 0x0F) | (h & 3) << 4) &- 32
                        let q1 = Int32((c & 0x0F) | ((h >> 2) & 3) << 4) &- 32
                        let q2 = Int32((a >> 4) | ((h >> 4) & 3) << 4) &- 32
                        let q3 = Int32((c >> 4) | (h >> 6) << 4) &- 32
                        y[l] = s0 * Float(q0)
                        y[l &+ 32] = s1 * Float(q1)
                        y[l &+ 64] = s2 * Float(q2)
                        y[l &+ 96] = s3 * Float(q3)
                    }
                }
            }
        }
    }
}
