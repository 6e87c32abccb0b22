import TensorGraph

/// Encoding f32 values into ggml block types with ggml's reference round-to-nearest quantizers
/// (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`, `quantize_row_q4_1_ref`), byte for byte.
public enum Quantize {
    /// Every encoder, by type.
    static let encoders: [DType: any QuantEncodable.Type] = [
        .q8_0: Q8_0Block.self, .q4_0: Q4_0Block.self, .q4_1: Q4_1Block.self,
    ]

    /// Values per unit of work when an encode is split.
    static let chunkValues = 1 << 16
    /// Encodes of at least this many values use every core.
    static let parallelThreshold = 1 << 17

    /// The types `rows` and `Tensor.quantized(to:)` produce.
    public static let supportedTypes: [DType] = [.q8_0, .q4_0, .q4_1]

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
}
