import Quantization
import TensorGraph
import XCTest

final class DequantizeTests: XCTestCase {
    /// Types the module must decode.
    static let required: [DType] = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .mxfp4,
    ]

    func testRequiredTypesAreSupported() {
        for t in Self.required { XCTAssertTrue(Dequantize.isSupported(t), "\(t.displayName) has no decoder") }
        for t in [DType.q8_K, .iq4_XS, .tq1_0, .tq2_0, .nvfp4] {
            XCTAssertTrue(Dequantize.isSupported(t), t.displayName)
        }
        XCTAssertFalse(Dequantize.isSupported(.iq2_XXS))
        XCTAssertFalse(Dequantize.isSupported(.i32))
        XCTAssertEqual(Set(Dequantize.supportedTypes), Set(DType.allCases.filter(Dequantize.isSupported)))
    }

    /// Each decoder's layout (the sum of its fields) against the dtype table.
    func testLayoutsMatchTheDTypeTable() {
        for t in Dequantize.supportedTypes {
            guard let layout = Dequantize.layout(t) else { return XCTFail("\(t.displayName): no layout") }
            XCTAssertEqual(layout.blockSize, t.blockSize, "\(t.displayName) block size")
            XCTAssertEqual(layout.bytesPerBlock, t.bytesPerBlock, "\(t.displayName) bytes per block")
        }
        // Independently known ggml sizes (ggml-common.h), so a wrong table row cannot hide.
        let known: [DType: (Int, Int)] = [
            .q4_0: (32, 18), .q4_1: (32, 20), .q5_0: (32, 22), .q5_1: (32, 24), .q8_0: (32, 34), .q8_K: (256, 292),
            .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144), .q5_K: (256, 176), .q6_K: (256, 210),
            .iq4_NL: (32, 18), .iq4_XS: (256, 136), .mxfp4: (32, 17), .nvfp4: (64, 36), .tq1_0: (256, 54),
            .tq2_0: (256, 66), .f32: (1, 4), .f16: (1, 2), .bf16: (1, 2),
        ]
        for (t, (size, bytes)) in known {
            XCTAssertEqual(Dequantize.layout(t)?.blockSize, size, t.displayName)
            XCTAssertEqual(Dequantize.layout(t)?.bytesPerBlock, bytes, t.displayName)
        }
        XCTAssertNil(Dequantize.layout(.iq2_XXS))
    }

    /// Every golden type decodes bit for bit as gguf-py (and ggml) does.
    func testDecodeMatchesGolden() throws {
        for name in Golden.types {
            let dtype = try XCTUnwrap(DType(name: name), name)
            let blocks = try Golden.blocks(name)
            let expected = try Golden.expected(name)
            XCTAssertEqual(blocks.count / dtype.bytesPerBlock * dtype.blockSize, expected.count, "\(name) golden sizes")
            XCTAssertEqual(blocks.count % dtype.bytesPerBlock, 0, "\(name) golden blocks")
            let got = try blocks.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
            assertBitsEqual(got, expected, blockSize: dtype.blockSize, "\(name) decode")
        }
    }

    /// Decoding into a caller's buffer at an unaligned source offset gives the same bits.
    func testDecodeIntoBufferFromUnalignedSource() throws {
        for name in ["Q4_1", "Q6_K", "MXFP4"] {
            let dtype = DType(name: name)!
            let blocks = try Golden.blocks(name)
            let expected = try Golden.expected(name)
            let shifted = [0x55] + blocks  // every block one byte off
            var out = [Float](repeating: .nan, count: expected.count)
            try shifted.withUnsafeBytes { raw in
                try out.withUnsafeMutableBufferPointer { dst in
                    try Dequantize.toF32(dtype, UnsafeRawBufferPointer(rebasing: raw[1...]), into: dst)
                }
            }
            assertBitsEqual(out, expected, blockSize: dtype.blockSize, "\(name) unaligned decode")
        }
    }

    /// A decode large enough to be split over cores equals the golden values repeated.
    func testLargeParallelDecode() throws {
        for name in ["Q4_K", "Q8_0"] {
            let dtype = DType(name: name)!
            let blocks = try Golden.blocks(name)
            let expected = try Golden.expected(name)
            let repeats = (1 << 19) / expected.count + 1
            let big = [[UInt8]](repeating: blocks, count: repeats).flatMap { $0 }
            let got = try big.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
            XCTAssertEqual(got.count, expected.count * repeats)
            for r in [0, repeats / 2, repeats - 1] {
                assertBitsEqual(
                    Array(got[r * expected.count..<(r + 1) * expected.count]), expected, blockSize: dtype.blockSize,
                    "\(name) copy \(r)")
            }
            var mismatches = 0
            for i in 0..<got.count where got[i].bitPattern != expected[i % expected.count].bitPattern {
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "\(name): values differing in the parallel decode")
        }
    }

    /// Every f16 bit pattern (NaN payloads included) widens as `Half.f32(f16Bits:)` does.
    func testEveryF16Pattern() throws {
        let bits = (0...UInt16.max).map { $0.littleEndian }
        let got = try bits.withUnsafeBytes { try Dequantize.toF32(.f16, $0) }
        let expected = (0...UInt16.max).map { Half.f32(f16Bits: $0) }
        assertBitsEqual(got, expected, blockSize: 1, "F16 exhaustive")
    }

    /// Q8_K has no gguf-py decoder: value = d × q with an f32 d.
    func testQ8_K() throws {
        var block = [UInt8](repeating: 0, count: 292)
        withUnsafeBytes(of: Float(0.375).bitPattern.littleEndian) { block.replaceSubrange(0..<4, with: $0) }
        for j in 0..<256 { block[4 + j] = UInt8(truncatingIfNeeded: j - 128) }
        let got = try block.withUnsafeBytes { try Dequantize.toF32(.q8_K, $0) }
        XCTAssertEqual(got, (0..<256).map { Float(Int8(truncatingIfNeeded: $0 - 128)) * 0.375 })
    }

    /// Hand-made blocks whose values are known without any reference implementation.
    func testHandMadeBlocks() throws {
        // Q4_0, d = 2.0 (0x4000): nibble q gives (q - 8) × 2; byte j = j | (15 - j) << 4.
        var q40: [UInt8] = [0x00, 0x40]
        for j in 0..<16 { q40.append(UInt8(j) | UInt8(15 - j) << 4) }
        let v40 = try q40.withUnsafeBytes { try Dequantize.toF32(.q4_0, $0) }
        XCTAssertEqual(v40, (0..<16).map { Float($0 - 8) * 2 } + (0..<16).map { Float(7 - $0) * 2 })
        // MXFP4, e = 127 (scale 2^0, halved for the doubled levels): levels / 2.
        var mx: [UInt8] = [127]
        for j in 0..<16 { mx.append(UInt8(j) | UInt8(j) << 4) }
        let levels: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6]
        XCTAssertEqual(try mx.withUnsafeBytes { try Dequantize.toF32(.mxfp4, $0) }, levels + levels)
        // IQ4_NL, d = 1: the level table itself.
        var nl: [UInt8] = [0x00, 0x3c]
        for j in 0..<16 { nl.append(UInt8(j) | UInt8(j) << 4) }
        let table: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
        XCTAssertEqual(try nl.withUnsafeBytes { try Dequantize.toF32(.iq4_NL, $0) }, table + table)
    }

    func testBufferErrorsCarryTheNumbers() {
        let bytes = [UInt8](repeating: 0, count: 19)
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try Dequantize.toF32(.q4_0, $0) }) { e in
            XCTAssertEqual(e as? QuantizationError, .partialBlock(dtype: .q4_0, byteCount: 19, bytesPerBlock: 18))
            XCTAssertEqual("\(e)", "Q4_0: 19 bytes is not a whole number of 18-byte blocks")
        }
        XCTAssertThrowsError(
            try bytes[0..<18].withUnsafeBytes { src in
                var out = [Float](repeating: 0, count: 31)
                try out.withUnsafeMutableBufferPointer { try Dequantize.toF32(.q4_0, src, into: $0) }
            }
        ) { e in
            XCTAssertEqual(
                e as? QuantizationError, .outputSize(dtype: .q4_0, blocks: 1, expected: 32, got: 31, unit: "values"))
        }
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try Dequantize.toF32(.iq2_XXS, $0) }) { e in
            XCTAssertEqual(e as? QuantizationError, .noDecoder(.iq2_XXS))
            XCTAssertEqual("\(e)", "type IQ2_XXS is not supported for dequantization")
        }
    }
}
