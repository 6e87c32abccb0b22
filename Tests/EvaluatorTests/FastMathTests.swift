import Foundation
import XCTest

@testable import Evaluator

/// The vector exp behind softmax and SiLU against double-precision exp.
final class FastMathTests: XCTestCase {
    func testExpRelativeErrorAcrossTheRange() {
        var worst = 0.0, at = 0.0
        var x: Float = -87
        while x < 88 {
            let v = SIMD16<Float>((0..<16).map { x + Float($0) * 0.000_61 })
            let e = FastMath.exp(v)
            for i in 0..<16 {
                let exact = Foundation.exp(Double(v[i]))
                let rel = abs(Double(e[i]) - exact) / exact
                if rel > worst { (worst, at) = (rel, Double(v[i])) }
            }
            x += 0.0097
        }
        XCTAssertLessThan(worst, 4e-7, "worst relative error \(worst) at x = \(at)")
    }

    func testExpClampsToFiniteNormals() {
        let e = FastMath.exp(SIMD16<Float>(repeating: 1000))
        XCTAssertTrue(e[0].isFinite && e[0] > 1e38)
        let z = FastMath.exp(SIMD16<Float>(repeating: -1000))
        XCTAssertTrue(z[0] >= Float.leastNormalMagnitude && z[0] < 1.3e-38, "\(z[0])")
        XCTAssertEqual(FastMath.exp(0), 1)
    }

    func testSoftmaxAndSwigluMatchDoubleReferences() {
        for n in [1, 5, 16, 17, 100, 513] {
            let raw: [Float] = (0..<n).map { Float(($0 * 37) % 23) * 0.7 - 8 }
            var x = raw
            x.withUnsafeMutableBufferPointer { Ops.softmax($0.baseAddress!, count: n, scale: 0.125) }
            let mx = raw.map { Double($0) * 0.125 }.max()!
            let e = raw.map { Foundation.exp(Double($0) * 0.125 - mx) }
            let sum = e.reduce(0, +)
            for i in 0..<n { XCTAssertEqual(Double(x[i]), e[i] / sum, accuracy: 1e-6 * max(1, e[i] / sum), "n \(n) i \(i)") }
        }
        let count = 1000
        var gate: [Float] = (0..<count).map { Float($0 % 41) - 20 }
        let up: [Float] = (0..<count).map { Float($0 % 7) * 0.3 - 1 }
        let g0 = gate
        gate.withUnsafeMutableBufferPointer { g in up.withUnsafeBufferPointer { u in Ops.swiglu(g.baseAddress!, u.baseAddress!, count: count, threads: 2) } }
        for i in 0..<count {
            let v = Double(g0[i]), want = v / (1 + Foundation.exp(-v)) * Double(up[i])
            XCTAssertEqual(Double(gate[i]), want, accuracy: 1e-6 * max(1, abs(want)), "i \(i)")
        }
    }
}
