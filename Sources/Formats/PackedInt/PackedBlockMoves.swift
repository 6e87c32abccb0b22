import Quantization
import TensorGraph

/// Exact moves between group-quantized matrices (GPTQ, compressed-tensors, AWQ) and ggml's blocks
/// of 32: a symmetric int4 grid is Q4_0 (`d · (q − 8)`), a symmetric int8 grid Q8_0
/// (`d · (q − 128)` stored as signed bytes), an asymmetric int4 grid Q4_1 (`d · q + m` with
/// `m = −scale · zero`) — each group spread over the 32-value blocks it covers, every block taking
/// its group's scale. Exact only when groups are contiguous and cover whole blocks (a group size
/// that is a multiple of 32), every scale is an f16 value, and for Q4_1 every `−scale · zero` is
/// one too; the decoded values are then the same floats.
public enum PackedBlockMoves {
    /// The block types a group-quantized grid can become, and back.
    public static let blockTypes: Set<DType> = [.q4_0, .q4_1, .q8_0]

    static func isF16(_ v: Float) -> Bool { Half.f32(f16Bits: Half.f16Bits(v)).bitPattern == v.bitPattern }

    /// The block type that holds `layout`/`parts` exactly, or `nil` with the reason none does.
    public static func exactType(_ l: GroupQuantizedLayout, _ p: GroupQuantizedParts) -> (type: DType?, reason: String) {
        guard p.isContiguous(groupSize: l.groupSize) else { return (nil, "groups not contiguous (act order)") }
        guard p.biases == nil else { return (nil, "affine biases (MLX's grid), not zero points") }
        guard l.cols % 32 == 0, l.groupSize % 32 == 0 else { return (nil, "group size \(l.groupSize) does not cover whole 32-value blocks") }
        guard p.scales.allSatisfy(isF16) else { return (nil, "a scale is not an f16 value") }
        switch l.bits {
        case 8:
            return p.zeros.allSatisfy({ $0 == 128 }) ? (.q8_0, "") : (nil, "int8 with zero points other than 128 (no ggml block holds an offset at 8 bits)")
        case 4:
            if p.zeros.allSatisfy({ $0 == 8 }) { return (.q4_0, "") }
            for (s, z) in zip(p.scales, p.zeros) where !isF16(-s * Float(z)) {
                return (nil, "−scale·zero = \(-s * Float(z)) is not an f16 value (Q4_1's offset)")
            }
            return (.q4_1, "")
        default:
            return (nil, "no ggml block type is an int\(l.bits) grid")
        }
    }

    /// The matrix as blocks of `type` (one of `exactType`'s answers), made whole on first read.
    public static func toBlocks(name: String, _ source: any GroupQuantizedSource, _ type: DType) throws -> Tensor {
        let l = source.layout
        let blocksPerRow = l.cols / 32
        let size = type.bytesPerBlock
        let storage = WholeProducedStorage(byteCount: l.rows * blocksPerRow * size) {
            let p = try source.parts()
            let codes = try source.codes()
            var out = [UInt8](repeating: 0, count: l.rows * blocksPerRow * size)
            out.withUnsafeMutableBytes { o in
                for r in 0..<l.rows {
                    for b in 0..<blocksPerRow {
                        let g = r * l.groups + (b * 32) / l.groupSize
                        let s = p.scales[g], z = p.zeros[g]
                        let at = (r * blocksPerRow + b) * size
                        let q = r * l.cols + b * 32
                        o.storeBytes(of: Half.f16Bits(s).littleEndian, toByteOffset: at, as: UInt16.self)
                        switch type {
                        case .q8_0:
                            for i in 0..<32 { o[at + 2 + i] = UInt8(bitPattern: Int8(Int32(codes[q + i]) - 128)) }
                        case .q4_1:
                            o.storeBytes(of: Half.f16Bits(-s * Float(z)).littleEndian, toByteOffset: at + 2, as: UInt16.self)
                            for i in 0..<16 { o[at + 4 + i] = codes[q + i] | (codes[q + i + 16] << 4) }
                        default:  // q4_0
                            for i in 0..<16 { o[at + 2 + i] = codes[q + i] | (codes[q + i + 16] << 4) }
                        }
                    }
                }
            }
            return out
        }
        return try Tensor(name: name, dtype: type, shape: [l.rows, l.cols], storage: storage)
    }

    /// The other way: a Q4_0 / Q4_1 / Q8_0 matrix as codes and per-block scales and zeros, when
    /// every block's offset is a whole number of steps (always for Q4_0 and Q8_0). Then each
    /// group of `grid` takes its blocks' shared scale and zero, exactly when they agree.
    public static func fromBlocks(_ t: Tensor, grid: IntGroupGrid) throws -> GroupQuantizedMatrix? {
        guard blockTypes.contains(t.dtype), t.shape.count == 2 else { return nil }
        let wantBits = t.dtype == .q8_0 ? 8 : 4
        guard grid.bits == wantBits, !(grid.symmetric && t.dtype == .q4_1) else { return nil }
        let (rows, cols) = (t.shape[0], t.shape[1])
        let blocksPerRow = cols / 32, size = t.dtype.bytesPerBlock
        let bytes = try t.storage.readAll()
        var codes = [UInt8](repeating: 0, count: rows * cols)
        var blockScale = [Float](repeating: 0, count: rows * blocksPerRow)
        var blockZero = [Int32](repeating: 0, count: rows * blocksPerRow)
        var whole = true
        bytes.withUnsafeBytes { raw in
            for r in 0..<rows {
                for b in 0..<blocksPerRow {
                    let at = (r * blocksPerRow + b) * size
                    let d = Half.f32(f16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                    blockScale[r * blocksPerRow + b] = d
                    let q = r * cols + b * 32
                    switch t.dtype {
                    case .q8_0:
                        blockZero[r * blocksPerRow + b] = 128
                        for i in 0..<32 { codes[q + i] = UInt8(Int32(Int8(bitPattern: raw[at + 2 + i])) + 128) }
                    case .q4_1:
                        let m = Half.f32(f16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at + 2, as: UInt16.self)))
                        // value = d·q + m = d·(q − z) exactly when m = −d·z for a whole z in 0...15.
                        let z = d != 0 ? (-m / d).rounded() : 0
                        if d == 0 || !(0...15).contains(z) || -d * z != m { whole = false }
                        blockZero[r * blocksPerRow + b] = Int32(max(0, min(15, z.isFinite ? z : 0)))
                        for i in 0..<16 {
                            codes[q + i] = raw[at + 4 + i] & 0x0f
                            codes[q + i + 16] = raw[at + 4 + i] >> 4
                        }
                    default:
                        blockZero[r * blocksPerRow + b] = 8
                        for i in 0..<16 {
                            codes[q + i] = raw[at + 2 + i] & 0x0f
                            codes[q + i + 16] = raw[at + 2 + i] >> 4
                        }
                    }
                }
            }
        }
        guard whole else { return nil }
        // Every group takes the parameters of the blocks it overlaps, which must agree.
        let groups = grid.groups(cols: cols)
        var scales = [Float](repeating: 0, count: rows * groups)
        var zeros = [Int32](repeating: 0, count: rows * groups)
        for r in 0..<rows {
            for g in 0..<groups {
                let c0 = g * grid.groupSize, c1 = min(cols, c0 + grid.groupSize)
                let first = r * blocksPerRow + c0 / 32
                for b in (c0 / 32)...((c1 - 1) / 32) {
                    let i = r * blocksPerRow + b
                    if blockScale[i].bitPattern != blockScale[first].bitPattern || blockZero[i] != blockZero[first] { return nil }
                }
                scales[r * groups + g] = blockScale[first]
                zeros[r * groups + g] = blockZero[first]
            }
        }
        let layout = GroupQuantizedLayout(rows: rows, cols: cols, bits: grid.bits, groupSize: grid.groupSize, groups: groups, symmetric: grid.symmetric)
        return GroupQuantizedMatrix(
            layout: layout, parts: GroupQuantizedParts(scales: scales, zeros: zeros, groupIndex: nil, scaleType: .f16), codes: codes,
            format: t.dtype.displayName)
    }
}
