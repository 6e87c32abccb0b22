import TensorGraph

/// Failures of dequantization and quantization, carrying the type and the numbers involved.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    /// There is no decoder for this type.
    case noDecoder(DType)
    /// There is no encoder for this type.
    case noEncoder(DType)
    /// A source of `byteCount` bytes is not a whole number of `bytesPerBlock`-byte blocks.
    case partialBlock(dtype: DType, byteCount: Int, bytesPerBlock: Int)
    /// `count` values are not a whole number of `blockSize`-value blocks.
    case partialBlockValues(dtype: DType, count: Int, blockSize: Int)
    /// `blocks` blocks need an output of `expected` `unit`s; the one given holds `got`.
    case outputSize(dtype: DType, blocks: Int, expected: Int, got: Int, unit: String)
    /// A tensor whose type has no decoder.
    case cannotDequantize(tensor: String, dtype: DType)
    /// A dequantization target other than f32, f16, bf16.
    case badDequantizeTarget(tensor: String, target: DType)
    /// A quantization target with no encoder.
    case badQuantizeTarget(tensor: String, target: DType)
    /// A source type that cannot be brought to f32 first.
    case badQuantizeSource(tensor: String, source: DType, target: DType)
    /// The tensor's innermost dimension is not a multiple of the target's block size.
    case notBlockAligned(tensor: String, shape: [Int], target: DType, blockSize: Int)

    public var description: String {
        switch self {
        case let .noDecoder(t):
            return "type \(t.displayName) is not supported for dequantization"
        case let .noEncoder(t):
            let list = Quantize.supportedTypes.map(\.displayName).joined(separator: ", ")
            return "type \(t.displayName) is not supported for quantization (supported: \(list))"
        case let .partialBlock(t, bytes, per):
            return "\(t.displayName): \(bytes) bytes is not a whole number of \(per)-byte blocks"
        case let .partialBlockValues(t, count, size):
            return "\(t.displayName): \(count) values is not a whole number of \(size)-value blocks"
        case let .outputSize(t, blocks, expected, got, unit):
            return "\(t.displayName): \(blocks) blocks need an output of \(expected) \(unit), it holds \(got)"
        case let .cannotDequantize(name, t):
            return "cannot dequantize tensor '\(Echo.value(name))': type \(t.displayName) is not supported"
        case let .badDequantizeTarget(name, target):
            return "cannot dequantize tensor '\(Echo.value(name))' to \(target.displayName): the target must be F32, F16 or BF16"
        case let .badQuantizeTarget(name, target):
            let list = Quantize.supportedTypes.map(\.displayName).joined(separator: ", ")
            return "cannot quantize tensor '\(Echo.value(name))' to \(target.displayName): supported targets are \(list)"
        case let .badQuantizeSource(name, source, target):
            return "cannot quantize tensor '\(Echo.value(name))' from \(source.displayName) to \(target.displayName): "
                + "the source must be a float or dequantizable type"
        case let .notBlockAligned(name, shape, target, size):
            return "cannot quantize tensor '\(Echo.value(name))' of shape \(shape) to \(target.displayName): innermost dimension "
                + "\(shape.last ?? 0) is not a multiple of the block size \(size)"
        }
    }
}
