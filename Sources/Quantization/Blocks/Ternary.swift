import TensorGraph

/// TQ1_0: ternary values (-1, 0, 1) packed five per byte in base 3, with one f16 scale.
/// Value = (trit - 1) × d.
///
///     offset  size  field
///          0    48  qs     bytes of 5 trits; trit n of byte m is ((byte × 3^n mod 256) × 3) >> 8
///         48     4  qh     bytes of 4 trits, same encoding
///         52     2  d      f16 scale
///
/// Order: qs bytes 0-31 give values 32n + m (n < 5), bytes 32-47 the next 80 values as 16n + m,
/// then qh gives the last 16 as 4n + m.
enum TQ1_0Block: QuantBlock {
    static let dtype = DType.tq1_0
    static let elements = 256
    static let qsOffset = 0, qhOffset = 48, dOffset = 52
    static let bytes = dOffset + 2
    static let fieldOffsets = ["qs": qsOffset, "qh": qhOffset, "d": dOffset]
    static let activation: DType? = .q8_K

    @inline(__always)
    static func trit(_ byte: UInt8, _ pow3: UInt8) -> Float {
        let q = byte &* pow3
        return Float(Int32((UInt16(q) &* 3) >> 8) &- 1)
    }

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            var y = dst + b &* elements
            let d = block.f16(dOffset)
            var p: UInt8 = 1
            for _ in 0..<5 {
                for m in 0..<32 { y[m] = trit(block.u8(qsOffset &+ m), p) * d }
                y += 32
                p &*= 3
            }
            p = 1
            for _ in 0..<5 {
                for m in 0..<16 { y[m] = trit(block.u8(qsOffset &+ 32 &+ m), p) * d }
                y += 16
                p &*= 3
            }
            p = 1
            for _ in 0..<4 {
                for m in 0..<4 { y[m] = trit(block.u8(qhOffset &+ m), p) * d }
                y += 4
                p &*= 3
            }
        }
    }
}

/// TQ2_0: ternary values as 2-bit codes (0, 1, 2 → -1, 0, 1), one f16 scale. Value = (code - 1) × d.
///
///     offset  size  field
///          0    64  qs     codes: each 32 bytes hold 128 values, bits 2k, 2k + 1 of byte m being
///                          value 32k + m
///         64     2  d      f16 scale
enum TQ2_0Block: QuantBlock {
    static let dtype = DType.tq2_0
    static let elements = 256
    static let qsOffset = 0, dOffset = 64
    static let bytes = dOffset + 2
    static let fieldOffsets = ["qs": qsOffset, "d": dOffset]
    static let activation: DType? = .q8_K

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            for half in 0..<2 {
                let q = block + (qsOffset &+ half &* 32)
                for k in 0..<4 {
                    let out = y + (half &* 128 &+ k &* 32)
                    let shift = UInt8(2 &* k)
                    for m in 0..<32 { out[m] = Float(Int32((q.u8(m) >> shift) & 3) &- 1) * d }
                }
            }
        }
    }
}
