import TensorGraph

/// Q8_0: 32 signed bytes and one f16 scale. Value = q × d.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2    32  qs     int8 values
enum Q8_0Block: GridBlock {
    static let dtype = DType.q8_0
    static let elements = 32
    static let dOffset = 0, qsOffset = 2
    static let bytes = qsOffset + 32
    static let fieldOffsets = ["d": dOffset, "qs": qsOffset]
    static let activation: DType? = .q8_0

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            for j in 0..<32 { y[j] = Float(block.i8(qsOffset &+ j)) * d }
        }
    }

    /// ggml's `quantize_row_q8_0_ref`: d = max|x| / 127, stored as f16; q = roundf(x / d) (halves
    /// away from zero) with the unrounded f32 1/d (0 when d is 0).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = src + b &* elements
            let block = dst + b &* bytes
            var amax: Float = 0
            for j in 0..<32 {
                let a = abs(x[j])
                amax = amax > a ? amax : a  // C's MAX(amax, fabsf(v)), NaN handling included
            }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            block.storeF16(d, at: dOffset)
            for j in 0..<32 {
                let q = Int8(truncatingIfNeeded: roundedAwayToInt32(x[j] * id))
                block.storeBytes(of: q, toByteOffset: qsOffset &+ j, as: Int8.self)
            }
        }
    }

    /// ggml's `quantize_q8_0` ignores an importance matrix.
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        encode(x, into: dst, count: rowLength / elements)
    }

    // GPTQ grid: codes -127…127 (ggml's reference never writes -128), d only.
    static let codeRange: (lo: Int32, hi: Int32) = (-127, 127)
    static let hasOffset = false

    static func referenceScale(_ x: UnsafePointer<Float>) -> BlockGrid.Scale {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        return BlockGrid.Scale(d: BlockGrid.f16(amax / 127))
    }

    static func pack(codes: UnsafePointer<Int32>, scale: BlockGrid.Scale, into dst: UnsafeMutableRawPointer) {
        dst.storeF16(scale.d, at: dOffset)
        for j in 0..<32 {
            dst.storeBytes(of: Int8(truncatingIfNeeded: codes[j]), toByteOffset: qsOffset + j, as: Int8.self)
        }
    }
}

/// Q8_K: 256 signed bytes with an f32 scale (ggml's intermediate type for K-quant dot products).
/// Value = d × q.
///
///     offset  size  field
///          0     4  d      f32 scale
///          4   256  qs     int8 values
///        260    32  bsums  int16 sums of each 16 values (not needed to decode)
enum Q8_KBlock: QuantBlock {
    static let dtype = DType.q8_K
    static let elements = 256
    static let dOffset = 0, qsOffset = 4, bsumsOffset = 260
    static let bytes = bsumsOffset + 32
    static let fieldOffsets = ["d": dOffset, "qs": qsOffset, "bsums": bsumsOffset]

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f32(dOffset)
            for j in 0..<256 { y[j] = d * Float(block.i8(qsOffset &+ j)) }
        }
    }
}
