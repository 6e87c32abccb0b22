import TensorGraph

/// Decoding ggml block types (and f32/f16/bf16) to f32, bit-identical to ggml's reference C
/// (`dequantize_row_*` in ggml-quants.c) and to gguf-py's `gguf.quants`.
public enum Dequantize {
    /// Every decoder, by type. Each layout's size is checked against `DType.table` by the tests.
    static var decoders: [DType: any QuantBlock.Type] { BlockTypes.codecs }

    /// Values per unit of work when a decode is split (64 Ki values: 256 KiB of f32).
    static let chunkValues = 1 << 16
    /// Decodes of at least this many values use every core.
    static let parallelThreshold = 1 << 18

    /// The types `toF32` and `Tensor.dequantized(to:)` decode, in `DType` declaration order.
    public static var supportedTypes: [DType] { DType.allCases.filter { decoders[$0] != nil } }

    /// Whether `dtype` can be decoded.
    public static func isSupported(_ dtype: DType) -> Bool { decoders[dtype] != nil }

    /// The block size and bytes per block that `dtype`'s decoder layout declares (summed from its
    /// fields), or `nil` without a decoder. They must equal `DType.table`'s; the tests check it.
    public static func layout(_ dtype: DType) -> (blockSize: Int, bytesPerBlock: Int)? {
        decoders[dtype].map { ($0.elements, $0.bytes) }
    }

    /// Decodes whole blocks of `dtype` in `src` into `dst`, which must hold exactly
    /// blocks × block size values. Large inputs are decoded on every core.
    public static func toF32(
        _ dtype: DType, _ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>
    ) throws(QuantizationError) {
        guard let decoder = decoders[dtype] else { throw .noDecoder(dtype) }
        guard src.count % decoder.bytes == 0 else {
            throw .partialBlock(dtype: dtype, byteCount: src.count, bytesPerBlock: decoder.bytes)
        }
        let blocks = src.count / decoder.bytes
        guard dst.count == blocks * decoder.elements else {
            throw .outputSize(
                dtype: dtype, blocks: blocks, expected: blocks * decoder.elements, got: dst.count, unit: "values")
        }
        guard blocks > 0 else { return }
        decode(decoder, src.baseAddress!, into: dst.baseAddress!, blocks: blocks)
    }

    /// Decodes whole blocks of `dtype` in `src` into a new array.
    public static func toF32(_ dtype: DType, _ src: UnsafeRawBufferPointer) throws(QuantizationError) -> [Float] {
        guard let decoder = decoders[dtype] else { throw .noDecoder(dtype) }
        guard src.count % decoder.bytes == 0 else {
            throw .partialBlock(dtype: dtype, byteCount: src.count, bytesPerBlock: decoder.bytes)
        }
        let count = src.count / decoder.bytes * decoder.elements
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                decode(decoder, src.baseAddress!, into: buffer.baseAddress!, blocks: count / decoder.elements)
            }
            initialized = count
        }
    }

    /// Decodes `blocks` blocks, split over cores when large.
    static func decode(
        _ decoder: any QuantBlock.Type, _ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, blocks: Int
    ) {
        let per = decoder.elements, bytes = decoder.bytes
        Parallel.forEachChunk(
            count: blocks, chunk: max(1, chunkValues / per), parallel: blocks * per >= parallelThreshold
        ) { r in
            decoder.decode(src + r.lowerBound * bytes, into: dst + r.lowerBound * per, count: r.count)
        }
    }
}
