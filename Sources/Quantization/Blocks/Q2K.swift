import TensorGraph

/// Q2_K: 2-bit codes in 16 sub-blocks of 16; each sub-block has a 4-bit scale and a 4-bit minimum.
/// Value = d × scale × code - dmin × min.
///
///     offset  size  field
///          0    16  scales  sub-block j: scale in the low nibble, minimum in the high nibble
///         16    64  qs      codes: 2 bits each (see `decode` for the order)
///         80     2  d       f16 super-block scale of the scales
///         82     2  dmin    f16 super-block scale of the minimums
enum Q2_KBlock: QuantEncodable {
    static let dtype = DType.q2_K
    static let elements = 256
    static let scalesOffset = 0, qsOffset = 16, dOffset = 80, dminOffset = 82
    static let bytes = dminOffset + 2
    static let fieldOffsets = ["scales": scalesOffset, "qs": qsOffset, "d": dOffset, "dmin": dminOffset]
    static let activation: DType? = .q8_K

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            var y = dst + b &* elements
            let d = block.f16(dOffset)
            let dmin = block.f16(dminOffset)
            var sub = 0
            // Two halves of 128 values; each uses 32 code bytes, taking bits 0-1, 2-3, 4-5, 6-7 in
            // turn; each bit pair covers two sub-blocks (bytes 0-15, then bytes 16-31).
            for half in 0..<2 {
                let q = block + (qsOffset &+ half &* 32)
                for shift in stride(from: UInt8(0), to: 8, by: 2) {
                    for part in 0..<2 {
                        let sc = block.u8(scalesOffset &+ sub)
                        sub &+= 1
                        let dl = d * Float(sc & 0x0F)
                        let ml = dmin * Float(sc >> 4)
                        for l in 0..<16 {
                            y[l] = dl * Float((q.u8(part &* 16 &+ l) >> shift) & 3) - ml
                        }
                        y += 16
                    }
                }
            }
        }
    }
}

/// Packs 256 two-bit codes the way Q2_K and Q3_K store them: each 128 values fill 32 bytes, value
/// l + 32k in bits 2k, 2k + 1 of byte l.
@inline(__always)
func packTwoBitCodes<T: BinaryInteger>(_ L: UnsafePointer<T>, into q: UnsafeMutableRawPointer) {
    for half in 0..<2 {
        let base = 128 * half
        for l in 0..<32 {
            let v = UInt8(truncatingIfNeeded: L[base + l]) | UInt8(truncatingIfNeeded: L[base + l + 32]) << 2
                | UInt8(truncatingIfNeeded: L[base + l + 64]) << 4 | UInt8(truncatingIfNeeded: L[base + l + 96]) << 6
            q.storeU8(v, at: 32 * half + l)
        }
    }
}

extension Q2_KBlock {
    /// Rounds each sub-block's codes again with its stored scale and minimum (the final step of
    /// both of ggml's Q2_K quantizers) and packs the codes.
    @inline(__always)
    static func finish(_ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>, block: UnsafeMutableRawPointer) {
        let dAll = UnsafeRawPointer(block).f16(dOffset), mAll = UnsafeRawPointer(block).f16(dminOffset)
        for j in 0..<16 {
            let sc = UnsafeRawPointer(block).u8(scalesOffset + j)
            let d = dAll * Float(sc & 0x0F)
            if d == 0 { continue }
            let dm = mAll * Float(sc >> 4)
            for i in 0..<16 {
                L[16 * j + i] = UInt8(truncatingIfNeeded: max(0, min(3, ggmlNearestInt((x[16 * j + i] + dm) / d))))
            }
        }
        packTwoBitCodes(UnsafePointer(L), into: block + qsOffset)
    }

    /// ggml's `quantize_row_q2_K_ref`: each sub-block of 16 searched by `make_qkx2_quants` (nmax 3,
    /// weights |x|, absolute error), its scale and minimum then rounded to 4 bits against the
    /// largest ones.
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 16) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * 3) { floats in
                let L = codes.baseAddress!, aux = L + 256
                let weights = floats.baseAddress!, mins = weights + 16, scales = mins + 16
                for b in 0..<count {
                    let x = src + b * elements
                    let block = dst + b * bytes
                    var maxScale: Float = 0, maxMin: Float = 0
                    for j in 0..<16 {
                        for l in 0..<16 { weights[l] = abs(x[16 * j + l]) }
                        scales[j] = ggmlQKX(16, 3, x + 16 * j, weights: weights, L + 16 * j, theMin: &mins[j], aux,
                                            rmin: -0.5, rdelta: 0.1, nstep: 15, mad: true)
                        if scales[j] > maxScale { maxScale = scales[j] }
                        if mins[j] > maxMin { maxMin = mins[j] }
                    }
                    if maxScale > 0 {
                        let iscale = 15 / maxScale
                        for j in 0..<16 { block.storeU8(UInt8(truncatingIfNeeded: ggmlNearestInt(iscale * scales[j])), at: scalesOffset + j) }
                        block.storeF16(maxScale / 15, at: dOffset)
                    } else {
                        for j in 0..<16 { block.storeU8(0, at: scalesOffset + j) }
                        block.storeF16(0, at: dOffset)
                    }
                    if maxMin > 0 {
                        let iscale = 15 / maxMin
                        for j in 0..<16 {
                            let l = UInt8(truncatingIfNeeded: ggmlNearestInt(iscale * mins[j]) << 4)
                            block.storeU8(UnsafeRawPointer(block).u8(scalesOffset + j) | l, at: scalesOffset + j)
                        }
                        block.storeF16(maxMin / 15, at: dminOffset)
                    } else {
                        block.storeF16(0, at: dminOffset)
                    }
                    finish(x, L, block: block)
                }
            }
        }
    }

    /// ggml's `quantize_q2_K` with an importance matrix: weights importance × sqrt(σ² + x²) (σ²
    /// the super-block's mean square), sub-blocks by `make_qkx3_quants` (nmax 3), the sixteen
    /// scales and minimums by `make_qp_quants` (nmax 15) weighted by each sub-block's total weight.
    static func encodeWeighted(
        _ src: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 32) { codes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 + 16 * 3) { floats in
                let L = codes.baseAddress!, Ls = L + 256, Lm = Ls + 16
                let weight = floats.baseAddress!, mins = weight + 256, scales = mins + 16, sw = scales + 16
                for b in 0..<(rowLength / elements) {
                    let x = src + b * elements
                    let block = dst + b * bytes
                    for j in 0..<16 { sw[j] = 0 }
                    let sigma2 = ggmlSumSquares(x, 256) / 256
                    for j in 0..<16 {
                        let qw = importance + 256 * b + 16 * j, wj = weight + 16 * j
                        for l in 0..<16 { wj[l] = qw[l] * (sigma2 + x[16 * j + l] * x[16 * j + l]).squareRoot() }
                        for l in 0..<16 { sw[j] += wj[l] }
                    }
                    // Sub-blocks 0-7 and 8-15, eight searches side by side (each bit-identical to a
                    // scalar one).
                    for half in 0..<2 {
                        let (s8, m8) = ggmlQKX8(16, 3, x + 128 * half, weights: weight + 128 * half, L + 128 * half,
                                                rmin: -0.9, rdelta: 0.05, nstep: 36)
                        for j in 0..<8 {
                            scales[8 * half + j] = s8[j]
                            mins[8 * half + j] = m8[j]
                        }
                    }
                    let dm = ggmlQP(16, 15, scales, Ls, weights: sw)
                    let mm = ggmlQP(16, 15, mins, Lm, weights: sw)
                    block.storeF16(dm, at: dOffset)
                    block.storeF16(mm, at: dminOffset)
                    for j in 0..<16 { block.storeU8(Ls[j] | Lm[j] << 4, at: scalesOffset + j) }
                    finish(x, L, block: block)
                }
            }
        }
    }
}

// MARK: - GPTQ: groups of 16, codes 0…3, 4-bit scale and minimum codes

extension Q2_KBlock: GPTQRoundable {
    static let gptqGroupSize = 16
    static let gptqLevels = GPTQGrid.Levels.integers(lo: 0, hi: 3)

    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale {
        GPTQGrid.encodedBlock(Self.self, x, weights: weights) {
            GPTQGrid.BlockScale(d: $0.f16(dOffset), dmin: $0.f16(dminOffset))
        }
    }

    /// `make_qkx3_quants`'s search (nmax 3, weights = the importance) estimates scale and minimum;
    /// neighbouring codes are scored.
    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buf in
            let L = buf.baseAddress!
            var theMin: Float = 0
            let scale = ggmlQKX(16, 3, x, weights: weights, L, theMin: &theMin, L + 16, rmin: -0.9, rdelta: 0.05, nstep: 36,
                                mad: false)
            return GPTQGrid.integerGroupScale(
                x, weights: weights, n: 16, block: block, estimate: (scale, theMin), scaleCodes: 0...15, minCodes: 0...15,
                levels: gptqLevels, search: search)
        }
    }

    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        for j in 0..<16 {
            let sc = UInt8(truncatingIfNeeded: groups[j].scale) | UInt8(truncatingIfNeeded: groups[j].min) << 4
            dst.storeU8(sc, at: scalesOffset + j)
        }
        dst.storeF16(block.d, at: dOffset)
        dst.storeF16(block.dmin, at: dminOffset)
        packTwoBitCodes(codes, into: dst + qsOffset)
    }
}
