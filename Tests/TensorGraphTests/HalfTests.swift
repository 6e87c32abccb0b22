import TensorGraph
import XCTest

/// f16/bf16 conversions against independent references: Swift's own `Float16` (compiler-rt's
/// conversions) for f16, and exact rational rounding for bf16.
final class HalfTests: XCTestCase {
    func testEveryF16DecodesLikeFloat16() {
        for bits in 0...UInt16.max {
            let ours = Half.f32(f16Bits: bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                XCTAssertTrue(ours.isNaN)
            } else {
                XCTAssertEqual(ours.bitPattern, reference.bitPattern, "f16 0x\(String(bits, radix: 16))")
            }
        }
    }

    func testEveryF16RoundTrips() {
        for bits in 0...UInt16.max where !Half.f32(f16Bits: bits).isNaN {
            XCTAssertEqual(Half.f16Bits(Half.f32(f16Bits: bits)), bits)
        }
    }

    func testF32ToF16MatchesFloat16Rounding() {
        var rng = SystemRandomNumberGenerator()
        var specials: [Float] = [
            0, -0, 1, -1, 65504, 65519.99, 65520, 65536, 1e10, -1e10, .infinity, -.infinity,
            Float(bitPattern: 0x3380_0000), Float(bitPattern: 0x3300_0000), Float(bitPattern: 0x3300_0001),
            Float(bitPattern: 0x387f_e000), Float(bitPattern: 0x387f_f000), 6.1035156e-05, 5.9604645e-08,
            2.9802322e-08, 2.9802326e-08, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
        ]
        // Exact ties between neighbouring f16 values, in the normal and subnormal ranges.
        for h in stride(from: UInt16(0), to: 0x7bff, by: 97) {
            let a = Double(Float(Float16(bitPattern: h))), b = Double(Float(Float16(bitPattern: h + 1)))
            specials.append(Float((a + b) / 2))
        }
        for _ in 0..<200_000 { specials.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        for x in specials where !x.isNaN {
            XCTAssertEqual(Half.f16Bits(x), Float16(x).bitPattern, "f32 \(x) (0x\(String(x.bitPattern, radix: 16)))")
        }
        XCTAssertEqual(Half.f16Bits(.nan) & 0x7e00, 0x7e00)
    }

    func testBF16RoundsToNearestEven() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            if x.isNaN {
                XCTAssertTrue(Half.f32(bf16Bits: Half.bf16Bits(x)).isNaN)
                continue
            }
            // Reference: pick the nearer of the two bf16 neighbours, ties to the even one.
            let lo = x.bitPattern & 0xffff_0000
            let down = Float(bitPattern: lo)
            // The next bf16 away from zero, as an exact double (2^128 past the largest finite one,
            // where IEEE rounding overflows to infinity).
            let ulp = down == 0 || !down.isNormal ? 0x1p-133 : Double(sign: .plus, exponent: Double(down).exponent - 7, significand: 1)
            let upValue = Double(down) + (x.sign == .minus ? -ulp : ulp)
            let dDown = abs(Double(x) - Double(down)), dUp = abs(Double(x) - upValue)
            let expected: UInt32
            if dDown < dUp || (dDown == dUp && (lo >> 16) & 1 == 0) {
                expected = lo
            } else {
                expected = lo + 0x1_0000
            }
            XCTAssertEqual(UInt32(Half.bf16Bits(x)) << 16, expected, "\(x)")
        }
        XCTAssertEqual(Half.bf16Bits(Float(bitPattern: 0x3f80_8000)), 0x3f80)  // tie → even
        XCTAssertEqual(Half.bf16Bits(Float(bitPattern: 0x3f81_8000)), 0x3f82)  // tie → even (up)
    }

    func testCastIsLazyAndRangeExact() throws {
        let values: [Float] = (0..<1000).map { Float($0) * 0.37 - 100 }
        let bytes = values.withUnsafeBytes { Array($0) }
        let t = try Tensor(name: "x", dtype: .f32, shape: [10, 100], storage: MemoryStorage(bytes))
        let h = try t.cast(to: .f16)
        XCTAssertEqual(h.byteCount, 2000)
        let all = try h.storage.readAll()
        // An odd range must equal the same bytes of the full conversion.
        var part = [UInt8](repeating: 0, count: 333)
        try part.withUnsafeMutableBytes { try h.storage.read(offset: 101, into: $0) }
        XCTAssertEqual(part, Array(all[101..<434]))
        for i in 0..<1000 {
            let got = UInt16(all[2 * i]) | UInt16(all[2 * i + 1]) << 8
            XCTAssertEqual(got, Float16(values[i]).bitPattern)
        }
        XCTAssertThrowsError(try t.cast(to: .q8_0))
    }
}
