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
    /// `firstRow + i` and sees keys 0...firstRow+i (only the last `window` of them when a window
    /// is set); the rest of the row is set to 0. A `sink` logit (unscaled) joins each row's
    /// denominator only.
    static func causalSoftmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, firstRow: Int, scale: Float, window: Int? = nil,
                              sink: Float? = nil) {
        for r in 0..<rows {
            let row = s + r * cols
            let n = firstRow + r + 1
            let j0 = window.map { max(0, n - $0) } ?? 0
            if j0 > 0 { row.update(repeating: 0, count: j0) }
            softmax(row + j0, count: n - j0, scale: scale, sink: sink)
            if n < cols { (row + n).update(repeating: 0, count: cols - n) }
        }
    }

    /// x ← softmax(scale · x) over `count` values, 16 lanes at a time; a `sink` is one more logit
    /// in the denominator (attention sinks), with no output of its own.
    static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int, scale: Float, sink: Float? = nil) {
        typealias V = SIMD16<Float>
        let full = n / 16 * 16
        let raw = UnsafeMutableRawPointer(x)
        var mx16 = V(repeating: -.infinity)
        var j = 0
        while j < full {
            let v = raw.loadUnaligned(fromByteOffset: j * 4, as: V.self) * scale
            raw.storeBytes(of: v, toByteOffset: j * 4, as: V.self)
            mx16.replace(with: v, where: v .> mx16)
            j += 16
        }
        var mx = mx16.max()
        for i in full..<n { x[i] *= scale; mx = max(mx, x[i]) }
        if let sink { mx = max(mx, sink) }
        var sum16 = V(repeating: 0)
        j = 0
        while j < full {
            let e = FastMath.exp(raw.loadUnaligned(fromByteOffset: j * 4, as: V.self) - mx)
            raw.storeBytes(of: e, toByteOffset: j * 4, as: V.self)
            sum16 += e
            j += 16
        }
        var sum = sum16.sum()
        for i in full..<n { let e = FastMath.exp(x[i] - mx); x[i] = e; sum += e }
        if let sink { sum += FastMath.exp(sink - mx) }
        let inv = 1 / sum
        j = 0
        while j < full {
            raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: j * 4, as: V.self) * inv, toByteOffset: j * 4, as: V.self)
            j += 16
        }
        for i in full..<n { x[i] *= inv }
    }

    /// gate ← silu(gate) · up.
    static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, threads: Int) {
        typealias V = SIMD16<Float>
        parallelRows(count / 16, threads: threads) { range in
            let g = UnsafeMutableRawPointer(gate), u = UnsafeRawPointer(up)
            for b in range {
                let v = g.loadUnaligned(fromByteOffset: b * 64, as: V.self)
                let w = u.loadUnaligned(fromByteOffset: b * 64, as: V.self)
                g.storeBytes(of: v / (1 + FastMath.exp(-v)) * w, toByteOffset: b * 64, as: V.self)
            }
        }
        for i in (count / 16 * 16)..<count {
            let v = gate[i]
            gate[i] = v / (1 + FastMath.exp(-v)) * up[i]
        }
    }

    /// gate ← gelu_tanh(gate) · up (GeGLU).
    static func geglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, threads: Int) {
        gelu(gate, count: count, threads: threads)
        parallelRows(count, threads: threads) { range in
            for i in range { gate[i] *= up[i] }
        }
    }

    /// x ← tanh(x / cap) · cap.
    static func softcap(_ x: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        for i in 0..<count { x[i] = tanhf(x[i] / cap) * cap }
    }

    /// x ← silu(x).
    static func silu(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        parallelRows(count, threads: threads) { range in
            for i in range { x[i] = x[i] / (1 + expf(-x[i])) }
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

    /// `divisors` (one per angle: Llama 3's `rope_freqs.weight`) and `linearFactor` (linear
    /// scaling) divide the frequencies.
    /// `invFreqs` replaces the frequencies (YaRN) and `scale` multiplies cos and sin.
    init(positions: Int, nRot: Int, base: Double, divisors: [Float]? = nil, linearFactor: Double = 1,
         invFreqs: [Float]? = nil, scale: Float = 1) {
        let half = nRot / 2
        self.positions = positions
        cos = .allocate(capacity: max(1, positions * half))
        sin = .allocate(capacity: max(1, positions * half))
        for i in 0..<half {
            // As PyTorch computes inv_freq: in float32, base^(2i/nRot).
            var invFreq = Float(1) / powf(Float(base), Float(2 * i) / Float(nRot))
            if let divisors { invFreq /= divisors[i] }
            if linearFactor != 1 { invFreq /= Float(linearFactor) }
            if let invFreqs { invFreq = invFreqs[i] }
            for p in 0..<positions {
                let angle = Double(Float(p) * invFreq)
                cos[p * half + i] = Float(Foundation.cos(angle)) * scale
                sin[p * half + i] = Float(Foundation.sin(angle)) * scale
            }
        }
    }

    deinit {
        cos.deallocate()
        sin.deallocate()
    }
}

/// exp over 16 lanes at once, for softmax and SiLU: 2ⁿ · e^r with n = round(x / ln 2) and
/// |r| ≤ ln 2 / 2, e^r by its Taylor series to r⁷ (truncation below 6e-9 relative), 2ⁿ built in
/// the exponent bits. Relative error within a few float ulps of the exact value (the test checks
/// 4e-7 against double); inputs are clamped to [-87.3, 88.3], so results stay normal and finite
/// (2¹²⁷ · e^0.27 at the top).
enum FastMath {
    @inline(__always)
    static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // (Clamped with masks: pointwiseMin/Max would not vectorize in baseline x86-64 code.)
        let lo = SIMD16<Float>(repeating: -87.3), hi = SIMD16<Float>(repeating: 88.3)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        // Round x·log2(e) to an integer by adding 1.5·2²³: the sum's low mantissa bits hold n.
        let shifter: Float = 12_582_912
        let t = xc * 1.442_695_04 + shifter
        let n = t - shifter
        let nBits = unsafeBitCast(t, to: SIMD16<Int32>.self) &- Int32(bitPattern: shifter.bitPattern)
        // r = x − n·ln 2, with ln 2 split in two so that n·ln2hi is exact.
        let r = (xc - n * 0.693_145_751_953_125) - n * 1.428_606_765_330_187e-6
        var p = SIMD16<Float>(repeating: 1.0 / 5040)
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD16<Float>.self)
        return p * scale
    }

    /// The same for one value (the tails of rows).
    @inline(__always)
    static func exp(_ x: Float) -> Float { exp(SIMD16(repeating: x))[0] }
}
