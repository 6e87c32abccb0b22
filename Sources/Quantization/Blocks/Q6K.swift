import TensorGraph

/// Q6_K: 6-bit codes around 32 in 16 sub-blocks of 16 with int8 scales. Value = d × scale × (code - 32).
///
///     offset  size  field
///          0   128  ql      low four bits (see `decode` for the order)
///        128    64  qh      high two bits
///        192    16  scales  int8 sub-block scales
///        208     2  d       f16 super-block scale
enum Q6_KBlock: QuantEncodable {
    static let dtype = DType.q6_K
    static let elements = 256
    static let qlOffset = 0, qhOffset = 128, scalesOffset = 192, dOffset = 208
    static let bytes = dOffset + 2
    static let fieldOffsets = ["ql": qlOffset, "qh": qhOffset, "scales": scalesOffset, "d": dOffset]
    static let activation: DType? = .q8_K

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

extension Q6_KBlock {
    /// One super-block: sub-blocks of 16 by `make_qx_quants` (nmax 32; weights x², or the
    /// importance when given), int8 scales against the one of largest magnitude (d = that / -128),
    /// codes rounded again with the stored scales — `quantize_row_q6_K_ref` and `quantize_q6_K`'s
    /// per-row step.
    static func encodeBlock(
        _ x: UnsafePointer<Float>, importance: UnsafePointer<Float>?, L: UnsafeMutablePointer<Int8>,
        scales: UnsafeMutablePointer<Float>, into block: UnsafeMutableRawPointer
    ) {
        // Sub-blocks 0-7 and 8-15, eight searches side by side (each bit-identical to a scalar one;
        // weights the importance, or x² without).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { wbuf in
            let w = wbuf.baseAddress!
            if let importance {
                for i in 0..<256 { w[i] = importance[i] }
            } else {
                for i in 0..<256 { w[i] = x[i] * x[i] }
            }
            for half in 0..<2 {
                let s8 = ggmlQX8(16, 32, x + 128 * half, weights: w + 128 * half, L + 128 * half)
                for j in 0..<8 { scales[8 * half + j] = s8[j] }
            }
        }
        var maxScale: Float = 0, maxAbsScale: Float = 0
        for ib in 0..<16 {
            let scale = scales[ib]
            let a = abs(scale)
            if a > maxAbsScale { maxAbsScale = a; maxScale = scale }
        }
        if maxAbsScale < ggmlGroupMaxEps {
            block.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            return
        }
        let iscale = -128 / maxScale
        block.storeF16(1 / iscale, at: dOffset)
        for ib in 0..<16 {
            let s = Int8(truncatingIfNeeded: min(127, ggmlNearestInt(iscale * scales[ib])))
            block.storeBytes(of: s, toByteOffset: scalesOffset + ib, as: Int8.self)
        }
        let dAll = UnsafeRawPointer(block).f16(dOffset)
        for j in 0..<16 {
            let d = dAll * Float(UnsafeRawPointer(block).i8(scalesOffset + j))
            if d == 0 { continue }
            for i in 0..<16 {
                L[16 * j + i] = Int8(truncatingIfNeeded: max(-32, min(31, ggmlNearestInt(x[16 * j + i] / d))) + 32)
            }
        }
        packCodes(L, into: block)
    }

    /// Packs 256 codes (0…63, biased by 32) into ql and qh.
    @inline(__always)
    static func packCodes(_ L: UnsafePointer<Int8>, into block: UnsafeMutableRawPointer) {
        for half in 0..<2 {
            let base = 128 * half
            for l in 0..<32 {
                let c0 = UInt8(bitPattern: L[base + l]), c1 = UInt8(bitPattern: L[base + l + 32])
                let c2 = UInt8(bitPattern: L[base + l + 64]), c3 = UInt8(bitPattern: L[base + l + 96])
                block.storeU8((c0 & 0x0F) | (c2 & 0x0F) << 4, at: qlOffset + 64 * half + l)
                block.storeU8((c1 & 0x0F) | (c3 & 0x0F) << 4, at: qlOffset + 64 * half + l + 32)
                block.storeU8((c0 >> 4) | (c1 >> 4) << 2 | (c2 >> 4) << 4 | (c3 >> 4) << 6, at: qhOffset + 32 * half + l)
            }
        }
    }

    /// ggml's `quantize_row_q6_K_ref`.
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { sc in
                for b in 0..<count {
                    encodeBlock(src + b * elements, importance: nil, L: codes.baseAddress!, scales: sc.baseAddress!,
                                into: dst + b * bytes)
                }
            }
        }
    }

    /// ggml's `quantize_q6_K` with an importance matrix: the importance itself weighs each value.
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { sc in
                for b in 0..<(rowLength / elements) {
                    encodeBlock(x + b * elements, importance: importance + b * elements, L: codes.baseAddress!,
                                scales: sc.baseAddress!, into: dst + b * bytes)
                }
            }
        }
    }
}

// MARK: - GPTQ: groups of 16, codes -32…31, int8 scale codes against d

extension Q6_KBlock: GPTQRoundable {
    static let gptqGroupSize = 16
    static let gptqLevels = GPTQGrid.Levels.integers(lo: -32, hi: 31)

    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale {
        GPTQGrid.encodedBlock(Self.self, x, weights: weights) { GPTQGrid.BlockScale(d: $0.f16(dOffset), dmin: 0) }
    }

    /// `make_qx_quants` (nmax 32, weights = the importance) estimates the scale; neighbouring int8
    /// codes are scored.
    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 16) { L in
            let scale = ggmlQX(16, 32, x, L.baseAddress!, weights: weights)
            return GPTQGrid.integerGroupScale(
                x, weights: weights, n: 16, block: block, estimate: (scale, 0), scaleCodes: -128...127, minCodes: nil,
                levels: gptqLevels, search: search)
        }
    }

    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        dst.storeF16(block.d, at: dOffset)
        for ib in 0..<16 {
            dst.storeBytes(of: Int8(truncatingIfNeeded: groups[ib].scale), toByteOffset: scalesOffset + ib, as: Int8.self)
        }
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { buf in
            let L = buf.baseAddress!
            for i in 0..<256 { L[i] = Int8(truncatingIfNeeded: codes[i] + 32) }
            packCodes(L, into: dst)
        }
    }
}
