import CBLAS

/// Dense factorizations through OpenBLAS's LAPACK (Fortran symbols declared in `CBLAS/shim.h`).
public enum LAPACK {
    /// Failures, with LAPACK's `info` code.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The matrix is not positive definite: the leading minor of order `order` is not.
        case notPositiveDefinite(order: Int)
        /// An argument was rejected (LAPACK `info` < 0); a programming error.
        case badArgument(Int)

        public var description: String {
            switch self {
            case let .notPositiveDefinite(order):
                return "the matrix is not positive definite (leading minor of order \(order))"
            case let .badArgument(i): return "LAPACK rejected argument \(i)"
            }
        }
    }

    /// For a symmetric positive definite `a` (n × n, row-major; only its upper triangle is read),
    /// the upper-triangular `U` with `a⁻¹ = Uᵀ U`, written over `a` (the lower triangle zeroed).
    /// This is the factor GPTQ walks column by column: row j of U, divided by U[j][j], spreads the
    /// rounding error of column j onto the columns after it.
    ///
    /// Row-major storage read as column-major is the transpose, so: `spotrf('L')` factors
    /// a = L Lᵀ (L in the row-major upper triangle, i.e. column-major lower), `spotri('L')` turns
    /// it into a⁻¹ (same triangle), and `spotrf('U')` on a⁻¹ yields the column-major upper factor
    /// R with a⁻¹ = Rᵀ R, which row-major holds as its lower triangle: U = that transposed.
    public static func inverseCholeskyUpper(_ a: UnsafeMutablePointer<Float>, n: Int) throws(Failure) {
        guard n > 0 else { return }
        var nn = Int32(n), lda = Int32(n), info: Int32 = 0
        var lower = CChar(UInt8(ascii: "L")), upper = CChar(UInt8(ascii: "U"))
        spotrf_(&lower, &nn, a, &lda, &info, 1)
        try check(info)
        spotri_(&lower, &nn, a, &lda, &info, 1)
        try check(info)
        // a⁻¹ is now in the row-major upper triangle; mirror it so spotrf('U') (column-major
        // upper = row-major lower) sees the whole matrix.
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { a[j * n + i] = a[i * n + j] } }
        spotrf_(&upper, &nn, a, &lda, &info, 1)
        try check(info)
        // Row-major lower triangle holds R (column-major upper); U = Rᵀ goes to the upper triangle.
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                a[i * n + j] = a[j * n + i]
                a[j * n + i] = 0
            }
        }
    }

    private static func check(_ info: Int32) throws(Failure) {
        if info > 0 { throw .notPositiveDefinite(order: Int(info)) }
        if info < 0 { throw .badArgument(Int(-info)) }
    }
}

extension BLAS {
    /// g[n×n] += xᵀ·x for x [rows × n] (row-major): the Gram matrix of the rows, summed into `g`.
    /// Only the upper triangle of `g` is updated (`cblas_ssyrk`); `symmetrize` fills the rest.
    public static func gramAccumulate(_ x: UnsafePointer<Float>, rows: Int, n: Int, into g: UnsafeMutablePointer<Float>) {
        guard rows > 0, n > 0 else { return }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(rows), 1, x, Int32(n), 1, g, Int32(n))
    }

    /// Copies the upper triangle of the n×n row-major `g` onto its lower triangle.
    public static func symmetrize(_ g: UnsafeMutablePointer<Float>, n: Int) {
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { g[j * n + i] = g[i * n + j] } }
    }
}
