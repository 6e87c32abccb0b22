import TensorGraph

/// F32: one little-endian f32 per "block". Decoding is a copy.
enum F32Block: QuantBlock {
    static let dtype = DType.f32
    static let elements = 1
    static let bytes = 4

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    }
}

/// F16: one little-endian IEEE half per element; widening to f32 is exact.
enum F16Block: QuantBlock {
    static let dtype = DType.f16
    static let elements = 1
    static let bytes = 2

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = widenF16(src.u16(2 &* i)) }
    }
}

/// BF16: the top 16 bits of an f32; widening is a shift.
enum BF16Block: QuantBlock {
    static let dtype = DType.bf16
    static let elements = 1
    static let bytes = 2

    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = Float(bitPattern: UInt32(src.u16(2 &* i)) << 16) }
    }
}
