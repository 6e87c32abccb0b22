import TensorGraph

/// Encoding f32 values into ggml block types byte for byte as llama-quantize does (ggml's
/// `quantize_<type>`: the reference quantizers without an importance matrix, the weighted
/// searches with one).
public enum Quantize {
    /// Every encoder, by type (the registry's `QuantEncodable` codecs).
    static let encoders: [DType: any QuantEncodable.Type] = BlockTypes.codecs.compactMapValues { $0 as? any QuantEncodable.Type }

    /// Values per unit of work when an encode is split.
    static let chunkValues = 1 << 16
    /// Encodes of at least this many values use every core.
    static let parallelThreshold = 1 << 17

    /// The types `rows` and `Tensor.quantized(to:)` produce, in `DType` order.
    public static let supportedTypes: [DType] = DType.allCases.filter { encoders[$0] != nil }

    /// Whether `dtype` can be produced.
    public static func isSupported(_ dtype: DType) -> Bool { encoders[dtype] != nil }

    /// The block size and bytes per block that `dtype`'s encoder layout declares, or `nil`.
    public static func layout(_ dtype: DType) -> (blockSize: Int, bytesPerBlock: Int)? {
        encoders[dtype].map { ($0.elements, $0.bytes) }
    }

    /// Bytes that `count` values take as `dtype` (`count` a multiple of its block size).
    public static func byteCount(_ dtype: DType, values count: Int) throws(QuantizationError) -> Int {
        let info = dtype.info
        guard count % info.blockSize == 0 else {
            throw .partialBlockValues(dtype: dtype, count: count, blockSize: info.blockSize)
        }
        return count / info.blockSize * info.bytesPerBlock
    }

    /// Quantizes `src` (whole blocks: a multiple of the block size, rows laid end to end) into `dst`,
    /// which must hold exactly blocks × bytes per block. Large inputs are encoded on every core.
    public static func rows(
        _ dtype: DType, _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer
    ) throws(QuantizationError) {
        guard let encoder = encoders[dtype] else { throw .noEncoder(dtype) }
        guard src.count % encoder.elements == 0 else {
            throw .partialBlockValues(dtype: dtype, count: src.count, blockSize: encoder.elements)
        }
        let blocks = src.count / encoder.elements
        guard dst.count == blocks * encoder.bytes else {
            throw .outputSize(
                dtype: dtype, blocks: blocks, expected: blocks * encoder.bytes, got: dst.count, unit: "bytes")
        }
        guard blocks > 0 else { return }
        encode(encoder, src.baseAddress!, into: dst.baseAddress!, blocks: blocks)
    }

    /// Quantizes `src` into a new byte array.
    public static func rows(_ dtype: DType, _ src: UnsafeBufferPointer<Float>) throws(QuantizationError) -> [UInt8] {
        guard let encoder = encoders[dtype] else { throw .noEncoder(dtype) }
        let count = try byteCount(dtype, values: src.count)
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 {
            out.withUnsafeMutableBytes {
                encode(encoder, src.baseAddress!, into: $0.baseAddress!, blocks: src.count / encoder.elements)
            }
        }
        return out
    }

    /// Encodes `blocks` blocks, split over cores when large.
    static func encode(
        _ encoder: any QuantEncodable.Type, _ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, blocks: Int
    ) {
        let per = encoder.elements, bytes = encoder.bytes
        Parallel.forEachChunk(
            count: blocks, chunk: max(1, chunkValues / per), parallel: blocks * per >= parallelThreshold
        ) { r in
            encoder.encode(src + r.lowerBound * per, into: dst + r.lowerBound * bytes, count: r.count)
        }
    }

    /// Quantizes `rows` rows of `rowLength` values (a multiple of the block size) at `src` into
    /// `dst` with one importance value per column, as ggml's `quantize_<type>` does with an
    /// importance matrix (Q8_0 ignores it there, and here). Large inputs use every core.
    public static func weightedRows(
        _ dtype: DType, _ src: UnsafePointer<Float>, rows: Int, rowLength: Int, importance: UnsafePointer<Float>,
        into dst: UnsafeMutableRawPointer
    ) throws(QuantizationError) {
        guard let encoder = encoders[dtype] else { throw .noEncoder(dtype) }
        guard rowLength % encoder.elements == 0 else {
            throw .partialBlockValues(dtype: dtype, count: rowLength, blockSize: encoder.elements)
        }
        let rowBytes = rowLength / encoder.elements * encoder.bytes
        Parallel.forEachChunk(
            count: rows, chunk: max(1, 8192 / max(1, rowLength)), parallel: rows * rowLength >= 1 << 15
        ) { r in
            for row in r {
                encoder.encodeWeighted(src + row * rowLength, rowLength: rowLength, importance: importance, into: dst + row * rowBytes)
            }
        }
    }
}
