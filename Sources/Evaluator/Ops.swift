import Dispatch
import Foundation

/// Element-wise and row-wise operations of the forward pass on f32 activations, spread over the
/// cores by rows. Matrix products go through `Kernels.BLAS`.
enum Ops {
    /// Runs `body(row)` for rows 0..<count, split into contiguous ranges over the threads.
    static func parallelRows(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads, count))
        if parts == 1 { body(0..<count); return }
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = count * p / parts, hi = count * (p + 1) / parts
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body(item, worker)` for items 0..<count on up to `threads` workers that take the
    /// next item as they finish one (items of unequal cost balance themselves); `worker` is in
    /// 0..<threads, for per-worker scratch.
    static func parallelItems(_ count: Int, threads: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        let workers = max(1, min(threads, count))
        if workers == 1 { for i in 0..<count { body(i, 0) }; return }
        let next = ItemCounter()
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            while let i = next.take(below: count) { body(i, w) }
        }
    }

    /// The shared "next item" of `parallelItems`.
    final class ItemCounter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func take(below count: Int) -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard value < count else { return nil }
            value += 1
            return value - 1
        }
    }

    /// One scratch buffer per worker of `parallelItems`, freed together.
    final class PerThreadScratch {
        private let base: UnsafeMutablePointer<Float>
        private let capacity: Int
        init(count: Int, capacity: Int) {
            self.capacity = max(1, capacity)
            base = .allocate(capacity: max(1, count) * self.capacity)
        }
        func buffer(_ worker: Int) -> UnsafeMutablePointer<Float> { base + worker * capacity }
        deinit { base.deallocate() }
    }

    /// out = x / rms(x) · weight, per row of `dim` (RMSNorm).
    static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        rows: Int, dim: Int, eps: Float, threads: Int) {
        parallelRows(rows, threads: threads) { range in
            for r in range {
                let xr = x + r * dim, o = out + r * dim
                var ss: Float = 0
                for i in 0..<dim { ss += xr[i] * xr[i] }
                let scale = 1 / (ss / Float(dim) + eps).squareRoot()
                for i in 0..<dim { o[i] = xr[i] * scale * weight[i] }
            }
        }
    }

    /// out = (x − mean) / sqrt(var + eps) · weight + bias, per row (LayerNorm).
    static func layerNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                          _ out: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float, threads: Int) {
        parallelRows(rows, threads: threads) { range in
            for r in range {
                let xr = x + r * dim, o = out + r * dim
                var mean: Float = 0
                for i in 0..<dim { mean += xr[i] }
                mean /= Float(dim)
                var v: Float = 0
                for i in 0..<dim { let d = xr[i] - mean; v += d * d }
                let scale = 1 / (v / Float(dim) + eps).squareRoot()
                for i in 0..<dim { o[i] = (xr[i] - mean) * scale * weight[i] + bias[i] }
            }
        }
    }

    /// x[r, :] += bias for every row.
    static func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, dim: Int) {
        for r in 0..<rows {
            let xr = x + r * dim
            for i in 0..<dim { xr[i] += bias[i] }
        }
    }

    /// a += b, `count` elements.
    static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { a[i] += b[i] }
    }

    /// Rotary position embedding on `heads` heads of `headDim` in rows of `stride` floats, for
    /// positions 0..<rows. `interleaved`: pairs (2i, 2i+1) as GGUF's permuted Llama rows hold them;
    /// otherwise pairs (i, i + nRot/2) (rotate-half, NeoX/Qwen2 layout). Angles in double precision.
    static func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int, stride: Int,
                     nRot: Int, base: Double, interleaved: Bool, cache: RopeCache) {
        let half = nRot / 2
        for p in 0..<rows {
            let cs = cache.cos + p * half, sn = cache.sin + p * half
            for h in 0..<heads {
                let v = x + p * stride + h * headDim
                for i in 0..<half {
                    let (a, b) = interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                    let x0 = v[a], x1 = v[b]
                    v[a] = x0 * cs[i] - x1 * sn[i]
                    v[b] = x0 * sn[i] + x1 * cs[i]
                }
            }
        }
    }

    /// In-place causal softmax of `rows` rows of `cols` scores: row i is query position
    /// `firstRow + i` and sees keys 0...firstRow+i; the rest of the row is set to 0.
    static func causalSoftmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, firstRow: Int, scale: Float) {
        for r in 0..<rows {
            let row = s + r * cols
            let n = firstRow + r + 1
            var mx = -Float.infinity
            for j in 0..<n { row[j] *= scale; mx = max(mx, row[j]) }
            var sum: Float = 0
            for j in 0..<n { let e = expf(row[j] - mx); row[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0..<n { row[j] *= inv }
            for j in n..<cols { row[j] = 0 }
        }
    }

    /// gate ← silu(gate) · up.
    static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, threads: Int) {
        parallelRows(count, threads: threads) { range in
            for i in range {
                let g = gate[i]
                gate[i] = g / (1 + expf(-g)) * up[i]
            }
        }
    }

    /// GELU, tanh approximation (GPT-2's "gelu_new").
    static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        let c = Float((2.0 / Double.pi).squareRoot())
        parallelRows(count, threads: threads) { range in
            for i in range {
                let v = x[i]
                x[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v)))
            }
        }
    }
}

/// cos/sin tables for positions 0..<maxPositions, `nRot/2` angles each.
final class RopeCache: @unchecked Sendable {
    let cos: UnsafeMutablePointer<Float>
    let sin: UnsafeMutablePointer<Float>
    let positions: Int

    init(positions: Int, nRot: Int, base: Double) {
        let half = nRot / 2
        self.positions = positions
        cos = .allocate(capacity: max(1, positions * half))
        sin = .allocate(capacity: max(1, positions * half))
        for i in 0..<half {
            // As PyTorch computes inv_freq: in float32, base^(2i/nRot).
            let invFreq = Float(1) / powf(Float(base), Float(2 * i) / Float(nRot))
            for p in 0..<positions {
                let angle = Double(Float(p) * invFreq)
                cos[p * half + i] = Float(Foundation.cos(angle))
                sin[p * half + i] = Float(Foundation.sin(angle))
            }
        }
    }

    deinit {
        cos.deallocate()
        sin.deallocate()
    }
}
