import TensorGraph

/// Q5_0: 32 values as 5-bit codes around 16, one f16 scale. Value = (code - 16) × d.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2     4  qh     fifth bits: bit j of this little-endian u32 belongs to value j
///          6    16  qs     low four bits: byte j holds value j (low nibble) and value j + 16 (high)
enum Q5_0Block: GridBlock {
    static let dtype = DType.q5_0
    static let elements = 32
    static let dOffset = 0, qhOffset = 2, qsOffset = 6
    static let bytes = qsOffset + 16
    static let fieldOffsets = ["d": dOffset, "qh": qhOffset, "qs": qsOffset]
    static let activation: DType? = .q8_0

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

    /// Stores 32 codes (0…31) as qh and qs.
    @inline(__always)
    static func storeCodes(_ code: (Int) -> UInt8, into block: UnsafeMutableRawPointer, qhOffset: Int, qsOffset: Int) {
        var qh: UInt32 = 0
        for j in 0..<16 {
            let c0 = code(j), c1 = code(j + 16)
            block.storeU8((c0 & 0x0F) | (c1 & 0x0F) << 4, at: qsOffset + j)
            qh |= UInt32((c0 & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((c1 & 0x10) >> 4) << UInt32(j + 16)
        }
        block.storeBytes(of: qh.littleEndian, toByteOffset: qhOffset, as: UInt32.self)
    }

    /// ggml's `quantize_row_q5_0_ref`: d = (the first value of largest magnitude) / -16, stored as
    /// f16; codes `min(31, (int8)(x / d + 16.5))` with the unrounded f32 1/d (0 when d is 0).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = src + b &* elements
            let block = dst + b &* bytes
            let d = ggmlSignedMax32(x) / -16
            let id: Float = d != 0 ? 1 / d : 0
            block.storeF16(d, at: dOffset)
            storeCodes({ UInt8(truncatingIfNeeded: Swift.min(31, cInt8(x[$0] * id + 16.5))) }, into: block,
                       qhOffset: qhOffset, qsOffset: qsOffset)
        }
    }

    /// ggml's `quantize_q5_0` with an importance matrix: weights importance × sqrt(σ² + x²) (σ²
    /// the row's mean square), each block's scale from `make_qx_quants` (nmax 16).
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { L in
            let l = L.baseAddress!
            ggmlWeightedBlocks(x, rowLength: rowLength, importance: importance) { b, xb, w in
                let d = ggmlQX(32, 16, xb, l, weights: w)
                let block = dst + b * bytes
                block.storeF16(d, at: dOffset)
                storeCodes({ UInt8(bitPattern: l[$0]) }, into: block, qhOffset: qhOffset, qsOffset: qsOffset)
            }
        }
    }

    // GPTQ grid: codes -16…15, d only.
    static let codeRange: (lo: Int32, hi: Int32) = (-16, 15)
    static let hasOffset = false

    static func referenceScale(_ x: UnsafePointer<Float>) -> BlockGrid.Scale {
        BlockGrid.Scale(d: BlockGrid.f16(ggmlSignedMax32(x) / -16))
    }

    static func pack(codes: UnsafePointer<Int32>, scale: BlockGrid.Scale, into dst: UnsafeMutableRawPointer) {
        dst.storeF16(scale.d, at: dOffset)
        storeCodes({ UInt8(truncatingIfNeeded: codes[$0] + 16) }, into: dst, qhOffset: qhOffset, qsOffset: qsOffset)
    }
}

/// Q5_1: 32 values as 5-bit codes with an f16 scale and an f16 offset. Value = code × d + m.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2     2  m      f16 minimum
///          4     4  qh     fifth bits: bit j of this little-endian u32 belongs to value j
///          8    16  qs     low four bits: byte j holds value j (low nibble) and value j + 16 (high)
enum Q5_1Block: GridBlock {
    static let dtype = DType.q5_1
    static let elements = 32
    static let dOffset = 0, mOffset = 2, qhOffset = 4, qsOffset = 8
    static let bytes = qsOffset + 16
    static let fieldOffsets = ["d": dOffset, "m": mOffset, "qh": qhOffset, "qs": qsOffset]
    static let activation: DType? = .q8_1

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

    /// ggml's `quantize_row_q5_1_ref`: d = (max - min) / 31 and m = min, both stored as f16; codes
    /// `(uint8)((x - min) / d + 0.5)` with the unrounded f32 min and 1/d (0 when d is 0).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = src + b &* elements
            let block = dst + b &* bytes
            var min = Float.greatestFiniteMagnitude
            var max = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                if x[j] < min { min = x[j] }
                if x[j] > max { max = x[j] }
            }
            let d = (max - min) / 31
            let id: Float = d != 0 ? 1 / d : 0
            block.storeF16(d, at: dOffset)
            block.storeF16(min, at: mOffset)
            Q5_0Block.storeCodes({ UInt8(truncatingIfNeeded: truncatingToInt32((x[$0] - min) * id + 0.5)) }, into: block,
                                 qhOffset: qhOffset, qsOffset: qsOffset)
        }
    }

    /// ggml's `quantize_q5_1` with an importance matrix: weights as for Q5_0, each block's scale
    /// and minimum from `make_qkx3_quants` (nmax 31).
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { codes in
            let l = codes.baseAddress!, aux = l + 32
            ggmlWeightedBlocks(x, rowLength: rowLength, importance: importance) { b, xb, w in
                var min: Float = 0
                let d = ggmlQKX(32, 31, xb, weights: w, l, theMin: &min, aux, rmin: -0.9, rdelta: 0.05, nstep: 36, mad: false)
                let block = dst + b * bytes
                block.storeF16(d, at: dOffset)
                block.storeF16(-min, at: mOffset)
                Q5_0Block.storeCodes({ l[$0] }, into: block, qhOffset: qhOffset, qsOffset: qsOffset)
            }
        }
    }

    // GPTQ grid: codes 0…31 with an offset m.
    static let codeRange: (lo: Int32, hi: Int32) = (0, 31)
    static let hasOffset = true

    static func referenceScale(_ x: UnsafePointer<Float>) -> BlockGrid.Scale {
        var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            mn = Swift.min(mn, x[j])
            mx = Swift.max(mx, x[j])
        }
        return BlockGrid.Scale(d: BlockGrid.f16((mx - mn) / 31), m: BlockGrid.f16(mn))
    }

    static func pack(codes: UnsafePointer<Int32>, scale: BlockGrid.Scale, into dst: UnsafeMutableRawPointer) {
        dst.storeF16(scale.d, at: dOffset)
        dst.storeF16(scale.m, at: mOffset)
        Q5_0Block.storeCodes({ UInt8(truncatingIfNeeded: codes[$0]) }, into: dst, qhOffset: qhOffset, qsOffset: qsOffset)
    }
}
