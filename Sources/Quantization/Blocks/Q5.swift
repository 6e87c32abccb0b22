import TensorGraph

/// Q5_0: 32 values as 5-bit codes around 16, one f16 scale. Value = (code - 16) × d.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2     4  qh     fifth bits: bit j of this little-endian u32 belongs to value j
///          6    16  qs     low four bits: byte j holds value j (low nibble) and value j + 16 (high)
enum Q5_0Block: QuantBlock {
    static let dtype = DType.q5_0
    static let elements = 32
    static let dOffset = 0, qhOffset = 2, qsOffset = 6
    static let bytes = qsOffset + 16

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            let qh = block.u32(qhOffset)
            for j in 0..<16 {
                let q = UInt32(block.u8(qsOffset &+ j))
                let lo = (q & 0x0F) | ((qh >> UInt32(j)) << 4) & 0x10
                let hi = (q >> 4) | (qh >> UInt32(j &+ 12)) & 0x10
                y[j] = Float(Int32(bitPattern: lo) &- 16) * d
                y[j &+ 16] = Float(Int32(bitPattern: hi) &- 16) * d
            }
        }
    }
}

/// Q5_1: 32 values as 5-bit codes with an f16 scale and an f16 offset. Value = code × d + m.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2     2  m      f16 minimum
///          4     4  qh     fifth bits: bit j of this little-endian u32 belongs to value j
///          8    16  qs     low four bits: byte j holds value j (low nibble) and value j + 16 (high)
enum Q5_1Block: QuantBlock {
    static let dtype = DType.q5_1
    static let elements = 32
    static let dOffset = 0, mOffset = 2, qhOffset = 4, qsOffset = 8
    static let bytes = qsOffset + 16

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            let m = block.f16(mOffset)
            let qh = block.u32(qhOffset)
            for j in 0..<16 {
                let q = UInt32(block.u8(qsOffset &+ j))
                let lo = (q & 0x0F) | ((qh >> UInt32(j)) << 4) & 0x10
                let hi = (q >> 4) | (qh >> UInt32(j &+ 12)) & 0x10
                y[j] = Float(lo) * d + m
                y[j &+ 16] = Float(hi) * d + m
            }
        }
    }
}
