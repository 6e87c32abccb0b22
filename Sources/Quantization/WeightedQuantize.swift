import TensorGraph

/// Quantization guided by an importance matrix. Two methods:
///
/// - `.search` (the default for the types with a code grid: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): each
///   block's scale is searched (`BlockGrid.searchScale`) to minimise the importance-weighted
///   squared error, judged after rounding the scale to f16 — better than ggml's search, which
///   scores unrounded scales (and ignores the importance for Q8_0).
/// - `.ggml`: ggml's own weighted quantizers (`Quantize.weightedRows`), byte for byte as
///   llama-quantize with `--imatrix`; the only method for the K-quants and IQ4 types.
///
/// The weight of value j in a row follows the form ggml's `quantize_row_q4_0_impl` uses:
/// `importance[j] × sqrt(σ² + xⱼ²)`, σ² the row's mean square, where `importance[j]` is the mean
/// square of input column j over the calibration text (what `llama-imatrix` records). The first
/// factor is the diagonal of the layer's input covariance, the error's true weight when inputs are
/// uncorrelated; the second leans towards keeping large weights exact.
public enum WeightedQuantize {
    public enum Method: String, Sendable {
        /// Smelt's scale search on the code-grid types, ggml's quantizers on the others.
        case search
        /// ggml's weighted quantizers for every type (llama-quantize's bytes).
        case ggml
    }

    /// Whether `method` on `dtype` is Smelt's own search (otherwise ggml's quantizer).
    public static func usesSearch(_ dtype: DType, method: Method) -> Bool {
        method == .search && BlockGrid.isSupported(dtype)
    }

    /// Quantizes `rows` rows of `rowLength` values (a multiple of the block size) at `src` into
    /// `dst` with `importance` (one non-negative value per column). Large inputs use every core.
    public static func rows(
        _ dtype: DType, _ src: UnsafePointer<Float>, rows: Int, rowLength: Int, importance: UnsafePointer<Float>,
        into dst: UnsafeMutableRawPointer, method: Method = .search
    ) throws(QuantizationError) {
        guard usesSearch(dtype, method: method) else {
            try Quantize.weightedRows(dtype, src, rows: rows, rowLength: rowLength, importance: importance, into: dst)
            return
        }
        guard rowLength % 32 == 0 else {
            throw .partialBlockValues(dtype: dtype, count: rowLength, blockSize: 32)
        }
        let rowBytes = rowLength / 32 * dtype.bytesPerBlock
        Parallel.forEachChunk(
            count: rows, chunk: max(1, 8192 / max(1, rowLength)), parallel: rows * rowLength >= 1 << 15
        ) { r in
            let weights = UnsafeMutablePointer<Float>.allocate(capacity: 32)
            let codes = UnsafeMutablePointer<Int32>.allocate(capacity: 32)
            defer {
                weights.deallocate()
                codes.deallocate()
            }
            for row in r {
                quantizeRow(
                    dtype, src + row * rowLength, rowLength: rowLength, importance: importance,
                    into: dst + row * rowBytes, weights: weights, codes: codes)
            }
        }
    }

    static func quantizeRow(
        _ dtype: DType, _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>,
        into dst: UnsafeMutableRawPointer, weights: UnsafeMutablePointer<Float>, codes: UnsafeMutablePointer<Int32>
    ) {
        var sum2: Float = 0
        for j in 0..<rowLength { sum2 += x[j] * x[j] }
        let sigma2 = sum2 / Float(rowLength)
        for b in 0..<(rowLength / 32) {
            let xb = x + 32 * b
            let qb = importance + 32 * b
            for j in 0..<32 { weights[j] = qb[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            let scale = BlockGrid.searchScale(dtype, xb, weights: weights)
            BlockGrid.quantize(dtype, xb, scale: scale, codes: codes)
            BlockGrid.pack(dtype, codes: codes, scale: scale, into: dst + b * dtype.bytesPerBlock)
        }
    }
}

extension Tensor {
    /// This tensor quantized to `target` with an importance matrix (`WeightedQuantize`, `method`),
    /// lazily and row by row: reading a byte range quantizes the rows that cover it. `importance`
    /// holds one value per column (the innermost dimension).
    public func quantized(to target: DType, importance: [Float], method: WeightedQuantize.Method = .search) throws -> Tensor {
        guard Quantize.isSupported(target) else {
            throw QuantizationError.badQuantizeTarget(tensor: name, target: target)
        }
        let rowLength = shape.last ?? 0
        guard importance.count == rowLength else {
            throw GraphError.badTensor(
                name: name, reason: "importance has \(importance.count) values, the rows have \(rowLength)")
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
        let blockSize = target.blockSize
        guard rowLength > 0, rowLength % blockSize == 0 else {
            throw QuantizationError.notBlockAligned(tensor: name, shape: shape, target: target, blockSize: blockSize)
        }
        let byteCount = try target.byteCount(shape: shape)
        let rowBytes = rowLength / blockSize * target.bytesPerBlock
        let source = f32.storage
        let storage = ProducedStorage(byteCount: byteCount) { offset, buffer in
            guard buffer.count > 0 else { return }
            let first = offset / rowBytes, last = (offset + buffer.count - 1) / rowBytes
            let n = last - first + 1
            let values = UnsafeMutablePointer<Float>.allocate(capacity: n * rowLength)
            let out = UnsafeMutableRawPointer.allocate(byteCount: n * rowBytes, alignment: 64)
            defer {
                values.deallocate()
                out.deallocate()
            }
            if let mapped = try source.mappedBytes() {
                UnsafeMutableRawPointer(values).copyMemory(
                    from: mapped.baseAddress! + first * rowLength * 4, byteCount: n * rowLength * 4)
            } else {
                try source.read(
                    offset: first * rowLength * 4,
                    into: UnsafeMutableRawBufferPointer(start: values, count: n * rowLength * 4))
            }
            try importance.withUnsafeBufferPointer { imp in
                try WeightedQuantize.rows(
                    target, values, rows: n, rowLength: rowLength, importance: imp.baseAddress!, into: out, method: method)
            }
            buffer.baseAddress!.copyMemory(from: out + (offset - first * rowBytes), byteCount: buffer.count)
        }
        return try Tensor(name: name, dtype: target, shape: shape, storage: storage)
    }
}
