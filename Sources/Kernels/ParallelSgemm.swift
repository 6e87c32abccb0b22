import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

extension BLAS {
    /// How `parallelSgemm` cuts an m×n product over `threads`: `columnParts` × `rowParts` tiles.
    /// Columns are cut first (each thread then packs only its own slice of B, the weight), as long
    /// as a slice keeps at least `minColumns` columns, where the kernels run at full speed; the
    /// remaining factor of the threads cuts the rows. Two threads on a 576-wide layer: 2 × 1;
    /// 64 threads on 576 columns × 512 rows: 9 × 7 (64-column slices, 73-row bands).
    public static func tiling(m: Int, n: Int, threads: Int, minColumns: Int = 64) -> (columnParts: Int, rowParts: Int) {
        let t = max(1, threads)
        let columnParts = max(1, min(t, n / max(1, minColumns), n))
        let rowParts = max(1, min(t / columnParts, m))
        return (columnParts, rowParts)
    }

    /// C[m×n] = A[m×k] · op(B) over `threads` threads, each a single-threaded sgemm on one tile of
    /// C (see `tiling`). op(B) = Bᵀ when `transposeB` (B stored [n×k], a weight matrix).
    public static func parallelSgemm(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, transposeB: Bool, threads: Int
    ) {
        let (cp, rp) = tiling(m: m, n: n, threads: threads)
        // The tiles write disjoint parts of C; A and B are only read.
        struct Operands: @unchecked Sendable {
            let a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
        }
        let ops = Operands(a: a, b: b, c: c)
        let tile = { @Sendable (i: Int) in
            let (ci, ri) = (i % cp, i / cp)
            let c0 = n * ci / cp, c1 = n * (ci + 1) / cp
            let r0 = m * ri / rp, r1 = m * (ri + 1) / rp
            guard c0 < c1, r0 < r1 else { return }
            sgemm(m: r1 - r0, n: c1 - c0, k: k, a: ops.a + r0 * lda, lda: lda,
                  b: transposeB ? ops.b + c0 * ldb : ops.b + c0, ldb: ldb,
                  c: ops.c + r0 * ldc + c0, ldc: ldc, transposeB: transposeB)
        }
        if cp * rp == 1 { tile(0); return }
        DispatchQueue.concurrentPerform(iterations: cp * rp, execute: tile)
    }
}

/// The sgemm microbenchmark behind `smelt system --bench`: the rate of the kernels in use on the
/// shapes a model's forward pass multiplies, next to their peak on a large square product.
public enum SgemmBench {
    /// One product: C[m×n] = A[m×k] · Bᵀ (B [n×k], a weight), `count` times per forward pass.
    public struct Shape: Hashable, Sendable {
        public var m: Int, n: Int, k: Int
        public var transposeB: Bool
        public init(m: Int, n: Int, k: Int, transposeB: Bool = true) {
            self.m = m
            self.n = n
            self.k = k
            self.transposeB = transposeB
        }
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// GFLOP/s of `shape` split over `threads` as the evaluator splits it: the best of repeated
    /// runs lasting at least `seconds` in all. With `coldWeights`, each run multiplies a different
    /// copy of B from a pool larger than the last-level cache (96 MiB), as a forward pass meets
    /// each weight once per chunk, after every other weight has passed through the caches.
    public static func rate(_ shape: Shape, threads: Int, seconds: Double = 0.2, coldWeights: Bool = true) -> Double {
        let bCount = shape.n * shape.k
        let copies = coldWeights ? min(256, max(1, (96 << 20) / max(1, bCount * 4) + 1)) : 1
        let a = UnsafeMutablePointer<Float>.allocate(capacity: shape.m * shape.k)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: bCount * copies)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: shape.m * shape.n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(shape.m * shape.k) { a[i] = Float(i % 13) * 0.01 - 0.06 }
        for i in 0..<(bCount * copies) { b[i] = Float(i % 7) * 0.02 - 0.06 }
        var copy = 0
        BLAS.setThreads(1)  // one BLAS thread per call, as the evaluator runs it
        let run = {
            BLAS.parallelSgemm(m: shape.m, n: shape.n, k: shape.k, a: a, lda: shape.k, b: b + copy * bCount,
                               ldb: shape.transposeB ? shape.k : shape.n, c: c, ldc: shape.n,
                               transposeB: shape.transposeB, threads: threads)
            copy = (copy + 1) % copies
        }
        run()  // warm-up: pack buffers, threads
        var best = Double.infinity, spent = 0.0, runs = 0
        while spent < seconds || runs < 3 {
            let t0 = now()
            run()
            let dt = now() - t0
            best = min(best, dt)
            spent += dt
            runs += 1
        }
        return shape.flops / best / 1e9
    }

    /// The kernels' peak on one thread: a 1024³ product, the size where they reach their top rate.
    public static func peak(seconds: Double = 0.5) -> Double {
        rate(Shape(m: 1024, n: 1024, k: 1024, transposeB: false), threads: 1, seconds: seconds, coldWeights: false)
    }
}
