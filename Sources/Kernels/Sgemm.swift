import CBLAS

/// Matrix products through OpenBLAS.
public enum BLAS {
    /// C[m×n] = A[m×k] · B[k×n] (row-major, f32), or with `transposeB`, B given as [n×k].
    public static func sgemm(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
        transposeB: Bool = false
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(transposeB ? k : n), 0, c, Int32(n))
    }
}

extension BLAS {
    /// General row-major sgemm with explicit leading dimensions:
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, op(B) = Bᵀ when `transposeB` (B stored [n×k]).
    public static func sgemm(
        m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, transposeB: Bool
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets the number of threads OpenBLAS uses.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}
