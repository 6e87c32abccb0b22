import Calibration
import Formats
import Foundation
import Kernels
import TensorGraph
import XCTest

/// GPTQ onto integer group grids (GPTQ / compressed-tensors checkpoints); beside GPTQTests to
/// share its inputs and measures.
extension GPTQTests {

    /// On a random layer with correlated inputs GPTQ's output error is well below round to
    /// nearest's on the same grid, for int4 and int8, symmetric and asymmetric, groups of 128 and
    /// a row the group size does not divide (a shorter last group, as GPTQ stores it).
    func testIntGroupsBeatRoundToNearestOnTheSameGrid() throws {
        let rows = 32, cols = 320, n = 1024
        var rng = SeededRandom(5)
        let w = (0..<(rows * cols)).map { _ in rng.normal() * 0.05 }
        let x = correlatedInputs(rows: n, cols: cols, seed: 13)
        let h = gram(x, n: n, cols: cols)
        for grid in [IntGroupGrid(bits: 4, groupSize: 128, symmetric: true), IntGroupGrid(bits: 4, groupSize: 64, symmetric: false),
                     IntGroupGrid(bits: 8, groupSize: 128, symmetric: true)] {
            let rtn = grid.quantize(w, rows: rows, cols: cols)
            let m = try w.withUnsafeBufferPointer { wp in
                try h.withUnsafeBufferPointer { hp in
                    try GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, grid: grid, options: .init(threads: 2))
                }
            }
            XCTAssertEqual(m.layout.groups, (cols + grid.groupSize - 1) / grid.groupSize)
            XCTAssertNil(m.storedParts.groupIndex, "groups stay contiguous")
            if grid.symmetric { XCTAssertTrue(m.storedParts.zeros.allSatisfy { $0 == grid.midpoint }) }
            XCTAssertTrue(m.storedCodes.allSatisfy { Int32($0) <= grid.maxq })
            let values = m.storedParts.decode(codes: m.storedCodes, layout: m.layout)
            let rtnValues = rtn.storedParts.decode(codes: rtn.storedCodes, layout: rtn.layout)
            let eRTN = outputError(x, n: n, w, rtnValues, rows: rows, cols: cols)
            let eGPTQ = outputError(x, n: n, w, values, rows: rows, cols: cols)
            print("\(grid): ‖XWᵀ − XŴᵀ‖² RTN \(eRTN), GPTQ \(eGPTQ) (ratio \(eGPTQ / eRTN))")
            XCTAssertLessThan(eGPTQ, eRTN * (grid.bits == 8 ? 0.9 : 0.6), "\(grid)")
        }
    }

    /// Importance-weighted round to nearest never does worse than min-max on the weighted error.
    func testIntGroupsWeightedRoundToNearest() {
        let rows = 16, cols = 128
        var rng = SeededRandom(9)
        let w = (0..<(rows * cols)).map { _ in rng.normal() }
        let imp = (0..<cols).map { i in Float(1 + (i % 7) * (i % 3)) }
        let grid = IntGroupGrid(bits: 4, groupSize: 32, symmetric: false)
        let plain = grid.quantize(w, rows: rows, cols: cols)
        let weighted = GPTQ.weightedRTN(w, rows: rows, cols: cols, importance: imp, grid: grid)
        func cost(_ m: GroupQuantizedMatrix) -> Double {
            let v = m.storedParts.decode(codes: m.storedCodes, layout: m.layout)
            var s = 0.0
            for i in 0..<v.count { s += Double(imp[i % cols]) * Double((v[i] - w[i]) * (v[i] - w[i])) }
            return s
        }
        XCTAssertLessThanOrEqual(cost(weighted), cost(plain))
        XCTAssertLessThan(cost(weighted), cost(plain) * 0.99)
    }
}
