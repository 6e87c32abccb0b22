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
        let x = Self.correlatedInputs(rows: n, cols: cols, seed: 13)
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

/// GPTQ onto MLX's affine grid (`quantize --format mlx --method gptq`).
extension GPTQTests {
    /// On MLX's affine grid (f16 scale and f16 bias per group) at several widths, group sizes and
    /// both symmetries: the MLX file written from GPTQ's codes decodes, bit for bit, to the values
    /// the walk produced, and GPTQ's output error on the calibration activations is below round
    /// to nearest's on the same grid.
    func testMLXAffineGridDecodesAsWrittenAndBeatsRoundToNearest() throws {
        let rows = 32, cols = 256, n = 1024
        var rng = SeededRandom(21)
        let w = (0..<(rows * cols)).map { _ in rng.normal() * 0.05 }
        let x = Self.correlatedInputs(rows: n, cols: cols, seed: 17)
        let h = gram(x, n: n, cols: cols)
        let grids = [
            IntGroupGrid(bits: 4, groupSize: 64, symmetric: false, affineBias: true),
            IntGroupGrid(bits: 4, groupSize: 128, symmetric: true, affineBias: true),
            IntGroupGrid(bits: 8, groupSize: 64, symmetric: false, affineBias: true),
            IntGroupGrid(bits: 3, groupSize: 32, symmetric: false, affineBias: true),
        ]
        for grid in grids {
            let m = try w.withUnsafeBufferPointer { wp in
                try h.withUnsafeBufferPointer { hp in
                    try GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, grid: grid, options: .init(threads: 2))
                }
            }
            let biases = try XCTUnwrap(m.storedParts.biases, "\(grid): no biases")
            func isF16(_ v: Float) -> Bool { Half.f32(f16Bits: Half.f16Bits(v)).bitPattern == v.bitPattern }
            XCTAssertTrue(m.storedParts.scales.allSatisfy(isF16) && biases.allSatisfy(isF16), "\(grid): a scale or bias is not an f16")
            let walked = m.storedParts.decode(codes: m.storedCodes, layout: m.layout)

            // Written as MLX and read back.
            let name = "model.layers.0.mlp.down_proj.weight"
            var g = try TensorGraph(tensors: [try GroupQuantizedStorage.tensor(name: name, source: m)])
            g.metadata["hf.config.json"] = .string(#"{"model_type": "llama"}"#)
            var moves: [TensorMove] = []
            let packed = try MLXFlavour.pack(
                g, FlavourRequest(format: "mlx", bits: grid.bits, groupSize: grid.groupSize, symmetric: grid.symmetric, exact: true), moves: &moves)
            XCTAssertEqual(moves.map(\.exact), [true], "\(grid)")
            let q = FlavourRegistry.config(packed)?["quantization"]
            XCTAssertEqual(q?["bits"]?.intValue, grid.bits)
            XCTAssertEqual(q?["group_size"]?.intValue, grid.groupSize)
            XCTAssertEqual(packed["model.layers.0.mlp.down_proj.scales"]?.dtype, .f16)
            var back: [TensorMove] = []
            let plain = try MLXFlavour.unpack(packed, FlavourRequest(keepBlocks: false, floatType: .f32), moves: &back)
            let decoded = try plain[name]!.storage.readAll().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            XCTAssertEqual(decoded.map(\.bitPattern), walked.map(\.bitPattern), "\(grid): the file decodes to other values than the walk's")

            let rtn = grid.quantize(w, rows: rows, cols: cols)
            XCTAssertNotNil(rtn.storedParts.biases)
            let eRTN = outputError(x, n: n, w, rtn.storedParts.decode(codes: rtn.storedCodes, layout: rtn.layout), rows: rows, cols: cols)
            let eGPTQ = outputError(x, n: n, w, walked, rows: rows, cols: cols)
            print("\(grid): ‖XWᵀ − XŴᵀ‖² RTN \(eRTN), GPTQ \(eGPTQ) (ratio \(eGPTQ / eRTN))")
            XCTAssertLessThan(eGPTQ, eRTN * 0.9, "\(grid)")
        }
    }

    /// The affine grid's round to nearest is `MLXQuantize`'s: the same codes, scales and biases
    /// as the MLX writer's own rounding of the same values.
    func testMLXAffineRoundToNearestIsTheWritersRounding() {
        let rows = 4, cols = 128
        var rng = SeededRandom(3)
        let w = (0..<(rows * cols)).map { _ in rng.normal() }
        for (bits, sym) in [(4, false), (4, true), (6, false), (8, true)] {
            let grid = IntGroupGrid(bits: bits, groupSize: 32, symmetric: sym, affineBias: true)
            let m = grid.quantize(w, rows: rows, cols: cols)
            let mlx = MLXQuantize.affine(w, cols: cols, grid: MLXGrid(bits: bits, groupSize: 32), symmetric: sym, scaleType: .f16)
            XCTAssertEqual(m.storedCodes, mlx.codes, "\(grid)")
            XCTAssertEqual(m.storedParts.scales, mlx.scales, "\(grid)")
            XCTAssertEqual(m.storedParts.biases, mlx.biases, "\(grid)")
        }
    }
}
