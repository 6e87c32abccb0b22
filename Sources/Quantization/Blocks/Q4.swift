import TensorGraph

/// Q4_0: 32 values as 4-bit codes around 8, one f16 scale. Value = (code - 8) × d.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2    16  qs     codes: byte j holds value j (low nibble) and value j + 16 (high nibble)
enum Q4_0Block: QuantEncodable {
    static let dtype = DType.q4_0
    static let elements = 32
    static let dOffset = 0, qsOffset = 2
    static let bytes = qsOffset + 16

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            for j in 0..<16 {
                let q = block.u8(qsOffset &+ j)
                y[j] = Float(Int32(q & 0x0F) &- 8) * d
                y[j &+ 16] = Float(Int32(q >> 4) &- 8) * d
            }
        }
    }

    /// ggml's `quantize_row_q4_0_ref`: d = (the value of largest magnitude, the first one on a tie)
    /// / -8, stored as f16; codes are `min(15, (int8)(x / d + 8.5))` with the unrounded f32 1/d
    /// (0 when d is 0).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = src + b &* elements
            let block = dst + b &* bytes
            var amax: Float = 0
            var max: Float = 0
            for j in 0..<32 {
                let v = x[j]
                if amax < abs(v) {
                    amax = abs(v)
                    max = v
                }
            }
            let d = max / -8
            let id: Float = d != 0 ? 1 / d : 0
            block.storeF16(d, at: dOffset)
            for j in 0..<16 {
                let q0 = Swift.min(15, cInt8(x[j] * id + 8.5))
                let q1 = Swift.min(15, cInt8(x[j &+ 16] * id + 8.5))
                block.storeU8(UInt8(truncatingIfNeeded: q0) | UInt8(truncatingIfNeeded: q1) << 4, at: qsOffset &+ j)
            }
        }
    }
}

/// Q4_1: 32 values as 4-bit codes with an f16 scale and an f16 offset. Value = code × d + m.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2     2  m      f16 minimum
///          4    16  qs     codes: byte j holds value j (low nibble) and value j + 16 (high nibble)
enum Q4_1Block: QuantEncodable {
    static let dtype = DType.q4_1
    static let elements = 32
    static let dOffset = 0, mOffset = 2, qsOffset = 4
    static let bytes = qsOffset + 16

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            let m = block.f16(mOffset)
            for j in 0..<16 {
                let q = block.u8(qsOffset &+ j)
                y[j] = Float(q & 0x0F) * d + m
                y[j &+ 16] = Float(q >> 4) * d + m
            }
        }
    }

    /// ggml's `quantize_row_q4_1_ref`: d = (max - min) / 15 and m = min, both stored as f16; codes
    /// are `min(15, (int8)((x - min) / d + 0.5))` with the unrounded f32 min and 1/d (0 when d is 0).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = src + b &* elements
            let block = dst + b &* bytes
            var min = Float.greatestFiniteMagnitude
            var max = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                let v = x[j]
                if v < min { min = v }
                if v > max { max = v }
            }
            let d = (max - min) / 15
            let id: Float = d != 0 ? 1 / d : 0
            block.storeF16(d, at: dOffset)
            block.storeF16(min, at: mOffset)
            for j in 0..<16 {
                let q0 = Swift.min(15, cInt8((x[j] - min) * id + 0.5))
                let q1 = Swift.min(15, cInt8((x[j &+ 16] - min) * id + 0.5))
                block.storeU8(UInt8(truncatingIfNeeded: q0) | UInt8(truncatingIfNeeded: q1) << 4, at: qsOffset &+ j)
            }
        }
    }
}
