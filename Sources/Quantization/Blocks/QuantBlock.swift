import TensorGraph

/// One ggml block type, described once: its byte layout (`dtype`'s fields in `DType.table`, which
/// the constants of each codec must match — the tests check every one), its decoder, and, through
/// the protocols below, what else Smelt can do with it. Blocks are read from raw bytes at any
/// alignment (a GGUF tensor's blocks of 18 or 17 bytes are never aligned), little-endian.
///
/// Adding a type: one file in `Blocks/` with an enum conforming to these protocols, and one line in
/// `BlockTypes.registry`.
protocol QuantBlock: SendableMetatype {
    /// The type this layout describes.
    static var dtype: DType { get }
    /// Elements per block.
    static var elements: Int { get }
    /// Bytes per block, summed from the layout's fields (checked against `DType.table`).
    static var bytes: Int { get }
    /// The byte offsets the codec uses, by `DType.table` field name (checked by the tests).
    static var fieldOffsets: [String: Int] { get }
    /// Decodes `count` consecutive blocks at `src` into `count * elements` floats at `dst`.
    static func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int)
    /// The type llama.cpp's CPU backend rounds a product's activations to before multiplying them
    /// with weights of this type (its `vec_dot_type`), when that is a block type.
    static var activation: DType? { get }
}

extension QuantBlock {
    static var fieldOffsets: [String: Int] { [:] }
    static var activation: DType? { nil }
}

/// A block type that Smelt also encodes, byte for byte as llama-quantize does (ggml's
/// `quantize_<type>` in ggml-quants.c, which `ggml_quantize_chunk` calls).
protocol QuantEncodable: QuantBlock {
    /// Encodes `count * elements` floats at `src` into `count` blocks at `dst`, as ggml does
    /// without an importance matrix.
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int)
    /// Encodes one row of `rowLength` values (a multiple of `elements`) with one importance
    /// weight per value, as ggml does with an importance matrix (for some types ggml ignores it).
    static func encodeWeighted(
        _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer)
}

// MARK: - Field access

extension UnsafeRawPointer {
    /// The byte at `offset`.
    @inline(__always)
    func u8(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }

    /// The signed byte at `offset`.
    @inline(__always)
    func i8(_ offset: Int) -> Int8 { load(fromByteOffset: offset, as: Int8.self) }

    /// The little-endian u16 at `offset`.
    @inline(__always)
    func u16(_ offset: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }

    /// The little-endian u32 at `offset`.
    @inline(__always)
    func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }

    /// The f16 at `offset`, widened to f32 (exact).
    @inline(__always)
    func f16(_ offset: Int) -> Float { widenF16(u16(offset)) }

    /// The little-endian f32 at `offset`.
    @inline(__always)
    func f32(_ offset: Int) -> Float { Float(bitPattern: u32(offset)) }
}

extension UnsafeMutableRawPointer {
    /// Stores `value` as a little-endian f16 (rounded to nearest even) at `offset`.
    @inline(__always)
    func storeF16(_ value: Float, at offset: Int) {
        storeBytes(of: Half.f16Bits(value).littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    func storeU8(_ value: UInt8, at offset: Int) { storeBytes(of: value, toByteOffset: offset, as: UInt8.self) }
}

/// IEEE f16 bits → f32, exactly as `Half.f32(f16Bits:)` (NaN payloads kept), written with selects
/// instead of branches so that loops over many halves vectorize.
@inline(__always)
func widenF16(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let magnitude = UInt32(h & 0x7FFF)
    let normal = (magnitude << 13) &+ 0x3800_0000  // exponent rebiased by 127 - 15
    let special = normal &+ 0x3800_0000  // exponent 31 (inf, NaN) → 255
    let subnormal = (Float(magnitude) * 0x1p-24).bitPattern  // exact: mantissa × 2^-24
    let bits = magnitude >= 0x7C00 ? special : (magnitude < 0x0400 ? subnormal : normal)
    return Float(bitPattern: bits | sign)
}

/// C's float → integer conversion as x86 performs it (truncation toward zero; NaN and values
/// outside the Int32 range give Int32.min). The reference quantizers then keep the low bits, as a
/// cast to `int8_t`/`uint8_t` does; in-range values are the only ones that occur with finite input.
@inline(__always)
func truncatingToInt32(_ x: Float) -> Int32 {
    guard x > -2_147_483_904, x < 2_147_483_648 else { return .min }  // NaN fails both comparisons
    return Int32(x)
}

/// `roundf(x)` (halves away from zero) converted to an integer as `truncatingToInt32` does, without
/// a libm call: truncate, then step away from zero when the dropped fraction is at least one half
/// (the fraction x - trunc(x) is exact in f32).
@inline(__always)
func roundedAwayToInt32(_ x: Float) -> Int32 {
    guard x > -2_147_483_904, x < 2_147_483_648 else { return .min }
    let t = Int32(x)
    let r = x - Float(t)
    return r >= 0.5 ? t &+ 1 : (r <= -0.5 ? t &- 1 : t)
}

/// `(int8_t)x` in the reference C: truncate to an integer, keep its low 8 bits.
@inline(__always)
func cInt8(_ x: Float) -> Int8 { Int8(truncatingIfNeeded: truncatingToInt32(x)) }
