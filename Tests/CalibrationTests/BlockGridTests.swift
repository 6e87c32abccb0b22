import Calibration
import Foundation
import Quantization
import TensorGraph
import XCTest

final class BlockGridTests: XCTestCase {
    static let types: [DType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1]

    func weightedError(_ x: [Float], _ w: [Float], _ q: [Float]) -> Double {
        var s = 0.0
        for i in 0..<x.count {
            let d = Double(x[i] - q[i])
            s += Double(w[i]) * d * d
        }
        return s
    }

    /// The grids are the registry's: exactly the types whose descriptor declares one, and no other
    /// type is silently treated as one of them.
    func testGridTypesComeFromTheDescriptors() {
        XCTAssertEqual(BlockGrid.supportedTypes, [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0])
        for t in [DType.q4_K, .q6_K, .iq4_NL, .iq4_XS, .q2_K, .f32] { XCTAssertFalse(BlockGrid.isSupported(t), t.displayName) }
        XCTAssertEqual(BlockGrid.codeRange(.q5_0).lo, -16)
        XCTAssertEqual(BlockGrid.codeRange(.q5_1).hi, 31)
    }

    /// Packed blocks decode (with ggml's decoders) to exactly code × d + m.
    func testPackDecodesToGridValues() throws {
        var rng = SeededRandom(1)
        for t in Self.types {
            let (lo, hi) = BlockGrid.codeRange(t)
            for _ in 0..<50 {
                let scale = BlockGrid.Scale(d: BlockGrid.f16(rng.normal() * 0.1), m: BlockTypes.descriptor(t)?.grid?.offset == true ? BlockGrid.f16(rng.normal()) : 0)
                let codes = (0..<32).map { _ in lo + Int32(rng.next() % UInt64(hi - lo + 1)) }
                var block = [UInt8](repeating: 0, count: t.bytesPerBlock)
                codes.withUnsafeBufferPointer { c in
                    block.withUnsafeMutableBytes { BlockGrid.pack(t, codes: c.baseAddress!, scale: scale, into: $0.baseAddress!) }
                }
                let decoded = try block.withUnsafeBytes { try Dequantize.toF32(t, $0) }
                for j in 0..<32 {
                    XCTAssertEqual(decoded[j], Float(codes[j]) * scale.d + scale.m, "\(t.displayName) value \(j)")
                }
            }
        }
    }

    /// The searched scale is never worse than ggml's round-to-nearest under the same weights, and
    /// clearly better on average.
    func testSearchIsNeverWorseThanReference() throws {
        var rng = SeededRandom(2)
        for t in Self.types {
            var gain = 0.0, blocks = 0
            for trial in 0..<400 {
                var x = (0..<32).map { _ in rng.normal() * 0.02 }
                if trial % 7 == 0 { x[Int(rng.next() % 32)] *= 8 }  // an outlier
                let w = (0..<32).map { _ in Float(rng.uniform() * rng.uniform() * 10) }
                let ref = try x.withUnsafeBufferPointer { try Quantize.rows(t, $0) }
                let refValues = try ref.withUnsafeBytes { try Dequantize.toF32(t, $0) }
                var out = [UInt8](repeating: 0, count: t.bytesPerBlock)
                try x.withUnsafeBufferPointer { xp in
                    try w.withUnsafeBufferPointer { wp in
                        try out.withUnsafeMutableBytes {
                            try WeightedQuantize.rows(t, xp.baseAddress!, rows: 1, rowLength: 32, importance: wp.baseAddress!,
                                                      into: $0.baseAddress!)
                        }
                    }
                }
                let values = try out.withUnsafeBytes { try Dequantize.toF32(t, $0) }
                // WeightedQuantize weighs by importance × sqrt(σ² + x²); judge with those weights.
                let sigma2 = x.reduce(0) { $0 + $1 * $1 } / 32
                let ww = (0..<32).map { w[$0] * (sigma2 + x[$0] * x[$0]).squareRoot() }
                let eRef = weightedError(x, ww, refValues), eOurs = weightedError(x, ww, values)
                XCTAssertLessThanOrEqual(eOurs, eRef * (1 + 1e-5), "\(t.displayName) trial \(trial)")
                gain += eRef > 0 ? eOurs / eRef : 1
                blocks += 1
            }
            let mean = gain / Double(blocks)
            print("\(t.displayName): searched / reference weighted error, mean \(mean)")
            XCTAssertLessThan(mean, t == .q8_0 ? 0.99 : 0.9, t.displayName)
        }
    }

    /// The lazy tensor quantizes row by row exactly as `WeightedQuantize.rows` does, whatever byte
    /// ranges are read.
    func testLazyImportanceTensorMatchesRows() throws {
        var rng = SeededRandom(4)
        let rows = 37, cols = 96
        let x = (0..<(rows * cols)).map { _ in rng.normal() }
        let imp = (0..<cols).map { _ in Float(rng.uniform() * 4) }
        let tensor = try Fixtures.f32Tensor("w", shape: [rows, cols], x)
        for t in Self.types {
            var expected = [UInt8](repeating: 0, count: rows * cols / 32 * t.bytesPerBlock)
            try x.withUnsafeBufferPointer { xp in
                try imp.withUnsafeBufferPointer { ip in
                    try expected.withUnsafeMutableBytes {
                        try WeightedQuantize.rows(t, xp.baseAddress!, rows: rows, rowLength: cols, importance: ip.baseAddress!,
                                                  into: $0.baseAddress!)
                    }
                }
            }
            let lazy = try tensor.quantized(to: t, importance: imp)
            XCTAssertEqual(lazy.dtype, t)
            XCTAssertEqual(try lazy.storage.readAll(), expected, t.displayName)
            // Odd ranges.
            for (off, n) in [(1, 5), (t.bytesPerBlock * 3 - 2, 40), (expected.count - 7, 7)] {
                var buf = [UInt8](repeating: 0, count: n)
                try buf.withUnsafeMutableBytes { try lazy.storage.read(offset: off, into: $0) }
                XCTAssertEqual(buf, Array(expected[off..<(off + n)]), "\(t.displayName) bytes \(off)+\(n)")
            }
        }
        XCTAssertThrowsError(try tensor.quantized(to: .q4_0, importance: [1, 2]))
    }
}
