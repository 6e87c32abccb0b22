/// Conversions between f32 and the 16-bit float formats, all rounding to nearest, ties to even.
public enum Half {
    /// f32 → IEEE f16 bits. Overflow goes to ±inf; NaN becomes a quiet NaN (0x7e00 with the sign).
    @inline(__always)
    public static func f16Bits(_ value: Float) -> UInt16 {
        var f = value.bitPattern
        let sign = f & 0x8000_0000
        f ^= sign
        let out: UInt32
        if f >= 0x4780_0000 {  // ≥ 65536 (2^16), inf or NaN
            out = f > 0x7f80_0000 ? 0x7e00 : 0x7c00
        } else if f < 0x3880_0000 {  // below 2^-14: f16 subnormal or zero
            // Adding 0.5 puts the f16 subnormal ulp (2^-24) at the last place of the mantissa, so
            // the float adder rounds to nearest even for us.
            let sum = Float(bitPattern: f) + Float(bitPattern: 0x3f00_0000)
            out = sum.bitPattern &- 0x3f00_0000
        } else {
            let mantissaOdd = (f >> 13) & 1
            f = f &+ 0xc800_0fff  // rebias exponent (15 - 127) << 23, plus the rounding bias
            f = f &+ mantissaOdd
            out = f >> 13  // carries into the exponent give ±inf for values ≥ 65520
        }
        return UInt16(truncatingIfNeeded: out | (sign >> 16))
    }

    /// IEEE f16 bits → f32 (exact).
    @inline(__always)
    public static func f32(f16Bits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1f
        let mant = UInt32(h & 0x3ff)
        if exp == 0 {
            // zero or subnormal: mant × 2^-24
            let v = Float(mant) * Float(bitPattern: 0x3380_0000)
            return Float(bitPattern: v.bitPattern | sign)
        }
        if exp == 0x1f {
            return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13))
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// f32 → bfloat16 bits. NaN stays NaN (quieted), everything else rounds to nearest even.
    @inline(__always)
    public static func bf16Bits(_ value: Float) -> UInt16 {
        let f = value.bitPattern
        if f & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: f >> 16) | 0x0040 }
        let rounded = f &+ 0x7fff &+ ((f >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// bfloat16 bits → f32 (exact).
    @inline(__always)
    public static func f32(bf16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }
}
