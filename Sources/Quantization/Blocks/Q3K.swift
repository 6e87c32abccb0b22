import TensorGraph

/// Q3_K: 3-bit codes (two low bits plus a high bit) in 16 sub-blocks of 16 with 6-bit signed
/// scales. Value = d × (scale - 32) × (low - (high bit set ? 0 : 4)).
///
///     offset  size  field
///          0    32  hmask   high bits: bit k of byte l belongs to value 32k + l
///         32    64  qs      low two bits (order as in Q2_K)
///         96    12  scales  sixteen 6-bit scales: low nibbles in bytes 0-7, high pairs in 8-11
///        108     2  d       f16 super-block scale
enum Q3_KBlock: QuantEncodable {
    static let dtype = DType.q3_K
    static let elements = 256
    static let hmaskOffset = 0, qsOffset = 32, scalesOffset = 96, dOffset = 108
    static let bytes = dOffset + 2
    static let fieldOffsets = ["hmask": hmaskOffset, "qs": qsOffset, "scales": scalesOffset, "d": dOffset]
    static let activation: DType? = .q8_K

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

extension Q3_KBlock {
    /// Stores sixteen 6-bit scale codes (0…63) in the 12 scale bytes (layout as `scale` reads).
    @inline(__always)
    static func storeScales(_ code: (Int) -> Int32, block: UnsafeMutableRawPointer) {
        var s = [UInt8](repeating: 0, count: 12)
        for j in 0..<16 {
            var l = code(j)
            if j < 8 {
                s[j] = UInt8(truncatingIfNeeded: l & 0x0F)
            } else {
                s[j - 8] |= UInt8(truncatingIfNeeded: (l & 0x0F) << 4)
            }
            l >>= 4
            s[j % 4 + 8] |= UInt8(truncatingIfNeeded: l << Int32(2 * (j / 4)))
        }
        for k in 0..<12 { block.storeU8(s[k], at: scalesOffset + k) }
    }

    /// Rounds every sub-block again with its stored scale (codes -4…3, kept biased by 4 in `L`;
    /// sub-blocks whose scale is 0 keep the search's codes) and packs high bits and low pairs.
    @inline(__always)
    static func finish(_ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>, block: UnsafeMutableRawPointer) {
        let dAll = UnsafeRawPointer(block).f16(dOffset)
        for j in 0..<16 {
            let d = dAll * Float(scale(UnsafeRawPointer(block), j))
            if d == 0 { continue }
            for i in 0..<16 {
                L[16 * j + i] = Int8(truncatingIfNeeded: max(-4, min(3, ggmlNearestInt(x[16 * j + i] / d))) + 4)
            }
        }
        packCodes(L, block: block)
    }

    /// Packs 256 codes (0…7, biased by 4; `L` is overwritten) as high bits and low pairs.
    @inline(__always)
    static func packCodes(_ L: UnsafeMutablePointer<Int8>, block: UnsafeMutableRawPointer) {
        var hmask = [UInt8](repeating: 0, count: 32)
        var m = 0
        var hm: UInt8 = 1
        for j in 0..<256 {
            if L[j] > 3 {
                hmask[m] |= hm
                L[j] -= 4
            }
            m += 1
            if m == 32 {
                m = 0
                hm = hm &<< 1
            }
        }
        for k in 0..<32 { block.storeU8(hmask[k], at: hmaskOffset + k) }
        packTwoBitCodes(UnsafePointer(L), into: block + qsOffset)
    }

    /// ggml's `quantize_row_q3_K_ref`: each sub-block of 16 by `make_q3_quants` (nmax 4), the
    /// sixteen scales rounded to 6 bits against the one of largest magnitude.
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { sc in
                let L = codes.baseAddress!, scales = sc.baseAddress!
                for b in 0..<count {
                    let x = src + b * elements
                    let block = dst + b * bytes
                    var maxScale: Float = 0, amax: Float = 0
                    for j in 0..<16 {
                        scales[j] = ggmlQ3(16, 4, x + 16 * j, L + 16 * j)
                        let a = abs(scales[j])
                        if a > amax { amax = a; maxScale = scales[j] }
                    }
                    if maxScale != 0 {
                        let iscale = -32 / maxScale
                        storeScales({ j in
                            let l = Int8(truncatingIfNeeded: ggmlNearestInt(iscale * scales[j]))
                            return Int32(max(-32, min(31, l)) + 32)
                        }, block: block)
                        block.storeF16(1 / iscale, at: dOffset)
                    } else {
                        for k in 0..<12 { block.storeU8(0, at: scalesOffset + k) }
                        block.storeF16(0, at: dOffset)
                    }
                    finish(x, L, block: block)
                }
            }
        }
    }

    /// ggml's `quantize_q3_K` with an importance matrix: weights importance × sqrt(σ² + x²) (σ²
    /// twice the super-block's mean square), sub-blocks by `make_qx_quants` (nmax 4), the sixteen
    /// scales by `make_qx_quants` (nmax 32) weighted by each sub-block's total weight.
    static func encodeWeighted(
        _ src: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256 + 16) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 48) { floats in
                let L = codes.baseAddress!, Ls = L + 256
                let scales = floats.baseAddress!, weight = scales + 16, sw = weight + 16
                for b in 0..<(rowLength / elements) {
                    let x = src + b * elements
                    let block = dst + b * bytes
                    let sigma2 = 2 * ggmlSumSquares(x, 256) / 256
                    for j in 0..<16 {
                        let qw = importance + 256 * b + 16 * j
                        for l in 0..<16 { weight[l] = qw[l] * (sigma2 + x[16 * j + l] * x[16 * j + l]).squareRoot() }
                        var sumw: Float = 0
                        for l in 0..<16 { sumw += weight[l] }
                        sw[j] = sumw
                        scales[j] = ggmlQX(16, 4, x + 16 * j, L + 16 * j, weights: weight)
                    }
                    let dBlock = ggmlQX(16, 32, scales, Ls, weights: sw)
                    storeScales({ Int32(Ls[$0]) }, block: block)
                    block.storeF16(dBlock, at: dOffset)
                    finish(x, L, block: block)
                }
            }
        }
    }
}

// MARK: - GPTQ: groups of 16, codes -4…3, signed 6-bit scale codes against d

extension Q3_KBlock: GPTQRoundable {
    static let gptqGroupSize = 16
    static let gptqLevels = GPTQGrid.Levels.integers(lo: -4, hi: 3)

    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale {
        GPTQGrid.encodedBlock(Self.self, x, weights: weights) { GPTQGrid.BlockScale(d: $0.f16(dOffset), dmin: 0) }
    }

    /// `make_qx_quants` (nmax 4, weights = the importance) estimates the scale; neighbouring codes
    /// are scored.
    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 16) { L in
            let scale = ggmlQX(16, 4, x, L.baseAddress!, weights: weights)
            return GPTQGrid.integerGroupScale(
                x, weights: weights, n: 16, block: block, estimate: (scale, 0), scaleCodes: -32...31, minCodes: nil,
                levels: gptqLevels, search: search)
        }
    }

    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        storeScales({ groups[$0].scale + 32 }, block: dst)
        dst.storeF16(block.d, at: dOffset)
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { buf in
            let L = buf.baseAddress!
            for i in 0..<256 { L[i] = Int8(truncatingIfNeeded: codes[i] + 4) }
            packCodes(L, block: dst)
        }
    }
}
