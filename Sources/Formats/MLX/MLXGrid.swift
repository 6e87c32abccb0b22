import TensorGraph

/// One MLX quantization grid (`mx.quantize`): `affine` (each group of `groupSize` values along a
/// row is `scale × q + bias`, q an unsigned `bits`-bit integer; scales and biases in the model's
/// float type) or `mxfp4` (groups of 32 E2M1 values sharing an E8M0 scale byte, no biases).
/// Codes are packed into uint32 words from the least significant bit up, as one continuous bit
/// stream per row (so 3-, 5- and 6-bit codes straddle words): a row of `n` values takes
/// `n × bits / 32` words.
public struct MLXGrid: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Mode: String, Sendable { case affine, mxfp4 }
    public var mode: Mode
    public var bits: Int
    public var groupSize: Int

    public init(mode: Mode = .affine, bits: Int, groupSize: Int) {
        self.mode = mode
        self.bits = bits
        self.groupSize = groupSize
    }

    /// The bit widths MLX's affine mode packs.
    public static let affineBits: Set<Int> = [1, 2, 3, 4, 5, 6, 8]
    /// `mlx_lm.convert -q`'s defaults.
    public static let defaultAffine = MLXGrid(bits: 4, groupSize: 64)
    public static let mxfp4 = MLXGrid(mode: .mxfp4, bits: 4, groupSize: 32)

    public var description: String {
        mode == .affine ? "mlx affine \(bits)-bit g\(groupSize)" : "mlx mxfp4"
    }

    /// The entry `config.json`'s `"quantization"` holds for this grid.
    var configEntries: [(String, JSONValue)] {
        [("group_size", .int(groupSize)), ("bits", .int(bits)), ("mode", .string(mode.rawValue))]
    }

    /// A grid from a `"quantization"` object (global or one layer's); `fallback` fills what it
    /// leaves out.
    static func parse(_ json: JSONValue, fallback: MLXGrid?, context: String) throws(FlavourError) -> MLXGrid {
        let modeName = json["mode"]?.stringValue ?? fallback?.mode.rawValue ?? "affine"
        guard let mode = Mode(rawValue: modeName) else {
            throw .badConfig(reason: "\(context): quantization mode '\(Echo.value(modeName))' is not supported (affine, mxfp4)")
        }
        let defaults = mode == .mxfp4 ? MLXGrid.mxfp4 : (fallback ?? .defaultAffine)
        let bits = json["bits"]?.intValue ?? defaults.bits
        let group = json["group_size"]?.intValue ?? defaults.groupSize
        let grid = MLXGrid(mode: mode, bits: bits, groupSize: group)
        try grid.check(context: context)
        return grid
    }

    /// Whether the grid is one MLX can hold.
    func check(context: String) throws(FlavourError) {
        switch mode {
        case .affine:
            guard MLXGrid.affineBits.contains(bits) else {
                throw .badConfig(reason: "\(context): \(bits) bits is not an MLX affine width (1, 2, 3, 4, 5, 6, 8)")
            }
        case .mxfp4:
            guard bits == 4, groupSize == 32 else {
                throw .badConfig(reason: "\(context): mxfp4 needs 4 bits and groups of 32, not \(bits) bits, groups of \(groupSize)")
            }
        }
        guard groupSize > 0 else { throw .badConfig(reason: "\(context): group size \(groupSize) is not positive") }
    }

    /// The largest code.
    var maxCode: Int { (1 << bits) - 1 }
}

/// The bit stream of one row: codes in, codes out (LSB first).
enum MLXBits {
    /// Unpacks `count` codes of `bits` bits from `src` into `dst`.
    static func unpack(_ src: UnsafeRawPointer, bits: Int, count: Int, into dst: UnsafeMutablePointer<UInt8>) {
        let mask = UInt32((1 << bits) - 1)
        switch bits {
        case 8:
            for i in 0..<count { dst[i] = src.load(fromByteOffset: i, as: UInt8.self) }
        case 4:
            for i in 0..<count {
                let b = src.load(fromByteOffset: i >> 1, as: UInt8.self)
                dst[i] = i & 1 == 0 ? b & 0x0F : b >> 4
            }
        default:
            var acc: UInt32 = 0, have = 0, at = 0
            for i in 0..<count {
                while have < bits {
                    acc |= UInt32(src.load(fromByteOffset: at, as: UInt8.self)) << UInt32(have)
                    at += 1
                    have += 8
                }
                dst[i] = UInt8(truncatingIfNeeded: acc & mask)
                acc >>= UInt32(bits)
                have -= bits
            }
        }
    }

    /// Packs `count` codes (each below 2^bits) into `(count × bits + 7) / 8` bytes at `dst`.
    static func pack(_ src: UnsafePointer<UInt8>, bits: Int, count: Int, into dst: UnsafeMutablePointer<UInt8>) {
        var acc: UInt32 = 0, have = 0, at = 0
        for i in 0..<count {
            acc |= UInt32(src[i]) << UInt32(have)
            have += bits
            while have >= 8 {
                dst[at] = UInt8(truncatingIfNeeded: acc)
                at += 1
                acc >>= 8
                have -= 8
            }
        }
        if have > 0 { dst[at] = UInt8(truncatingIfNeeded: acc) }
    }
}

/// The E2M1 values of the 16 fp4 codes (sign in bit 3; code 8, "−0", decodes to +0 as ggml's
/// MXFP4 table has it).
let mlxFP4Values: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6]

/// 2^(e − 127) for an E8M0 byte (255 is NaN).
@inline(__always)
func e8m0Value(_ e: UInt8) -> Float {
    e == 255 ? .nan : Float(sign: .plus, exponent: Int(e) - 127, significand: 1)
}
