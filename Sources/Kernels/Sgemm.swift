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
