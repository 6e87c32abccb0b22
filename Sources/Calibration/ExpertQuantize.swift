import Quantization
import TensorGraph

/// Expert tensors ([experts, rows, columns]) quantized with an importance matrix entry that has
/// one row of importances per expert (llama-imatrix's layout for `*_exps` tensors): each expert's
/// matrix is weighted by its own importances, lazily, one expert's slice at a time. An expert the
/// calibration never routed to has importance 1 everywhere (`ImportanceMatrix.Entry.meanSquares`).
enum ExpertQuantize {
    /// Whether `importance` has one row per expert of `t`.
    static func applies(_ t: Tensor, importance: [Float]) -> Bool {
        t.shape.count == 3 && t.shape[0] > 1 && importance.count == t.shape[0] * t.shape[2]
    }

    static func quantized(_ t: Tensor, to target: DType, importance: [Float], method: WeightedQuantize.Method) throws -> Tensor {
        let (experts, rows, columns) = (t.shape[0], t.shape[1], t.shape[2])
        let f32 = try t.dtype == .f32 ? t : (Tensor.castableTypes.contains(t.dtype) ? t.cast(to: .f32) : t.dequantized(to: .f32))
        let source = f32.storage
        let inBytes = rows * columns * 4
        let parts = try (0..<experts).map { e -> Tensor in
            let slice = ProducedStorage(byteCount: inBytes) { offset, buffer in
                try source.read(offset: e * inBytes + offset, into: buffer)
            }
            let m = try Tensor(name: t.name, dtype: .f32, shape: [rows, columns], storage: slice)
            return try m.quantized(to: target, importance: Array(importance[(e * columns)..<((e + 1) * columns)]), method: method)
        }
        let per = parts[0].byteCount
        let storages = parts.map(\.storage)
        let joined = ProducedStorage(byteCount: per * experts) { offset, buffer in
            var done = 0
            while done < buffer.count {
                let pos = offset + done
                let e = pos / per, within = pos % per
                let n = min(per - within, buffer.count - done)
                try storages[e].read(offset: within, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)]))
                done += n
            }
        }
        return try Tensor(name: t.name, dtype: target, shape: t.shape, storage: joined)
    }
}
