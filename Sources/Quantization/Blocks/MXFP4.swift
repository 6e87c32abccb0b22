import Foundation
import TensorGraph

/// The 16 E2M1 (fp4) values, doubled so they are integers (ggml's `kvalues_mxfp4`); the block
/// scales are halved to match.
let fp4Levels: [Float] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

/// MXFP4 (OCP microscaling): 32 fp4 values sharing a power-of-two scale. Value = level × 2^(e - 128),
/// i.e. the E8M0 scale 2^(e - 127) halved for the doubled levels.
///
///     offset  size  field
///          0     1  e      E8M0 exponent
///          1    16  qs     fp4 codes: byte j holds value j (low nibble) and value j + 16 (high nibble)
enum MXFP4Block: QuantBlock {
    static let dtype = DType.mxfp4
    static let elements = 32
    static let eOffset = 0, qsOffset = 1
    static let bytes = qsOffset + 16
    static let fieldOffsets = ["e": eOffset, "qs": qsOffset]
    static let activation: DType? = .q8_0

    /// 2^(e - 128) as an f32 bit pattern: subnormal for e < 2, otherwise exponent field e - 1.
    @inline(__always)
    static func halfScale(_ e: UInt8) -> Float {
        Float(bitPattern: e < 2 ? UInt32(0x0020_0000) << UInt32(e) : UInt32(e &- 1) << 23)
    }

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        fp4Levels.withUnsafeBufferPointer { levels in
            let k = levels.baseAddress!
            for b in 0..<count {
                let block = src + b &* bytes
                let y = dst + b &* elements
                let d = halfScale(block.u8(eOffset))
                for j in 0..<16 {
                    let q = block.u8(qsOffset &+ j)
                    y[j] = k[Int(q & 0x0F)] * d
                    y[j &+ 16] = k[Int(q >> 4)] * d
                }
            }
        }
    }
}

/// ggml's `quantize_row_mxfp4_ref` (llama-quantize ignores an importance matrix for MXFP4):
/// e = floor(log2 max|x|) − 2 + 127 (0 for an all-zero block), then each value to the level whose
/// `level × 2^(e − 128) − x` is smallest in magnitude, the first on ties.
extension MXFP4Block: QuantEncodable {
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        fp4Levels.withUnsafeBufferPointer { levels in
            let k = levels.baseAddress!
            for b in 0..<count {
                let x = src + b &* elements
                let block = dst + b &* bytes
                var amax: Float = 0
                for j in 0..<32 where amax < abs(x[j]) { amax = abs(x[j]) }
                // C's (uint8_t) of the float: through a 32-bit integer, low byte kept.
                let e: UInt8 = amax > 0 ? UInt8(truncatingIfNeeded: Int32(floorf(log2f(amax)) - 2 + 127)) : 0
                let d = halfScale(e)
                block.storeBytes(of: e, toByteOffset: eOffset, as: UInt8.self)
                @inline(__always) func best(_ v: Float) -> UInt8 {
                    var index = 0
                    var err = abs(k[0] * d - v)
                    for i in 1..<16 {
                        let e = abs(k[i] * d - v)
                        if e < err { index = i; err = e }
                    }
                    return UInt8(index)
                }
                for j in 0..<16 {
                    block.storeBytes(of: best(x[j]) | best(x[j &+ 16]) << 4, toByteOffset: qsOffset &+ j, as: UInt8.self)
                }
            }
        }
    }

    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        encode(x, into: dst, count: rowLength / elements)
    }
}

/// NVFP4: 64 fp4 values in 4 sub-blocks of 16, each with an unsigned E4M3 scale.
/// Value = level × scale / 2.
///
///     offset  size  field
///          0     4  d      UE4M3 scales, one per sub-block
///          4    32  qs     fp4 codes: 8 bytes per sub-block; byte j holds value j (low nibble)
///                          and value j + 8 (high nibble) of its sub-block
enum NVFP4Block: QuantBlock {
    static let dtype = DType.nvfp4
    static let elements = 64
    static let dOffset = 0, qsOffset = 4
    static let bytes = qsOffset + 32
    static let fieldOffsets = ["d": dOffset, "qs": qsOffset]
    static let activation: DType? = .q8_0

    /// UE4M3 byte → half its value, for all 256 bytes (bit 7 is ignored; 0x00 and 0x7F give 0):
    /// exponent field 0 is subnormal, m × 2^-9; otherwise (1 + m/8) × 2^(e - 7).
    static let halfScales: [Float] = (0..<256).map { (x: Int) -> Float in
        if x == 0 || x == 0x7F { return 0 }
        let e = (x >> 3) & 0x0F, m = x & 7
        let raw = e == 0 ? Float(m) * 0x1p-9 : (1 + Float(m) / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
        return raw * 0.5
    }

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        fp4Levels.withUnsafeBufferPointer { levels in
            halfScales.withUnsafeBufferPointer { scales in
                let k = levels.baseAddress!
                for b in 0..<count {
                    let block = src + b &* bytes
                    for sub in 0..<4 {
                        let d = scales[Int(block.u8(dOffset &+ sub))]
                        let q = block + (qsOffset &+ sub &* 8)
                        let y = dst + (b &* elements &+ sub &* 16)
                        for j in 0..<8 {
                            let v = q.u8(j)
                            y[j] = k[Int(v & 0x0F)] * d
                            y[j &+ 8] = k[Int(v >> 4)] * d
                        }
                    }
                }
            }
        }
    }
}
