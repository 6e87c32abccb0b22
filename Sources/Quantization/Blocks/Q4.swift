import TensorGraph

/// Q4_0: 32 values as 4-bit codes around 8, one f16 scale. Value = (code - 8) × d.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2    16  qs     codes: byte j holds value j (low nibble) and value j + 16 (high nibble)
enum Q4_0Block: GridBlock {
    static let dtype = DType.q4_0
    static let elements = 32
    static let dOffset = 0, qsOffset = 2
    static let bytes = qsOffset + 16
    static let fieldOffsets = ["d": dOffset, "qs": qsOffset]
    static let activation: DType? = .q8_0

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


extension Q4_0Block {
    /// ggml's `quantize_q4_0` with an importance matrix: weights importance × sqrt(σ² + x²), σ²
    /// the row's mean square; each block's scale from `make_qx_quants` (nmax 8).
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { L in
            let l = L.baseAddress!
            ggmlWeightedBlocks(x, rowLength: rowLength, importance: importance) { b, xb, w in
                let d = ggmlQX(32, 8, xb, l, weights: w)
                let block = dst + b * bytes
                block.storeF16(d, at: dOffset)
                for j in 0..<16 {
                    block.storeU8(UInt8(bitPattern: l[j]) | UInt8(bitPattern: l[j + 16]) << 4, at: qsOffset + j)
                }
            }
        }
    }

    // GPTQ grid: codes -8…7, d only.
    static let codeRange: (lo: Int32, hi: Int32) = (-8, 7)
    static let hasOffset = false

    static func referenceScale(_ x: UnsafePointer<Float>) -> BlockGrid.Scale {
        BlockGrid.Scale(d: BlockGrid.f16(ggmlSignedMax32(x) / -8))
    }

    static func pack(codes: UnsafePointer<Int32>, scale: BlockGrid.Scale, into dst: UnsafeMutableRawPointer) {
        dst.storeF16(scale.d, at: dOffset)
        for j in 0..<16 {
            dst.storeU8(
                UInt8(truncatingIfNeeded: codes[j] + 8) | UInt8(truncatingIfNeeded: codes[j + 16] + 8) << 4, at: qsOffset + j)
        }
    }
}

/// Q4_1: 32 values as 4-bit codes with an f16 scale and an f16 offset. Value = code × d + m.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2     2  m      f16 minimum
///          4    16  qs     codes: byte j holds value j (low nibble) and value j + 16 (high nibble)
enum Q4_1Block: GridBlock {
    static let dtype = DType.q4_1
    static let elements = 32
    static let dOffset = 0, mOffset = 2, qsOffset = 4
    static let bytes = qsOffset + 16
    static let fieldOffsets = ["d": dOffset, "m": mOffset, "qs": qsOffset]
    static let activation: DType? = .q8_1

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

extension Q4_1Block {
    /// ggml's `quantize_q4_1` with an importance matrix: weights as for Q4_0, each block's scale
    /// and minimum from `make_qkx3_quants` (nmax 15, 37 candidates from -0.9 by 0.05).
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { codes in
            let l = codes.baseAddress!, aux = l + 32
            ggmlWeightedBlocks(x, rowLength: rowLength, importance: importance) { b, xb, w in
                var min: Float = 0
                let d = ggmlQKX(32, 15, xb, weights: w, l, theMin: &min, aux, rmin: -0.9, rdelta: 0.05, nstep: 36, mad: false)
                let block = dst + b * bytes
                block.storeF16(d, at: dOffset)
                block.storeF16(-min, at: mOffset)
                for j in 0..<16 { block.storeU8(l[j] | l[j + 16] << 4, at: qsOffset + j) }
            }
        }
    }

    // GPTQ grid: codes 0…15 with an offset m.
    static let codeRange: (lo: Int32, hi: Int32) = (0, 15)
    static let hasOffset = true

    static func referenceScale(_ x: UnsafePointer<Float>) -> BlockGrid.Scale {
        var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            mn = min(mn, x[j])
            mx = max(mx, x[j])
        }
        return BlockGrid.Scale(d: BlockGrid.f16((mx - mn) / 15), m: BlockGrid.f16(mn))
    }

    static func pack(codes: UnsafePointer<Int32>, scale: BlockGrid.Scale, into dst: UnsafeMutableRawPointer) {
        dst.storeF16(scale.d, at: dOffset)
        dst.storeF16(scale.m, at: mOffset)
        for j in 0..<16 {
            dst.storeU8(UInt8(truncatingIfNeeded: codes[j]) | UInt8(truncatingIfNeeded: codes[j + 16]) << 4, at: qsOffset + j)
        }
    }
}
