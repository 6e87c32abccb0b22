import Kernels
import XCTest

final class SgemmTests: XCTestCase {
    func testSgemmMatchesNaiveProduct() {
        let m = 5, n = 7, k = 9
        let a: [Float] = (0..<(m * k)).map { Float($0 % 11) - 5 }
        let b: [Float] = (0..<(k * n)).map { Float($0 % 7) * 0.5 - 1 }
        var c = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(m: m, n: n, k: k, a: a, b: b, c: &c)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                XCTAssertEqual(c[i * n + j], s, accuracy: 1e-4)
            }
        }
        // B given transposed ([n × k]) gives the same product.
        var bt = [Float](repeating: 0, count: n * k)
        for p in 0..<k { for j in 0..<n { bt[j * k + p] = b[p * n + j] } }
        var c2 = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(m: m, n: n, k: k, a: a, b: bt, c: &c2, transposeB: true)
        XCTAssertEqual(c, c2)
    }
}
