import TensorGraph

/// Q5_K: Q4_K plus a fifth bit per value. Value = d × scale × code - dmin × min.
///
///     offset  size  field
///          0     2  d       f16 super-block scale of the scales
///          2     2  dmin    f16 super-block scale of the minimums
///          4    12  scales  as in Q4_K
///         16    32  qh      fifth bits: bit k of byte l belongs to value 32k + l
///         48   128  qs      low four bits, as Q4_K's codes
enum Q5_KBlock: QuantEncodable {
    static let dtype = DType.q5_K
    static let elements = 256
    static let dOffset = 0, dminOffset = 2, scalesOffset = 4, qhOffset = 16, qsOffset = 48
    static let bytes = qsOffset + 128
    static let fieldOffsets = ["d": dOffset, "dmin": dminOffset, "scales": scalesOffset, "qh": qhOffset, "qs": qsOffset]
    static let activation: DType? = .q8_K

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for b in 0..<count {
            let block = src + b &* bytes
            let y = dst + b &* elements
            let d = block.f16(dOffset)
            let dmin = block.f16(dminOffset)
            let scales = block + scalesOffset
            let qh = block + qhOffset
            for pair in 0..<4 {
                let q = block + (qsOffset &+ pair &* 32)
                let (sc1, m1) = kScaleMin(scales, 2 &* pair)
                let (sc2, m2) = kScaleMin(scales, 2 &* pair &+ 1)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let d2 = d * Float(sc2), min2 = dmin * Float(m2)
                let shift1 = UInt8(2 &* pair), shift2 = UInt8(2 &* pair &+ 1)
                let y1 = y + pair &* 64, y2 = y1 + 32
                for l in 0..<32 {
                    let v = q.u8(l)
                    let h = qh.u8(l)
                    y1[l] = d1 * Float((v & 0x0F) | ((h >> shift1) & 1) << 4) - min1
                    y2[l] = d2 * Float((v >> 4) | ((h >> shift2) & 1) << 4) - min2
                }
            }
        }
    }
}

extension Q5_KBlock {
    @inline(__always)
    static func pack(_ L: UnsafePointer<UInt8>, into block: UnsafeMutableRawPointer) {
        var qh = [UInt8](repeating: 0, count: 32)
        var m1: UInt8 = 1, m2: UInt8 = 2
        for pair in 0..<4 {
            for j in 0..<32 {
                var l1 = L[64 * pair + j], l2 = L[64 * pair + j + 32]
                if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                block.storeU8(l1 | l2 << 4, at: qsOffset + 32 * pair + j)
            }
            m1 = m1 &<< 2
            m2 = m2 &<< 2
        }
        for j in 0..<32 { block.storeU8(qh[j], at: qhOffset + j) }
    }

    /// ggml's `quantize_row_q5_K_ref` (nmax 31; 16 candidate scales from -0.5 by 0.1).
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
            let L = codes.baseAddress!
            for b in 0..<count {
                let block = dst + b * bytes
                KQuantSearch.reference(
                    src + b * elements, nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15, L: L, block: block,
                    dOffset: dOffset, dminOffset: dminOffset, scalesOffset: scalesOffset)
                pack(L, into: block)
            }
        }
    }

    /// ggml's `quantize_q5_K` with an importance matrix.
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
            let L = codes.baseAddress!
            for b in 0..<(rowLength / elements) {
                let block = dst + b * bytes
                KQuantSearch.weighted(
                    x + b * elements, importance: importance + b * elements, nmax: 31, clampCodes: true, L: L,
                    block: block, dOffset: dOffset, dminOffset: dminOffset, scalesOffset: scalesOffset)
                pack(L, into: block)
            }
        }
    }
}

extension Q5_KBlock: GPTQRoundable {
    static let gptqGroupSize = 32
    static let gptqLevels = GPTQGrid.Levels.integers(lo: 0, hi: 31)

    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale {
        KQuantSearch.gptqBlockScale(Self.self, x, weights: weights, dOffset: dOffset, dminOffset: dminOffset)
    }

    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        KQuantSearch.gptqGroupScale(x, weights: weights, block: block, nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15, search: search)
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
