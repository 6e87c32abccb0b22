import TensorGraph

/// The 16 non-uniform levels of IQ4_NL and IQ4_XS (ggml's `kvalues_iq4nl`), as floats.
let iq4nlLevels: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

/// IQ4_NL: 32 values as 4-bit indices into `iq4nlLevels`, one f16 scale. Value = d × level.
///
///     offset  size  field
///          0     2  d      f16 scale
///          2    16  qs     indices: byte j holds value j (low nibble) and value j + 16 (high nibble)
enum IQ4_NLBlock: QuantEncodable {
    static let dtype = DType.iq4_NL
    static let elements = 32
    static let dOffset = 0, qsOffset = 2
    static let bytes = qsOffset + 16
    static let fieldOffsets = ["d": dOffset, "qs": qsOffset]
    static let activation: DType? = .q8_0

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
enum IQ4_XSBlock: QuantEncodable {
    static let dtype = DType.iq4_XS
    static let elements = 256
    static let dOffset = 0, scalesHOffset = 2, scalesLOffset = 4, qsOffset = 8
    static let bytes = qsOffset + 128
    static let fieldOffsets = ["d": dOffset, "scales_h": scalesHOffset, "scales_l": scalesLOffset, "qs": qsOffset]
    static let activation: DType? = .q8_K

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

/// ggml's non-linear 4-bit search (`quantize_row_iq4_nl_impl` with 7 tries, as `quantize_iq4_nl`
/// and `quantize_iq4_xs` call it) over one super-block of `n` values (32 for IQ4_NL, 256 for
/// IQ4_XS) in sub-blocks of 32: each sub-block's scale maximises (Σ w q x)² / Σ w q² over 16
/// candidate inverse scales mapping the extreme value near level -127 (weights x², or
/// importance × sqrt(σ² + x²) with σ² twice the mean square); IQ4_XS then rounds the scales to
/// 6 bits against the largest and re-picks the levels.
enum IQ4Search {
    static let ntry = 7

    /// Returns the f16 super-block scale's value to store and fills `L` (level indices) and, for
    /// more than one sub-block, the 6-bit scale codes (0…63) in `scaleCodes`.
    static func search(
        _ x: UnsafePointer<Float>, n: Int, importance: UnsafePointer<Float>?, levels k: UnsafePointer<Float>,
        L: UnsafeMutablePointer<UInt8>, scales: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
        scaleCodes: UnsafeMutablePointer<Int32>
    ) -> Float {
        var sigma2: Float = 0
        for j in 0..<n { sigma2 += x[j] * x[j] }
        sigma2 *= 2 / Float(n)
        var maxScale: Float = 0, amaxScale: Float = 0
        let blocks = n / 32
        for ib in 0..<blocks {
            let xb = x + 32 * ib
            let Lb = L + 32 * ib
            if let importance {
                let qw = importance + 32 * ib
                for j in 0..<32 { weight[j] = qw[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            } else {
                for j in 0..<32 { weight[j] = xb[j] * xb[j] }
            }
            guard let d = subBlockScale(xb, weight: weight, levels: k, L: Lb) else {
                scales[ib] = 0
                continue
            }
            scales[ib] = d
            let ad = abs(d)
            if ad > amaxScale { amaxScale = ad; maxScale = d }
        }
        if blocks > 1 {
            let d = -maxScale / 32
            let id: Float = d != 0 ? 1 / d : 0
            for ib in 0..<blocks {
                let l = Swift.max(-32, Swift.min(31, ggmlNearestInt(id * scales[ib])))
                let dl = d * Float(l)
                let idl: Float = dl != 0 ? 1 / dl : 0
                let xb = x + 32 * ib, Lb = L + 32 * ib
                for j in 0..<32 { Lb[j] = UInt8(ggmlBestIndex(k, idl * xb[j])) }
                scaleCodes[ib] = l + 32
            }
            return d
        }
        let id: Float = scales[0] != 0 ? 1 / scales[0] : 0
        for j in 0..<n { L[j] = UInt8(ggmlBestIndex(k, id * x[j])) }
        return scales[0]
    }

    /// One sub-block's scale: the best of 16 candidates by (Σ w q x)² / Σ w q² (nil when the
    /// sub-block's largest magnitude is below ggml's epsilon); `L` gets the first candidate's levels.
    @inline(__always)
    static func subBlockScale(
        _ xb: UnsafePointer<Float>, weight: UnsafePointer<Float>, levels k: UnsafePointer<Float>, L Lb: UnsafeMutablePointer<UInt8>
    ) -> Float? {
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 {
            let ax = abs(xb[j])
            if ax > amax { amax = ax; max = xb[j] }
        }
        if amax < ggmlGroupMaxEps { return nil }
        var d = -max / k[0]
        var id = 1 / d
        var sumqx: Float = 0, sumq2: Float = 0
        for j in 0..<32 {
            let l = ggmlBestIndex(k, id * xb[j])
            Lb[j] = UInt8(l)
            let q = k[l], w = weight[j]
            sumqx += w * q * xb[j]
            sumq2 += w * q * q
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0
        var best = d * sumqx
        for itry in -ntry...ntry {
            id = Float(itry + Int(k[0])) / max
            sumqx = 0
            sumq2 = 0
            for j in 0..<32 {
                let q = k[ggmlBestIndex(k, id * xb[j])], w = weight[j]
                sumqx += w * q * xb[j]
                sumq2 += w * q * q
            }
            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2
                best = d * sumqx
            }
        }
        return d
    }

    /// Stores IQ4_XS's 6-bit scale codes (0…63): low nibbles two per byte, top bit pairs in a u16.
    @inline(__always)
    static func storeScaleCodes(
        _ code: (Int) -> Int32, count: Int, into dst: UnsafeMutableRawPointer, scalesHOffset: Int, scalesLOffset: Int
    ) {
        var high: UInt16 = 0
        for ib in 0..<count {
            let l = code(ib)
            let low = UInt8(truncatingIfNeeded: l & 0x0F)
            if ib % 2 == 0 {
                dst.storeU8(low, at: scalesLOffset + ib / 2)
            } else {
                dst.storeU8(UnsafeRawPointer(dst).u8(scalesLOffset + ib / 2) | low << 4, at: scalesLOffset + ib / 2)
            }
            high |= UInt16(truncatingIfNeeded: l >> 4) << UInt16(2 * (ib % 8))
        }
        dst.storeBytes(of: high.littleEndian, toByteOffset: scalesHOffset, as: UInt16.self)
    }

    /// Packs 32 level indices per 16 bytes: value j low nibble, value j + 16 high nibble.
    @inline(__always)
    static func pack(_ L: UnsafePointer<UInt8>, n: Int, into q: UnsafeMutableRawPointer) {
        for i in 0..<(n / 32) {
            for j in 0..<16 { q.storeU8(L[32 * i + j] | L[32 * i + 16 + j] << 4, at: 16 * i + j) }
        }
    }

    /// Encodes one super-block of `Block` at `dst`.
    static func encode(
        _ x: UnsafePointer<Float>, n: Int, importance: UnsafePointer<Float>?, into dst: UnsafeMutableRawPointer,
        qsOffset: Int, scalesHOffset: Int?, scalesLOffset: Int?
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + 8) { floats in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: 8) { sc in
                    iq4nlLevels.withUnsafeBufferPointer { levels in
                        let weight = floats.baseAddress!, scales = weight + 32
                        let d = search(
                            x, n: n, importance: importance, levels: levels.baseAddress!, L: codes.baseAddress!,
                            scales: scales, weight: weight, scaleCodes: sc.baseAddress!)
                        dst.storeF16(d, at: 0)
                        if let scalesHOffset, let scalesLOffset {
                            storeScaleCodes({ sc[$0] }, count: n / 32, into: dst, scalesHOffset: scalesHOffset, scalesLOffset: scalesLOffset)
                        }
                        pack(codes.baseAddress!, n: n, into: dst + qsOffset)
                    }
                }
            }
        }
    }
}

extension IQ4_NLBlock {
    /// ggml's `quantize_iq4_nl` without an importance matrix (weights x², 7 tries — not
    /// `quantize_row_iq4_nl_ref`, which llama-quantize does not use).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            IQ4Search.encode(src + 32 * b, n: 32, importance: nil, into: dst + bytes * b, qsOffset: qsOffset,
                             scalesHOffset: nil, scalesLOffset: nil)
        }
    }

    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        for b in 0..<(rowLength / 32) {
            IQ4Search.encode(x + 32 * b, n: 32, importance: importance + 32 * b, into: dst + bytes * b, qsOffset: qsOffset,
                             scalesHOffset: nil, scalesLOffset: nil)
        }
    }
}

extension IQ4_XSBlock {
    /// ggml's `quantize_iq4_xs` without an importance matrix.
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            IQ4Search.encode(src + 256 * b, n: 256, importance: nil, into: dst + bytes * b, qsOffset: qsOffset,
                             scalesHOffset: scalesHOffset, scalesLOffset: scalesLOffset)
        }
    }

    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        for b in 0..<(rowLength / 256) {
            IQ4Search.encode(x + 256 * b, n: 256, importance: importance + 256 * b, into: dst + bytes * b,
                             qsOffset: qsOffset, scalesHOffset: scalesHOffset, scalesLOffset: scalesLOffset)
        }
    }
}

// MARK: - GPTQ: groups of 32 on the non-uniform levels

extension IQ4Search {
    /// The continuous scale ggml's search picks for 32 values under `weights` (0 when tiny).
    static func gptqEstimate(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> Float {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
            iq4nlLevels.withUnsafeBufferPointer { k in
                subBlockScale(x, weight: weights, levels: k.baseAddress!, L: L.baseAddress!) ?? 0
            }
        }
    }
}

extension IQ4_NLBlock: GPTQRoundable {
    static let gptqGroupSize = 32
    static let gptqLevels = GPTQGrid.Levels.table(iq4nlLevels)

    /// The f16 scale: ggml's search under the importance, then (with `search`) the weighted
    /// least-squares refit for the levels it picks, whichever scores better after f16 rounding.
    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        let first = GPTQGrid.GroupScale(d: BlockGrid.f16(IQ4Search.gptqEstimate(x, weights: weights)))
        guard search, first.d != 0 else { return first }
        return iq4nlLevels.withUnsafeBufferPointer { kp in
            let k = kp.baseAddress!
            var best = first
            var bestError = GPTQGrid.error(x, weights, 32, first, lo: 0, hi: 0, table: k)
            var current = first
            for _ in 0..<2 {
                var sumqx: Float = 0, sumq2: Float = 0
                for j in 0..<32 {
                    let q = GPTQGrid.round(x[j], current, lo: 0, hi: 0, table: k).code
                    let l = k[Int(q)]
                    sumqx += weights[j] * l * x[j]
                    sumq2 += weights[j] * l * l
                }
                guard sumq2 > 0 else { break }
                current = GPTQGrid.GroupScale(d: BlockGrid.f16(sumqx / sumq2))
                guard current.d.isFinite, current.d != 0 else { break }
                let e = GPTQGrid.error(x, weights, 32, current, lo: 0, hi: 0, table: k)
                if e < bestError {
                    bestError = e
                    best = current
                }
            }
            return best
        }
    }

    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        dst.storeF16(groups[0].d, at: dOffset)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
            for i in 0..<32 { L[i] = UInt8(truncatingIfNeeded: codes[i]) }
            IQ4Search.pack(L.baseAddress!, n: 32, into: dst + qsOffset)
        }
    }
}

extension IQ4_XSBlock: GPTQRoundable {
    static let gptqGroupSize = 32
    static let gptqLevels = GPTQGrid.Levels.table(iq4nlLevels)

    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale {
        GPTQGrid.encodedBlock(Self.self, x, weights: weights) { GPTQGrid.BlockScale(d: $0.f16(dOffset), dmin: 0) }
    }

    /// The signed 6-bit scale code (stored + 32): ggml's search estimates the scale, neighbouring
    /// codes are scored.
    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        GPTQGrid.integerGroupScale(
            x, weights: weights, n: 32, block: block, estimate: (IQ4Search.gptqEstimate(x, weights: weights), 0),
            scaleCodes: -32...31, minCodes: nil, levels: gptqLevels, search: search)
    }

    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        dst.storeF16(block.d, at: dOffset)
        IQ4Search.storeScaleCodes({ groups[$0].scale + 32 }, count: 8, into: dst, scalesHOffset: scalesHOffset, scalesLOffset: scalesLOffset)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { L in
            for i in 0..<256 { L[i] = UInt8(truncatingIfNeeded: codes[i]) }
            IQ4Search.pack(L.baseAddress!, n: 256, into: dst + qsOffset)
        }
    }
}
