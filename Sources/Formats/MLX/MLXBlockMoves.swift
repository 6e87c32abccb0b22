import TensorGraph

/// The exact moves between MLX grids and ggml block types, without decoding a value:
///
/// | MLX | ggml | when exact |
/// |---|---|---|
/// | affine 4-bit, group a multiple of 32 | Q4_0 (d = scale) | every bias is −8 × scale, scales f16-representable |
/// | affine 4-bit, group a multiple of 32 | Q4_1 (d = scale, m = bias) | scales and biases f16-representable |
/// | affine 8-bit, group a multiple of 32 | Q8_0 (d = scale, q − 128) | every bias is −128 × scale, scales f16-representable |
/// | mxfp4 | MXFP4 (same E8M0 byte, same fp4 codes) | always |
///
/// An MLX group of 64 (or 128) becomes 2 (or 4) 32-value blocks repeating its scale and bias;
/// the reverse needs the blocks of a group to agree, so a ggml tensor moves to the largest group
/// size its blocks allow (32 always does).
enum MLXBlockMoves {
    /// The ggml block types a move can produce or take.
    static let blockTypes: Set<DType> = [.q4_0, .q4_1, .q8_0, .mxfp4]

    // MARK: MLX → blocks

    /// The block type `w` is exactly, if any (reads the scales and biases once).
    static func exactBlockType(_ w: MLXWeight) throws -> DType? {
        if w.grid.mode == .mxfp4 { return .mxfp4 }
        guard w.grid.groupSize % 32 == 0, w.grid.bits == 4 || w.grid.bits == 8 else { return nil }
        let offset = Float(1 << (w.grid.bits - 1))
        var f16 = true, symmetric = true
        var r = 0
        let chunk = max(1, (1 << 16) / max(1, w.groups))
        while r < w.rows && f16 {
            let range = r..<min(w.rows, r + chunk)
            let s = try MLXWeight.floats(w.scales, from: range.lowerBound * w.groups, count: range.count * w.groups)
            let b = try MLXWeight.floats(w.biases!, from: range.lowerBound * w.groups, count: range.count * w.groups)
            for i in 0..<s.count {
                if !isF16(s[i]) || !isF16(b[i]) { f16 = false; break }
                if b[i] != -offset * s[i] || (b[i] == 0 && s[i] != 0) { symmetric = false }
            }
            r = range.upperBound
        }
        guard f16 else { return nil }
        if w.grid.bits == 8 { return symmetric ? .q8_0 : nil }
        return symmetric ? .q4_0 : .q4_1
    }

    /// Whether `v` survives a round trip through f16 bit for bit.
    @inline(__always)
    static func isF16(_ v: Float) -> Bool {
        Half.f32(f16Bits: Half.f16Bits(v)).bitPattern == v.bitPattern
    }

    /// `w` as a lazy tensor of `type` (which `exactBlockType` returned for it).
    static func toBlocks(_ w: MLXWeight, _ type: DType) throws -> Tensor {
        let blocksPerRow = w.cols / 32
        let blockBytes = type.bytesPerBlock
        let rowBytes = blocksPerRow * blockBytes
        let g = w.grid.groupSize
        return try rowProduced(name: w.weightName, dtype: type, shape: w.shape, rows: w.rows, rowBytes: rowBytes) { range in
            let (codes, s, b) = try w.readRows(range)
            let e = type == .mxfp4 ? try w.scaleBytes(range) : []
            var out = [UInt8](repeating: 0, count: range.count * rowBytes)
            for r in 0..<range.count {
                for k in 0..<blocksPerRow {
                    let at = r * rowBytes + k * blockBytes
                    let first = r * w.cols + k * 32
                    let group = r * w.groups + (k * 32) / g
                    func put16(_ v: Float, _ o: Int) {
                        let h = Half.f16Bits(v)
                        out[at + o] = UInt8(h & 0xFF)
                        out[at + o + 1] = UInt8(h >> 8)
                    }
                    func nibbles(_ o: Int) {
                        for j in 0..<16 { out[at + o + j] = codes[first + j] | (codes[first + j + 16] << 4) }
                    }
                    switch type {
                    case .q4_0:
                        put16(s[group], 0)
                        nibbles(2)
                    case .q4_1:
                        put16(s[group], 0)
                        put16(b[group], 2)
                        nibbles(4)
                    case .q8_0:
                        put16(s[group], 0)
                        for j in 0..<32 { out[at + 2 + j] = codes[first + j] ^ 0x80 }
                    default:  // mxfp4
                        out[at] = e[group]
                        nibbles(1)
                    }
                }
            }
            return out
        }
    }

    // MARK: blocks → MLX

    /// A ggml block tensor re-expressed on an MLX grid: its packed codes, scales (f16, or U8 for
    /// mxfp4) and biases (affine), lazily.
    struct Parts {
        let grid: MLXGrid
        let packed: Tensor
        let scales: Tensor
        let biases: Tensor?
    }

    /// The bits of the MLX grid that holds `type` exactly.
    static func bits(of type: DType) -> Int { type == .q8_0 ? 8 : 4 }

    /// Per row of `t`, the f16 (or E8M0) scale bits of each 32-value block and, for Q4_1, the
    /// minimum bits; read in one pass.
    static func blockScales(_ t: Tensor) throws -> (d: [UInt16], m: [UInt16]) {
        let blockBytes = t.dtype.bytesPerBlock
        let blocks = t.byteCount / blockBytes
        var d = [UInt16](repeating: 0, count: blocks), m: [UInt16] = t.dtype == .q4_1 ? .init(repeating: 0, count: blocks) : []
        let chunk = 4096
        var at = 0
        var raw = [UInt8](repeating: 0, count: chunk * blockBytes)
        while at < blocks {
            let n = min(chunk, blocks - at)
            try raw.withUnsafeMutableBytes {
                try t.storage.read(offset: at * blockBytes, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * blockBytes)]))
            }
            for i in 0..<n {
                let o = i * blockBytes
                if t.dtype == .mxfp4 {
                    d[at + i] = UInt16(raw[o])
                } else {
                    d[at + i] = UInt16(raw[o]) | UInt16(raw[o + 1]) << 8
                    if t.dtype == .q4_1 { m[at + i] = UInt16(raw[o + 2]) | UInt16(raw[o + 3]) << 8 }
                }
            }
            at += n
        }
        return (d, m)
    }

    /// Whether every group of `groupSize` values of `t` has one scale (and minimum) across its
    /// blocks, and for Q4_0 / Q8_0 whether −8 d / −128 d stays finite in f16.
    static func fits(_ t: Tensor, groupSize: Int, scales: (d: [UInt16], m: [UInt16])) -> Bool {
        guard let cols = t.shape.last, groupSize % 32 == 0, cols % groupSize == 0 else { return false }
        let per = groupSize / 32
        if t.dtype == .q4_0 || t.dtype == .q8_0 {
            let offset: Float = t.dtype == .q8_0 ? 128 : 8
            for h in scales.d where !isF16(-offset * Half.f32(f16Bits: h)) { return false }
        }
        if per == 1 { return true }
        var i = 0
        while i < scales.d.count {
            for j in 1..<per {
                if scales.d[i + j] != scales.d[i] { return false }
                if !scales.m.isEmpty && scales.m[i + j] != scales.m[i] { return false }
            }
            i += per
        }
        return true
    }

    /// `t` (Q4_0, Q4_1, Q8_0 or MXFP4) on the MLX grid of group size `groupSize`, which `fits`
    /// has accepted. Affine scales and biases are f16.
    static func toMLX(_ t: Tensor, base: String, groupSize: Int) throws -> Parts {
        let type = t.dtype
        let cols = t.shape.last!
        let rows = t.elementCount / cols
        let blocksPerRow = cols / 32
        let blockBytes = type.bytesPerBlock
        let inRowBytes = blocksPerRow * blockBytes
        let grid = type == .mxfp4 ? MLXGrid.mxfp4 : MLXGrid(bits: bits(of: type), groupSize: groupSize)
        let groups = cols / groupSize
        let per = groupSize / 32
        let source = t.storage
        @Sendable func readBlocks(_ range: Range<Int>) throws -> [UInt8] {
            var raw = [UInt8](repeating: 0, count: range.count * inRowBytes)
            try raw.withUnsafeMutableBytes { try source.read(offset: range.lowerBound * inRowBytes, into: $0) }
            return raw
        }
        let lead = Array(t.shape.dropLast())
        let codeRowBytes = cols * grid.bits / 8
        let packed = try rowProduced(
            name: base + ".weight", dtype: .u32, shape: lead + [codeRowBytes / 4], rows: rows, rowBytes: codeRowBytes
        ) { range in
            let raw = try readBlocks(range)
            var codes = [UInt8](repeating: 0, count: cols)
            var out = [UInt8](repeating: 0, count: range.count * codeRowBytes)
            for r in 0..<range.count {
                for k in 0..<blocksPerRow {
                    let at = r * inRowBytes + k * blockBytes
                    switch type {
                    case .q8_0:
                        for j in 0..<32 { codes[k * 32 + j] = raw[at + 2 + j] ^ 0x80 }
                    default:
                        let qs = at + (type == .q4_1 ? 4 : type == .q4_0 ? 2 : 1)
                        for j in 0..<16 {
                            codes[k * 32 + j] = raw[qs + j] & 0x0F
                            codes[k * 32 + j + 16] = raw[qs + j] >> 4
                        }
                    }
                }
                codes.withUnsafeBufferPointer { c in
                    out.withUnsafeMutableBufferPointer { o in
                        MLXBits.pack(c.baseAddress!, bits: grid.bits, count: cols, into: o.baseAddress! + r * codeRowBytes)
                    }
                }
            }
            return out
        }
        // Scales (and biases): one per group, from the group's first block.
        func groupValues(_ name: String, _ dtype: DType, _ value: @escaping @Sendable ([UInt8], Int) -> [UInt8]) throws -> Tensor {
            try rowProduced(name: name, dtype: dtype, shape: lead + [groups], rows: rows, rowBytes: groups * dtype.bytesPerBlock) { range in
                let raw = try readBlocks(range)
                var out: [UInt8] = []
                out.reserveCapacity(range.count * groups * dtype.bytesPerBlock)
                for r in 0..<range.count {
                    for g in 0..<groups { out += value(raw, r * inRowBytes + g * per * blockBytes) }
                }
                return out
            }
        }
        if type == .mxfp4 {
            let scales = try groupValues(base + ".scales", .u8) { raw, at in [raw[at]] }
            return Parts(grid: grid, packed: packed, scales: scales, biases: nil)
        }
        let scales = try groupValues(base + ".scales", .f16) { raw, at in [raw[at], raw[at + 1]] }
        let biases = try groupValues(base + ".biases", .f16) { raw, at in
            switch type {
            case .q4_1: return [raw[at + 2], raw[at + 3]]
            default:
                let d = Half.f32(f16Bits: UInt16(raw[at]) | UInt16(raw[at + 1]) << 8)
                let h = Half.f16Bits(-(type == .q8_0 ? 128 : 8) * d)
                return [UInt8(h & 0xFF), UInt8(h >> 8)]
            }
        }
        return Parts(grid: grid, packed: packed, scales: scales, biases: biases)
    }
}
