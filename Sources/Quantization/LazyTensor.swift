import TensorGraph

extension Tensor {
    /// This tensor decoded to `target` (f32, f16 or bf16), lazily: reading a byte range of the
    /// result reads the source blocks that cover it, decodes them (bit-identical to ggml) and, for
    /// f16/bf16, rounds to nearest even. Large reads are decoded on every core. Plain float sources
    /// are cast (`cast(to:)`); a tensor already of type `target` is returned as is.
    public func dequantized(to target: DType = .f32) throws -> Tensor {
        guard target == .f32 || target == .f16 || target == .bf16 else {
            throw QuantizationError.badDequantizeTarget(tensor: name, target: target)
        }
        if dtype == target { return self }
        if Tensor.castableTypes.contains(dtype) { return try cast(to: target) }
        guard Dequantize.isSupported(dtype) else {
            throw QuantizationError.cannotDequantize(tensor: name, dtype: dtype)
        }
        let source = storage, from = dtype
        let storage = ProducedStorage(byteCount: elementCount * target.bytesPerBlock) { offset, buffer in
            try LazyCoding.dequantize(from, source, to: target, offset: offset, into: buffer)
        }
        return try Tensor(name: name, dtype: target, shape: shape, storage: storage)
    }

    /// This tensor quantized to `target` (any of `Quantize.supportedTypes`) as ggml does without an
    /// importance matrix, lazily: reading a byte range reads the f32 values of the blocks that
    /// cover it and encodes them. Sources other than f32 are cast or dequantized to f32 first. The
    /// innermost dimension must be a multiple of the block size.
    public func quantized(to target: DType) throws -> Tensor {
        if dtype == target { return self }
        guard Quantize.isSupported(target) else {
            throw QuantizationError.badQuantizeTarget(tensor: name, target: target)
        }
        let f32: Tensor
        if dtype == .f32 {
            f32 = self
        } else if Tensor.castableTypes.contains(dtype) {
            f32 = try cast(to: .f32)
        } else if Dequantize.isSupported(dtype) {
            f32 = try dequantized(to: .f32)
        } else {
            throw QuantizationError.badQuantizeSource(tensor: name, source: dtype, target: target)
        }
        let byteCount: Int
        do { byteCount = try target.byteCount(shape: shape) } catch {
            if case .notBlockAligned = error {
                throw QuantizationError.notBlockAligned(
                    tensor: name, shape: shape, target: target, blockSize: target.blockSize)
            }
            throw GraphError.badTensor(name: name, reason: error.description)
        }
        let source = f32.storage
        let storage = ProducedStorage(byteCount: byteCount) { offset, buffer in
            try LazyCoding.quantize(source, to: target, offset: offset, into: buffer)
        }
        return try Tensor(name: name, dtype: target, shape: shape, storage: storage)
    }
}

/// The range-by-range work behind the lazy tensors.
enum LazyCoding {
    /// Fills `buffer` with bytes `offset..<offset + buffer.count` of `source` (blocks of `dtype`)
    /// decoded to `target`.
    static func dequantize(
        _ dtype: DType, _ source: any TensorStorage, to target: DType, offset: Int,
        into buffer: UnsafeMutableRawBufferPointer
    ) throws {
        guard let decoder = Dequantize.decoders[dtype] else { throw QuantizationError.noDecoder(dtype) }
        guard buffer.count > 0 else { return }
        let per = decoder.elements, inBytes = decoder.bytes
        let outSize = target.bytesPerBlock
        let outBytes = per * outSize  // output bytes of one block
        let end = offset + buffer.count
        let firstBlock = offset / outBytes
        let blocks = (end - 1) / outBytes + 1 - firstBlock
        let mapped = try source.mappedBytes()
        let out = buffer.baseAddress!

        try Parallel.forEachChunk(
            count: blocks, chunk: max(1, Dequantize.chunkValues / per),
            parallel: blocks * per >= Dequantize.parallelThreshold
        ) { (r: Range<Int>) throws in
            let b0 = firstBlock + r.lowerBound, n = r.count, values = n * per
            let chunkStart = b0 * outBytes, chunkEnd = chunkStart + n * outBytes
            let lo = max(offset, chunkStart), hi = min(end, chunkEnd)
            let direct =
                target == .f32 && lo == chunkStart && hi == chunkEnd
                && Int(bitPattern: out + (lo - offset)) % MemoryLayout<Float>.alignment == 0

            // Scratch: source bytes (unless mapped), decoded floats (unless decoding in place),
            // converted halves (f16/bf16 only).
            let srcBytes = mapped == nil ? n * inBytes : 0
            let floatBytes = direct ? 0 : values * 4
            let halfBytes = target == .f32 ? 0 : values * 2
            let scratch = UnsafeMutableRawPointer.allocate(
                byteCount: max(1, srcBytes + floatBytes + halfBytes), alignment: 64)
            defer { scratch.deallocate() }

            let src: UnsafeRawPointer
            if let mapped {
                src = mapped.baseAddress! + b0 * inBytes
            } else {
                try source.read(
                    offset: b0 * inBytes, into: UnsafeMutableRawBufferPointer(start: scratch, count: srcBytes))
                src = UnsafeRawPointer(scratch)
            }
            if direct {
                decoder.decode(src, into: (out + (lo - offset)).bindMemory(to: Float.self, capacity: values), count: n)
                return
            }
            let floats = (scratch + srcBytes).bindMemory(to: Float.self, capacity: values)
            decoder.decode(src, into: floats, count: n)
            var result = UnsafeRawPointer(floats)
            if target != .f32 {
                let halves = (scratch + srcBytes + floatBytes).bindMemory(to: UInt16.self, capacity: values)
                if target == .f16 {
                    for i in 0..<values { halves[i] = Half.f16Bits(floats[i]).littleEndian }
                } else {
                    for i in 0..<values { halves[i] = Half.bf16Bits(floats[i]).littleEndian }
                }
                result = UnsafeRawPointer(halves)
            }
            (out + (lo - offset)).copyMemory(from: result + (lo - chunkStart), byteCount: hi - lo)
        }
    }

    /// Fills `buffer` with bytes `offset..<offset + buffer.count` of `source` (f32 values)
    /// quantized to `target`.
    static func quantize(
        _ source: any TensorStorage, to target: DType, offset: Int, into buffer: UnsafeMutableRawBufferPointer
    ) throws {
        guard let encoder = Quantize.encoders[target] else { throw QuantizationError.noEncoder(target) }
        guard buffer.count > 0 else { return }
        let per = encoder.elements, outBytes = encoder.bytes
        let end = offset + buffer.count
        let firstBlock = offset / outBytes
        let blocks = (end - 1) / outBytes + 1 - firstBlock
        let mapped = try source.mappedBytes()
        let out = buffer.baseAddress!

        try Parallel.forEachChunk(
            count: blocks, chunk: max(1, Quantize.chunkValues / per),
            parallel: blocks * per >= Quantize.parallelThreshold
        ) { (r: Range<Int>) throws in
            let b0 = firstBlock + r.lowerBound, n = r.count, values = n * per
            let chunkStart = b0 * outBytes, chunkEnd = chunkStart + n * outBytes
            let lo = max(offset, chunkStart), hi = min(end, chunkEnd)
            let direct = lo == chunkStart && hi == chunkEnd

            var inPlace: UnsafePointer<Float>?
            if let mapped {
                let p = mapped.baseAddress! + b0 * per * 4
                if Int(bitPattern: p) % MemoryLayout<Float>.alignment == 0 {
                    inPlace = p.assumingMemoryBound(to: Float.self)
                }
            }
            let floatBytes = inPlace == nil ? values * 4 : 0
            let blockBytes = direct ? 0 : n * outBytes
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, floatBytes + blockBytes), alignment: 64)
            defer { scratch.deallocate() }

            let floats: UnsafePointer<Float>
            if let inPlace {
                floats = inPlace
            } else {
                try source.read(
                    offset: b0 * per * 4, into: UnsafeMutableRawBufferPointer(start: scratch, count: floatBytes))
                floats = UnsafePointer(scratch.bindMemory(to: Float.self, capacity: values))
            }
            if direct {
                encoder.encode(floats, into: out + (lo - offset), count: n)
                return
            }
            let blocksOut = scratch + floatBytes
            encoder.encode(floats, into: blocksOut, count: n)
            (out + (lo - offset)).copyMemory(from: blocksOut + (lo - chunkStart), byteCount: hi - lo)
        }
    }
}
