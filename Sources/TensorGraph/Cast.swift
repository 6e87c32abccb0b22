/// Casting between floating-point dtypes, lazily: the cast tensor's storage converts the source
/// range by range as a writer asks for it, so a cast streams like a copy.
extension Tensor {
    /// Float types `cast(to:)` handles.
    public static let castableTypes: Set<DType> = [.f64, .f32, .f16, .bf16]

    /// This tensor as `target` (f32, f16 or bf16; from f64, f32, f16 or bf16). Rounding is to
    /// nearest, ties to even; f64 goes through f32 first. Casting to the same type is a no-op.
    public func cast(to target: DType) throws -> Tensor {
        if target == dtype { return self }
        guard Tensor.castableTypes.contains(dtype), [.f32, .f16, .bf16].contains(target) else {
            throw GraphError.unsupportedCast(name: name, from: dtype, to: target)
        }
        let src = storage
        let from = dtype
        let inSize = from.bytesPerBlock
        let outSize = target.bytesPerBlock
        let count = elementCount
        let storage = ProducedStorage(byteCount: count * outSize) { offset, buffer in
            guard buffer.count > 0 else { return }
            let first = offset / outSize
            let last = (offset + buffer.count - 1) / outSize
            let n = last - first + 1
            var input = [UInt8](repeating: 0, count: n * inSize)
            try input.withUnsafeMutableBytes { try src.read(offset: first * inSize, into: $0) }
            var output = [UInt8](repeating: 0, count: n * outSize)
            input.withUnsafeBytes { i in
                output.withUnsafeMutableBytes { o in Tensor.convert(i, from: from, into: o, to: target, count: n) }
            }
            let skip = offset - first * outSize
            output.withUnsafeBytes { o in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: o[skip..<(skip + buffer.count)]))
            }
        }
        return try Tensor(name: name, dtype: target, shape: shape, storage: storage)
    }

    /// Converts `count` little-endian elements between float types.
    static func convert(
        _ input: UnsafeRawBufferPointer, from: DType, into output: UnsafeMutableRawBufferPointer, to: DType,
        count: Int
    ) {
        // The common cases as tight loops over typed pointers.
        if from == .f32 {
            let src = input.baseAddress!.assumingMemoryBound(to: Float.self)
            if input.baseAddress.map({ Int(bitPattern: $0) % 4 == 0 }) == true,
                output.baseAddress.map({ Int(bitPattern: $0) % 2 == 0 }) == true
            {
                if to == .f16 {
                    let dst = output.baseAddress!.assumingMemoryBound(to: UInt16.self)
                    for i in 0..<count { dst[i] = Half.f16Bits(src[i]) }
                    return
                }
                if to == .bf16 {
                    let dst = output.baseAddress!.assumingMemoryBound(to: UInt16.self)
                    for i in 0..<count { dst[i] = Half.bf16Bits(src[i]) }
                    return
                }
            }
        }
        let load: (Int) -> Float
        switch from {
        case .f64: load = { Float(input.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
        case .f32: load = { input.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .f16: load = { Half.f32(f16Bits: input.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        case .bf16: load = { Half.f32(bf16Bits: input.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        default: preconditionFailure("cast source checked by caller")
        }
        switch to {
        case .f32:
            for i in 0..<count { output.storeBytes(of: load(i), toByteOffset: i * 4, as: Float.self) }
        case .f16:
            for i in 0..<count { output.storeBytes(of: Half.f16Bits(load(i)), toByteOffset: i * 2, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { output.storeBytes(of: Half.bf16Bits(load(i)), toByteOffset: i * 2, as: UInt16.self) }
        default: preconditionFailure("cast target checked by caller")
        }
    }
}
