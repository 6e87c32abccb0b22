import Foundation
import Quantization
import TensorGraph
import XCTest

final class QuantizeTests: XCTestCase {
    static let types: [DType] = [.q8_0, .q4_0, .q4_1]

    func testSupportedTypesAndLayouts() {
        XCTAssertTrue(Set(Self.types).isSubset(of: Set(Quantize.supportedTypes)))
        for t in Quantize.supportedTypes {
            XCTAssertTrue(Quantize.isSupported(t))
            XCTAssertEqual(Quantize.layout(t)?.blockSize, t.blockSize, t.displayName)
            XCTAssertEqual(Quantize.layout(t)?.bytesPerBlock, t.bytesPerBlock, t.displayName)
        }
        XCTAssertFalse(Quantize.isSupported(.tq1_0))
        XCTAssertNil(Quantize.layout(.iq2_XXS))
    }

    /// Our quantizers against gguf-py's bytes (which ggml's `quantize_row_*_ref` also produce).
    func testQuantizeMatchesGolden() throws {
        for t in Self.types {
            let name = t.displayName
            let input = try Golden.input(name)
            let golden = try Golden.blocks(name)
            let blocks = input.count / t.blockSize
            let expected = Array(golden[0..<blocks * t.bytesPerBlock])
            let got = try input.withUnsafeBufferPointer { try Quantize.rows(t, $0) }
            XCTAssertEqual(got.count, expected.count, name)
            if let i = (0..<min(got.count, expected.count)).first(where: { got[$0] != expected[$0] }) {
                let b = i / t.bytesPerBlock
                let range = b * t.bytesPerBlock..<(b + 1) * t.bytesPerBlock
                let x = input[b * t.blockSize..<(b + 1) * t.blockSize].map { "\($0)" }.joined(separator: " ")
                XCTFail(
                    "\(name): block \(b) differs at byte \(i - range.lowerBound):\n got      \(hex(got[range]))\n expected"
                        + " \(hex(expected[range]))\n input    \(x)")
            }
        }
    }

    /// Cases whose bytes follow from the reference's rules alone.
    func testReferenceRoundingRules() throws {
        // Q8_0: amax 127 → d = 1 (f16 0x3c00), id = 1; roundf takes halves away from zero.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = 0.5; x[4] = -0.5; x[5] = 1.49; x[6] = -126.5
        let q8 = try x.withUnsafeBufferPointer { try Quantize.rows(.q8_0, $0) }
        XCTAssertEqual(Array(q8[0..<2]), [0x00, 0x3c])
        XCTAssertEqual(Array(q8[2..<9]).map { Int8(bitPattern: $0) }, [127, 3, -3, 1, -1, 1, -127])

        // Q4_0: the first largest magnitude sets d = max / -8; codes are trunc(x / d + 8.5), at most 15.
        x = [Float](repeating: 0, count: 32)
        x[0] = -8; x[1] = 8; x[2] = -0.5; x[3] = 0.5; x[16] = 6.6; x[17] = -7.9
        let q4 = try x.withUnsafeBufferPointer { try Quantize.rows(.q4_0, $0) }
        XCTAssertEqual(Array(q4[0..<2]), [0x00, 0x3c])  // d = -8 / -8 = 1
        // x / d + 8.5: -8 → 0, 8 → 16 → 15, -0.5 → 8, 0.5 → 9; 6.6 → 15, -7.9 → 0 (high nibbles).
        XCTAssertEqual(q4[2], 0x00 | 15 << 4)
        XCTAssertEqual(q4[3], 15 | 0 << 4)
        XCTAssertEqual(q4[4], 8 | 8 << 4)
        XCTAssertEqual(q4[5], 9 | 8 << 4)

        // Q4_1: zero block → d = m = 0 and every code 0; 0.5 steps truncate after + 0.5.
        x = [Float](repeating: 0, count: 32)
        XCTAssertEqual(try x.withUnsafeBufferPointer { try Quantize.rows(.q4_1, $0) }, [UInt8](repeating: 0, count: 20))
        x = (0..<32).map { Float($0 % 16) }
        x[5] = 0.5; x[6] = 13.5
        let q41 = try x.withUnsafeBufferPointer { try Quantize.rows(.q4_1, $0) }
        XCTAssertEqual(Array(q41[0..<4]), [0x00, 0x3c, 0x00, 0x00])  // d = 15 / 15 = 1, m = 0
        XCTAssertEqual(q41[4 + 5] & 0x0F, 1)
        XCTAssertEqual(q41[4 + 6] & 0x0F, 14)

        // Zero blocks of Q4_0 and Q8_0: codes at the zero point; Q4_0's d is 0 / -8 = -0 (f16 0x8000).
        x = [Float](repeating: 0, count: 32)
        XCTAssertEqual(
            try x.withUnsafeBufferPointer { try Quantize.rows(.q4_0, $0) },
            [0, 0x80] + [UInt8](repeating: 0x88, count: 16))
        XCTAssertEqual(try x.withUnsafeBufferPointer { try Quantize.rows(.q8_0, $0) }, [UInt8](repeating: 0, count: 34))
    }

    /// Q8_0 codes are roundf(x / d) for values on, just below and just above every half step.
    func testQ8_0RoundsHalvesAwayFromZero() throws {
        var x: [Float] = []
        for k in -127...126 {
            let tie = Float(k) + 0.5
            var block = [Float](repeating: 0, count: 32)
            block[0] = 127  // d = 1, id = 1: x / d is x itself
            block[1] = tie
            block[2] = tie.nextDown
            block[3] = tie.nextUp
            block[4] = -tie
            block[5] = Float(k) + 0.25
            x += block
        }
        let bytes = try x.withUnsafeBufferPointer { try Quantize.rows(.q8_0, $0) }
        for b in 0..<x.count / 32 {
            for j in 0..<32 {
                let expected = Int8(x[b * 32 + j].rounded(.toNearestOrAwayFromZero))
                let got = Int8(bitPattern: bytes[b * 34 + 2 + j])
                if got != expected {
                    return XCTFail("block \(b) value \(j): \(x[b * 32 + j]) → \(got), expected \(expected)")
                }
            }
        }
    }

    /// Quantize → dequantize stays within the bounds the formats promise.
    func testRoundTripErrorBounds() throws {
        var rng = SeededGenerator(seed: 42)
        var x: [Float] = []
        for b in 0..<512 {
            let scale = Float(pow(10, Double(b % 7) - 4))
            for _ in 0..<32 { x.append(rng.normal() * scale + (b % 3 == 0 ? scale : 0)) }
        }
        // Rounding a scale s to f16 moves it by at most this (relative half-ulp, or half the
        // subnormal step 2^-24).
        func f16Error(_ s: Float) -> Float { max(abs(s) / 2048, 0x1p-25) }
        for t in Self.types {
            let bytes = try x.withUnsafeBufferPointer { try Quantize.rows(t, $0) }
            let y = try bytes.withUnsafeBytes { try Dequantize.toF32(t, $0) }
            for b in 0..<512 {
                let block = x[b * 32..<(b + 1) * 32]
                let amax = block.map(abs).max()!, lo = block.min()!, hi = block.max()!
                let bound: Float
                switch t {
                case .q8_0: bound = amax / 127 * 0.5 + 127 * f16Error(amax / 127)
                case .q4_0: bound = amax / 8 + 8 * f16Error(amax / 8)  // a full step at the clipped end
                default: bound = (hi - lo) / 15 * 0.5 + 15 * f16Error((hi - lo) / 15) + f16Error(lo)
                }
                for i in b * 32..<(b + 1) * 32 {
                    let err = abs(y[i] - x[i])
                    XCTAssertLessThanOrEqual(err, bound * 1.0001 + 1e-12, "\(t.displayName) block \(b) value \(i % 32)")
                }
            }
            let mean = zip(x, y).map { abs($0 - $1) }.reduce(0, +) / Float(x.count)
            XCTAssertGreaterThan(mean, 0, "\(t.displayName): a lossy format reproduced everything exactly")
        }
    }

    /// Large inputs are encoded on several threads; the bytes equal block-by-block encoding.
    func testLargeParallelQuantizeEqualsSmallPieces() throws {
        var rng = SeededGenerator(seed: 7)
        let x = (0..<(1 << 18) + 96).map { _ in rng.normal() }
        for t in Self.types {
            let whole = try x.withUnsafeBufferPointer { try Quantize.rows(t, $0) }
            var pieces: [UInt8] = []
            let piece = 32 * 100
            var start = 0
            while start < x.count {
                let end = min(x.count, start + piece)
                pieces += try x[start..<end].withUnsafeBufferPointer { try Quantize.rows(t, $0) }
                start = end
            }
            XCTAssertEqual(whole, pieces, t.displayName)
        }
    }

    func testLazyQuantizedTensor() throws {
        var rng = SeededGenerator(seed: 99)
        let rows = 37, cols = 96
        let x = (0..<rows * cols).map { _ in rng.normal() * 0.1 }
        let bytes = x.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let source = try Tensor(name: "w", dtype: .f32, shape: [rows, cols], storage: MemoryStorage(bytes))
        for t in Self.types {
            let q = try source.quantized(to: t)
            XCTAssertEqual(q.dtype, t)
            XCTAssertEqual(q.shape, [rows, cols])
            let expected = try x.withUnsafeBufferPointer { try Quantize.rows(t, $0) }
            XCTAssertEqual(try q.storage.readAll(), expected, t.displayName)
            for (offset, count) in [(0, 1), (1, 33), (17, 100), (expected.count - 5, 5), (expected.count / 3, 1000)] {
                var out = [UInt8](repeating: 0xEE, count: count)
                try out.withUnsafeMutableBytes { try q.storage.read(offset: offset, into: $0) }
                XCTAssertEqual(
                    out, Array(expected[offset..<offset + count]), "\(t.displayName) \(offset)..<\(offset + count)")
            }
            // Back to f32 through the lazy decoder.
            let y = try q.dequantized().storage.readAll()
            let direct = try expected.withUnsafeBytes { try Dequantize.toF32(t, $0) }
            XCTAssertEqual(y, direct.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } })
        }
        // From f16: the same as quantizing the f16 values widened.
        let h = try source.cast(to: .f16)
        let widened = try h.cast(to: .f32).storage.readAll()
        let hx = widened.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(
            try h.quantized(to: .q8_0).storage.readAll(),
            try hx.withUnsafeBufferPointer { try Quantize.rows(.q8_0, $0) })
        // From a quantized type: dequantize then quantize.
        let requantized = try source.quantized(to: .q4_1).quantized(to: .q8_0)
        XCTAssertEqual(requantized.dtype, .q8_0)
        XCTAssertEqual(requantized.byteCount, rows * cols / 32 * 34)
    }

    func testErrors() throws {
        let x = [Float](repeating: 1, count: 33)
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { try Quantize.rows(.q8_0, $0) }) { e in
            XCTAssertEqual(e as? QuantizationError, .partialBlockValues(dtype: .q8_0, count: 33, blockSize: 32))
        }
        XCTAssertThrowsError(
            try x[0..<32].withUnsafeBufferPointer { src in
                var out = [UInt8](repeating: 0, count: 33)
                try out.withUnsafeMutableBytes { try Quantize.rows(.q8_0, src, into: $0) }
            }
        ) { e in
            XCTAssertEqual(
                e as? QuantizationError, .outputSize(dtype: .q8_0, blocks: 1, expected: 34, got: 33, unit: "bytes"))
        }
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { try Quantize.rows(.tq2_0, $0) }) { e in
            XCTAssertEqual(e as? QuantizationError, .noEncoder(.tq2_0))
        }
        let bytes = [UInt8](repeating: 0, count: 3 * 33 * 4)
        let odd = try Tensor(name: "odd", dtype: .f32, shape: [3, 33], storage: MemoryStorage(bytes))
        XCTAssertThrowsError(try odd.quantized(to: .q4_0)) { e in
            XCTAssertEqual(
                e as? QuantizationError, .notBlockAligned(tensor: "odd", shape: [3, 33], target: .q4_0, blockSize: 32))
            XCTAssertEqual(
                "\(e)",
                "cannot quantize tensor 'odd' of shape [3, 33] to Q4_0: innermost dimension 33 is not a multiple of the block size 32"
            )
        }
        XCTAssertThrowsError(try odd.quantized(to: .iq2_XS)) { e in
            XCTAssertEqual(e as? QuantizationError, .badQuantizeTarget(tensor: "odd", target: .iq2_XS))
        }
        let ints = try Tensor(
            name: "ids", dtype: .i32, shape: [32], storage: MemoryStorage([UInt8](repeating: 0, count: 128)))
        XCTAssertThrowsError(try ints.quantized(to: .q8_0)) { e in
            XCTAssertEqual(e as? QuantizationError, .badQuantizeSource(tensor: "ids", source: .i32, target: .q8_0))
        }
    }
}
