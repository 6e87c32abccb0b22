import TensorGraph

/// The 6-bit scale and minimum of sub-block `j` (0..<8) of a Q4_K / Q5_K super-block, from the 12
/// packed bytes at `s`: sub-blocks 0-3 keep their six bits in the low bits of bytes j (scale) and
/// j + 4 (minimum); sub-blocks 4-7 take four bits from byte j + 4 (low nibble: scale, high nibble:
/// minimum) and their top two bits from the spare top bits of bytes j - 4 (scale) and j (minimum).
@inline(__always)
func kScaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
    if j < 4 {
        return (s.u8(j) & 63, s.u8(j &+ 4) & 63)
    }
    let packed = s.u8(j &+ 4)
    return ((packed & 0x0F) | (s.u8(j &- 4) >> 6) << 4, (packed >> 4) | (s.u8(j) >> 6) << 4)
}

/// Q4_K: 4-bit codes in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit minimum.
/// Value = d × scale × code - dmin × min.
///
///     offset  size  field
///          0     2  d       f16 super-block scale of the scales
///          2     2  dmin    f16 super-block scale of the minimums
///          4    12  scales  eight 6-bit scales and eight 6-bit minimums (see `kScaleMin`)
///         16   128  qs      codes: each 32 bytes hold two sub-blocks (low nibbles, then high)
enum Q4_KBlock: QuantEncodable {
    static let dtype = DType.q4_K
    static let elements = 256
    static let dOffset = 0, dminOffset = 2, scalesOffset = 4, qsOffset = 16
    static let bytes = qsOffset + 128
    static let fieldOffsets = ["d": dOffset, "dmin": dminOffset, "scales": scalesOffset, "qs": qsOffset]
    static let activation: DType? = .q8_K

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            let dmin = block.f16(dminOffset)
            let scales = block + scalesOffset
            for pair in 0..<4 {
                let q = block + (qsOffset &+ pair &* 32)
                let (sc1, m1) = kScaleMin(scales, 2 &* pair)
                let (sc2, m2) = kScaleMin(scales, 2 &* pair &+ 1)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let d2 = d * Float(sc2), min2 = dmin * Float(m2)
                let y1 = y + pair &* 64, y2 = y1 + 32
                for l in 0..<32 {
                    let v = q.u8(l)
                    y1[l] = d1 * Float(v & 0x0F) - min1
                    y2[l] = d2 * Float(v >> 4) - min2
                }
            }
        }
    }
}

/// The two searches of Q4_K and Q5_K (codes 0…nmax in 8 sub-blocks of 32 with 6-bit scales and
/// minimums), which differ only in nmax, the candidate scales and how codes are packed.
enum KQuantSearch {
    /// Stores eight 6-bit scales and minimums into the 12 bytes at `s` (the layout `kScaleMin`
    /// reads), as ggml does: bytes are written in order, with its truncations.
    @inline(__always)
    static func storeScaleMins(_ ls: (Int) -> UInt8, _ lm: (Int) -> UInt8, into s: UnsafeMutableRawPointer) {
        var b = [UInt8](repeating: 0, count: 12)
        for j in 0..<8 {
            let l = ls(j), m = lm(j)
            if j < 4 {
                b[j] = l
                b[j + 4] = m
            } else {
                b[j + 4] = (l & 0x0F) | (m & 0x0F) << 4
                b[j - 4] |= (l >> 4) << 6
                b[j] |= (m >> 4) << 6
            }
        }
        for k in 0..<12 { s.storeU8(b[k], at: k) }
    }

    /// Codes of a whole super-block rounded again with the stored scales (sub-blocks whose scale is
    /// 0 keep the search's codes).
    @inline(__always)
    static func requantize(
        _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>, nmax: Int32, block: UnsafeRawPointer,
        dOffset: Int, dminOffset: Int, scalesOffset: Int
    ) {
        let dAll = block.f16(dOffset), mAll = block.f16(dminOffset)
        for j in 0..<8 {
            let (sc, m) = kScaleMin(block + scalesOffset, j)
            let d = dAll * Float(sc)
            if d == 0 { continue }
            let dm = mAll * Float(m)
            for i in 0..<32 {
                L[32 * j + i] = UInt8(truncatingIfNeeded: max(0, min(nmax, ggmlNearestInt((x[32 * j + i] + dm) / d))))
            }
        }
    }

    /// `quantize_row_q4_K_ref` / `quantize_row_q5_K_ref` up to packing the codes: sub-blocks by
    /// `make_qkx2_quants` with weights rms + |x|, scales and minimums rounded to 6 bits against
    /// the largest.
    static func reference(
        _ x: UnsafePointer<Float>, nmax: Int32, rmin: Float, rdelta: Float, nstep: Int, L: UnsafeMutablePointer<UInt8>,
        block: UnsafeMutableRawPointer, dOffset: Int, dminOffset: Int, scalesOffset: Int
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { floats in
            let weights = floats.baseAddress!
            for j in 0..<8 {
                let xs = x + 32 * j
                let avx = (ggmlSumSquares(xs, 32) / 32).squareRoot()
                for l in 0..<32 { weights[32 * j + l] = avx + abs(xs[l]) }
            }
            // The eight sub-blocks' searches side by side (each bit-identical to a scalar one).
            let (scales, mins) = ggmlQKX8(32, nmax, x, weights: weights, L, rmin: rmin, rdelta: rdelta, nstep: nstep)
            var maxScale: Float = 0, maxMin: Float = 0
            for j in 0..<8 {
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
            storeScaleMins(
                { min(63, UInt8(truncatingIfNeeded: ggmlNearestInt(invScale * scales[$0]))) },
                { min(63, UInt8(truncatingIfNeeded: ggmlNearestInt(invMin * mins[$0]))) },
                into: block + scalesOffset)
            block.storeF16(maxScale / 63, at: dOffset)
            block.storeF16(maxMin / 63, at: dminOffset)
        }
        requantize(x, L, nmax: nmax, block: block, dOffset: dOffset, dminOffset: dminOffset, scalesOffset: scalesOffset)
    }

    /// `quantize_q4_K` / `quantize_q5_K` with importance weights (`importance` nil: their no-weights
    /// branch, unused by ggml's own entry points) up to packing the codes: weights importance ×
    /// sqrt(σ² + x²) (σ² twice the super-block's mean square), sub-blocks by `make_qkx3_quants`, the
    /// eight scales and minimums by `make_qp_quants` (nmax 63) weighted by sub-block totals.
    static func weighted(
        _ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, nmax: Int32, clampCodes: Bool,
        L: UnsafeMutablePointer<UInt8>, block: UnsafeMutableRawPointer, dOffset: Int, dminOffset: Int, scalesOffset: Int
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 + 24) { floats in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { bytes in
                let weights = floats.baseAddress!, mins = weights + 256, scales = mins + 8, sw = scales + 8
                let Ls = bytes.baseAddress!, Lm = Ls + 8
                let sigma2 = 2 * ggmlSumSquares(x, 256) / 256
                for j in 0..<8 {
                    let xs = x + 32 * j, qw = importance + 32 * j, wj = weights + 32 * j
                    for l in 0..<32 { wj[l] = qw[l] * (sigma2 + xs[l] * xs[l]).squareRoot() }
                    var sumw: Float = 0
                    for l in 0..<32 { sumw += wj[l] }
                    sw[j] = sumw
                }
                // The eight sub-blocks' searches side by side (each bit-identical to a scalar one).
                let (s8, m8) = ggmlQKX8(32, nmax, x, weights: weights, L, rmin: -0.9, rdelta: 0.05, nstep: 36)
                for j in 0..<8 {
                    scales[j] = s8[j]
                    mins[j] = m8[j]
                }
                let dBlock = ggmlQP(8, 63, scales, Ls, weights: sw)
                let mBlock = ggmlQP(8, 63, mins, Lm, weights: sw)
                storeScaleMins(
                    { clampCodes ? min(63, Ls[$0]) : Ls[$0] }, { clampCodes ? min(63, Lm[$0]) : Lm[$0] },
                    into: block + scalesOffset)
                block.storeF16(dBlock, at: dOffset)
                block.storeF16(mBlock, at: dminOffset)
            }
        }
        requantize(x, L, nmax: nmax, block: block, dOffset: dOffset, dminOffset: dminOffset, scalesOffset: scalesOffset)
    }
}

extension Q4_KBlock {
    @inline(__always)
    static func pack(_ L: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        for pair in 0..<4 {
            for l in 0..<32 {
                block.storeU8(L[64 * pair + l] | L[64 * pair + l + 32] << 4, at: qsOffset + 32 * pair + l)
            }
        }
    }

    /// ggml's `quantize_row_q4_K_ref` (nmax 15; 21 candidate scales from -1 by 0.1).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
            let L = codes.baseAddress!
            for b in 0..<count {
                let block = dst + b * bytes
                KQuantSearch.reference(
                    src + b * elements, nmax: 15, rmin: -1, rdelta: 0.1, nstep: 20, L: L, block: block,
                    dOffset: dOffset, dminOffset: dminOffset, scalesOffset: scalesOffset)
                pack(L, into: block)
            }
        }
    }

    /// ggml's `quantize_q4_K` with an importance matrix.
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
            let L = codes.baseAddress!
            for b in 0..<(rowLength / elements) {
                let block = dst + b * bytes
                KQuantSearch.weighted(
                    x + b * elements, importance: importance + b * elements, nmax: 15, clampCodes: false, L: L,
                    block: block, dOffset: dOffset, dminOffset: dminOffset, scalesOffset: scalesOffset)
                pack(L, into: block)
            }
        }
    }
}

// MARK: - GPTQ (Q4_K and Q5_K): groups of 32, codes 0…nmax, 6-bit scale and minimum codes

extension KQuantSearch {
    /// d and dmin as an importance-weighted encoding of the super-block's current values stores them.
    static func gptqBlockScale<T: QuantEncodable>(
        _ type: T.Type, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, dOffset: Int, dminOffset: Int
    ) -> GPTQGrid.BlockScale {
        GPTQGrid.encodedBlock(type, x, weights: weights) { GPTQGrid.BlockScale(d: $0.f16(dOffset), dmin: $0.f16(dminOffset)) }
    }

    /// A group's 6-bit scale and minimum codes: `make_qkx2_quants`'s search (weights = the
    /// importance) estimates them, neighbouring codes are scored.
    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, nmax: Int32, rmin: Float,
        rdelta: Float, nstep: Int, search: Bool
    ) -> GPTQGrid.GroupScale {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buf in
            let L = buf.baseAddress!
            var theMin: Float = 0
            let scale = ggmlQKX(32, nmax, x, weights: weights, L, theMin: &theMin, L + 32, rmin: rmin, rdelta: rdelta,
                                nstep: nstep, mad: false)
            return GPTQGrid.integerGroupScale(
                x, weights: weights, n: 32, block: block, estimate: (scale, theMin), scaleCodes: 0...63, minCodes: 0...63,
                levels: .integers(lo: 0, hi: nmax), search: search)
        }
    }

    /// Stores d, dmin and the eight groups' codes; `L` gets the 256 codes as bytes.
    static func gptqStore(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        L: UnsafeMutablePointer<UInt8>, into dst: UnsafeMutableRawPointer, dOffset: Int, dminOffset: Int, scalesOffset: Int
    ) {
        dst.storeF16(block.d, at: dOffset)
        dst.storeF16(block.dmin, at: dminOffset)
        storeScaleMins(
            { UInt8(truncatingIfNeeded: groups[$0].scale) }, { UInt8(truncatingIfNeeded: groups[$0].min) },
            into: dst + scalesOffset)
        for i in 0..<256 { L[i] = UInt8(truncatingIfNeeded: codes[i]) }
    }
}

extension Q4_KBlock: GPTQRoundable {
    static let gptqGroupSize = 32
    static let gptqLevels = GPTQGrid.Levels.integers(lo: 0, hi: 15)

    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale {
        KQuantSearch.gptqBlockScale(Self.self, x, weights: weights, dOffset: dOffset, dminOffset: dminOffset)
    }

    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        KQuantSearch.gptqGroupScale(x, weights: weights, block: block, nmax: 15, rmin: -1, rdelta: 0.1, nstep: 20, search: search)
    }

    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buf in
            KQuantSearch.gptqStore(
                codes: codes, block: block, groups: groups, L: buf.baseAddress!, into: dst, dOffset: dOffset,
                dminOffset: dminOffset, scalesOffset: scalesOffset)
            pack(buf.baseAddress!, into: dst)
        }
    }
}
