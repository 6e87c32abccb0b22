import Quantization
import TensorGraph

/// One quantized weight of an MLX folder: `BASE.weight` (uint32, packed codes), `BASE.scales` and,
/// for the affine mode, `BASE.biases`, checked against each other and the grid.
struct MLXWeight: Sendable {
    let base: String
    let grid: MLXGrid
    let packed: Tensor
    let scales: Tensor
    let biases: Tensor?
    /// The weight's logical shape: the packed tensor's leading dimensions, then the row length.
    let shape: [Int]
    let rows: Int
    let cols: Int

    var groups: Int { cols / grid.groupSize }
    /// Bytes of packed codes per row.
    var rowBytes: Int { cols * grid.bits / 8 }
    var weightName: String { base + ".weight" }
    /// The type of the scales (and biases), shown in move summaries.
    var scaleType: DType { scales.dtype }
    var sourceText: String {
        grid.mode == .affine ? "\(grid) (\(scaleType.displayName) scales)" : grid.description
    }

    init(base: String, grid: MLXGrid, packed: Tensor, scales: Tensor, biases: Tensor?) throws(FlavourError) {
        let name = base + ".weight"
        guard packed.dtype == .u32 || packed.dtype == .i32 || packed.dtype == .u8 else {
            throw .badTensor(tensor: name, reason: "packed codes must be U32, not \(packed.dtype.displayName)")
        }
        guard packed.shape.count >= 2, let last = packed.shape.last else {
            throw .badTensor(tensor: name, reason: "packed codes need at least 2 dimensions, not \(packed.shape)")
        }
        let packedBits = last * packed.dtype.bytesPerBlock * 8
        guard packedBits % grid.bits == 0 else {
            throw .badTensor(
                tensor: name,
                reason: "packed width \(last) × \(packed.dtype.bytesPerBlock * 8) bits does not hold a whole number of \(grid.bits)-bit codes (\(grid))")
        }
        let cols = packedBits / grid.bits
        guard cols % grid.groupSize == 0 else {
            throw .badTensor(
                tensor: name,
                reason: "row of \(cols) values (packed width \(last) at \(grid.bits) bits) is not a multiple of the group size \(grid.groupSize)")
        }
        let leading = Array(packed.shape.dropLast())
        let groupShape = leading + [cols / grid.groupSize]
        guard scales.shape == groupShape else {
            throw .badTensor(
                tensor: base + ".scales",
                reason: "shape \(scales.shape) does not match \(groupShape) (\(cols)-value rows of \(name) in groups of \(grid.groupSize); \(grid.bits) bits from config.json)")
        }
        switch grid.mode {
        case .affine:
            guard [.f16, .bf16, .f32].contains(scales.dtype) else {
                throw .badTensor(tensor: base + ".scales", reason: "affine scales must be F16, BF16 or F32, not \(scales.dtype.displayName)")
            }
            guard let biases else { throw .missingPart(weight: name, missing: base + ".biases") }
            guard biases.shape == groupShape, biases.dtype == scales.dtype else {
                throw .badTensor(
                    tensor: base + ".biases",
                    reason: "\(biases.dtype.displayName) \(biases.shape) does not match the scales' \(scales.dtype.displayName) \(groupShape)")
            }
        case .mxfp4:
            guard scales.dtype == .u8 else {
                throw .badTensor(tensor: base + ".scales", reason: "mxfp4 scales must be U8 (E8M0), not \(scales.dtype.displayName)")
            }
        }
        self.base = base
        self.grid = grid
        self.packed = packed
        self.scales = scales
        self.biases = grid.mode == .affine ? biases : nil
        self.shape = leading + [cols]
        self.rows = leading.reduce(1, *)
        self.cols = cols
    }

    /// Rows `range`: codes (one byte each), and per group the scale and bias as f32 (for mxfp4 the
    /// scale is the E8M0 byte's value and the biases are empty).
    func readRows(_ range: Range<Int>) throws -> (codes: [UInt8], scales: [Float], biases: [Float]) {
        let n = range.count
        var raw = [UInt8](repeating: 0, count: n * rowBytes)
        try raw.withUnsafeMutableBytes { try packed.storage.read(offset: range.lowerBound * rowBytes, into: $0) }
        var codes = [UInt8](repeating: 0, count: n * cols)
        raw.withUnsafeBytes { src in
            codes.withUnsafeMutableBufferPointer { dst in
                for r in 0..<n {
                    MLXBits.unpack(src.baseAddress! + r * rowBytes, bits: grid.bits, count: cols, into: dst.baseAddress! + r * cols)
                }
            }
        }
        let s = try MLXWeight.floats(scales, from: range.lowerBound * groups, count: n * groups)
        let b = try biases.map { try MLXWeight.floats($0, from: range.lowerBound * groups, count: n * groups) } ?? []
        return (codes, s, b)
    }

    /// `count` elements of a float (or U8 E8M0) tensor from element `from`, as f32.
    static func floats(_ t: Tensor, from: Int, count: Int) throws -> [Float] {
        let size = t.dtype.bytesPerBlock
        var raw = [UInt8](repeating: 0, count: count * size)
        try raw.withUnsafeMutableBytes { try t.storage.read(offset: from * size, into: $0) }
        return raw.withUnsafeBytes { p -> [Float] in
            switch t.dtype {
            case .f32: return (0..<count).map { p.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
            case .f16: return (0..<count).map { Half.f32(f16Bits: p.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
            case .bf16: return (0..<count).map { Half.f32(bf16Bits: p.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
            default: return (0..<count).map { e8m0Value(p[$0]) }
            }
        }
    }

    /// The raw scale bytes of rows `range` (mxfp4: the E8M0 bytes).
    func scaleBytes(_ range: Range<Int>) throws -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: range.count * groups * scales.dtype.bytesPerBlock)
        try raw.withUnsafeMutableBytes {
            try scales.storage.read(offset: range.lowerBound * groups * scales.dtype.bytesPerBlock, into: $0)
        }
        return raw
    }

    /// Rows `range` decoded to f32 values: `scale × q + bias` (affine; the product is exact in f32
    /// for f16/bf16 scales, so the one rounding is the sum's) or fp4 value × 2^(e − 127) (mxfp4).
    func decodeRows(_ range: Range<Int>) throws -> [Float] {
        let (codes, s, b) = try readRows(range)
        var out = [Float](repeating: 0, count: codes.count)
        let g = grid.groupSize
        for i in 0..<codes.count {
            let group = i / g
            switch grid.mode {
            case .affine: out[i] = s[group] * Float(codes[i]) + b[group]
            case .mxfp4: out[i] = mlxFP4Values[Int(codes[i])] * s[group]
            }
        }
        return out
    }

    /// Rows per unit of lazy work: about 64 Ki values.
    var rowsPerChunk: Int { max(1, (1 << 16) / max(1, cols)) }
}

/// A lazily produced tensor made whole rows at a time: `produce(rows)` returns the bytes of
/// those rows, `rowBytes` each.
func rowProduced(name: String, dtype: DType, shape: [Int], rows: Int, rowBytes: Int, produce: @escaping @Sendable (Range<Int>) throws -> [UInt8]) throws -> Tensor {
    let storage = ProducedStorage(byteCount: rows * rowBytes) { offset, buffer in
        guard buffer.count > 0 else { return }
        let first = offset / rowBytes
        let last = (offset + buffer.count - 1) / rowBytes
        let bytes = try produce(first..<(last + 1))
        let skip = offset - first * rowBytes
        bytes.withUnsafeBytes { b in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[skip..<(skip + buffer.count)]))
        }
    }
    return try Tensor(name: name, dtype: dtype, shape: shape, storage: storage)
}

/// f32 values as little-endian bytes of `dtype` (f32, f16, bf16).
func floatBytes(_ values: [Float], as dtype: DType) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: values.count * dtype.bytesPerBlock)
    out.withUnsafeMutableBytes { o in
        for (i, v) in values.enumerated() {
            switch dtype {
            case .f16: o.storeBytes(of: Half.f16Bits(v).littleEndian, toByteOffset: i * 2, as: UInt16.self)
            case .bf16: o.storeBytes(of: Half.bf16Bits(v).littleEndian, toByteOffset: i * 2, as: UInt16.self)
            default: o.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
    }
    return out
}

/// `v` rounded to `dtype` and back.
@inline(__always)
func rounded(_ v: Float, to dtype: DType) -> Float {
    switch dtype {
    case .f16: return Half.f32(f16Bits: Half.f16Bits(v))
    case .bf16: return Half.f32(bf16Bits: Half.bf16Bits(v))
    default: return v
    }
}
