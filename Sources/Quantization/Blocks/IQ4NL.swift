import TensorGraph

/// The 16 non-uniform levels of IQ4_NL and IQ4_XS (ggml's `kvalues_iq4nl`), as floats.
let iq4nlLevels: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

/// IQ4_NL: 32 values as 4-bit indices into `iq4nlLevels`, one f16 scale. Value = d × level.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2    16  qs     indices: byte j holds value j (low nibble) and value j + 16 (high nibble)
enum IQ4_NLBlock: QuantBlock {
    static let dtype = DType.iq4_NL
    static let elements = 32
    static let dOffset = 0, qsOffset = 2
    static let bytes = qsOffset + 16

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        iq4nlLevels.withUnsafeBufferPointer { levels in
            let k = levels.baseAddress!
            for b in 0..<count {
                let block = src + b &* bytes
                let y = dst + b &* elements
                let d = block.f16(dOffset)
                for j in 0..<16 {
                    let q = block.u8(qsOffset &+ j)
                    y[j] = d * k[Int(q & 0x0F)]
                    y[j &+ 16] = d * k[Int(q >> 4)]
                }
            }
        }
    }
}

/// IQ4_XS: IQ4_NL's levels in 8 sub-blocks of 32 with 6-bit signed sub-block scales.
/// Value = d × (scale - 32) × level.
///
///     offset  size  field
///          0     2  d         f16 super-block scale
///          2     2  scales_h  top two bits of each scale: bits 2j, 2j + 1 of this little-endian u16
///          4     4  scales_l  low four bits: sub-block j in byte j / 2, low nibble for even j
///          8   128  qs        indices: 16 bytes per sub-block, as IQ4_NL's
enum IQ4_XSBlock: QuantBlock {
    static let dtype = DType.iq4_XS
    static let elements = 256
    static let dOffset = 0, scalesHOffset = 2, scalesLOffset = 4, qsOffset = 8
    static let bytes = qsOffset + 128

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        iq4nlLevels.withUnsafeBufferPointer { levels in
            let k = levels.baseAddress!
            for b in 0..<count {
                let block = src + b &* bytes
                let d = block.f16(dOffset)
                let high = block.u16(scalesHOffset)
                for sub in 0..<8 {
                    let low = (block.u8(scalesLOffset &+ sub >> 1) >> UInt8(4 &* (sub & 1))) & 0x0F
                    let top = UInt8(truncatingIfNeeded: high >> UInt16(2 &* sub)) & 3
                    let dl = d * Float(Int32(low | top << 4) &- 32)
                    let q = block + (qsOffset &+ sub &* 16)
                    let y = dst + (b &* elements &+ sub &* 32)
                    for j in 0..<16 {
                        let v = q.u8(j)
                        y[j] = dl * k[Int(v & 0x0F)]
                        y[j &+ 16] = dl * k[Int(v >> 4)]
                    }
                }
            }
        }
    }
}
