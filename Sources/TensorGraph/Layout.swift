/// Lazy layout changes: row permutations and 2-D transposes, produced range by range.
extension Tensor {
    /// This tensor with its outermost-dimension rows reordered: row `r` of the result is row
    /// `sourceRow(r)` of this tensor. Works for block-quantized types too (rows are independent).
    public func permutingRows(_ sourceRow: @escaping @Sendable (Int) -> Int) throws -> Tensor {
        guard let rows = shape.first, rows > 0 else { return self }
        // A group-quantized matrix stays one, its rows (codes, scales, zeros) reordered.
        if let source = groupQuantizedSource {
            return try GroupQuantizedStorage.tensor(name: name, source: PermutedRowsSource(base: source, sourceRow: sourceRow))
        }
        let rowBytes = byteCount / rows
        let src = storage
        let produced = ProducedStorage(byteCount: byteCount) { offset, buffer in
            var done = 0
            while done < buffer.count {
                let pos = offset + done
                let row = pos / rowBytes
                let within = pos % rowBytes
                let n = min(rowBytes - within, buffer.count - done)
                let dst = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
                try src.read(offset: sourceRow(row) * rowBytes + within, into: dst)
                done += n
            }
        }
        return try Tensor(name: name, dtype: dtype, shape: shape, storage: produced)
    }

    /// The transpose of a 2-D tensor of a plain (non-block) type. Reads from the mapped file
    /// when the storage is mapped, otherwise materialises the source once.
    public func transposed2D() throws -> Tensor {
        guard shape.count == 2, !dtype.isQuantized else {
            throw GraphError.badTensor(name: name, reason: "transpose needs a 2-D tensor of a plain type, not \(dtype.displayName) \(shape)")
        }
        let (rows, cols) = (shape[0], shape[1])
        let size = dtype.bytesPerBlock
        let source = TransposeSource(storage: storage)
        let produced = ProducedStorage(byteCount: byteCount) { offset, buffer in
            try source.withBytes { src in
                // Output element e = (c, r) of the [cols, rows] result is source element (r, c).
                var pos = offset
                var done = 0
                while done < buffer.count {
                    let e = pos / size
                    let within = pos % size
                    let c = e / rows, r = e % rows
                    let n = min(size - within, buffer.count - done)
                    let s = (r * cols + c) * size + within
                    (buffer.baseAddress! + done).copyMemory(from: src.baseAddress! + s, byteCount: n)
                    done += n
                    pos += n
                }
            }
        }
        return try Tensor(name: name, dtype: dtype, shape: [cols, rows], storage: produced)
    }
}

/// The source bytes of a transpose: the mapped region, or a copy made on first use.
private final class TransposeSource: @unchecked Sendable {
    let storage: any TensorStorage
    private var copy: [UInt8]?
    private let lock = Mutex()

    init(storage: any TensorStorage) { self.storage = storage }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if let mapped = try storage.mappedBytes() { return try body(mapped) }
        let bytes = try lock.withLock { () throws -> [UInt8] in
            if let copy { return copy }
            let all = try storage.readAll()
            copy = all
            return all
        }
        return try bytes.withUnsafeBytes { try body($0) }
    }
}

/// llama.cpp's Q/K row permutation between Hugging Face's rotate-half layout and GGUF's
/// interleaved pairs: each head's `headDim` rows are `[first half; second half]` on the Hugging
/// Face side and alternate between the halves on the GGUF side.
public enum RopePermutation {
    /// For a GGUF row, the Hugging Face row it comes from.
    public static func hfRow(forGGUFRow r: Int, headDim: Int) -> Int {
        let (h, rem) = (r / headDim, r % headDim)
        let (i, j) = (rem / 2, rem % 2)
        return h * headDim + j * (headDim / 2) + i
    }

    /// For a Hugging Face row, the GGUF row it comes from.
    public static func ggufRow(forHFRow r: Int, headDim: Int) -> Int {
        let (h, rem) = (r / headDim, r % headDim)
        let half = headDim / 2
        let (j, i) = (rem / half, rem % half)
        return h * headDim + 2 * i + j
    }
}
