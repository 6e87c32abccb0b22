import Foundation
import TensorGraph
import XCTest

/// The files of golden/quants/ (made by golden/make_quant_golden.py from gguf-py), found from this
/// file's path.
enum Golden {
    static let dir: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("golden/quants")

    /// Every type the golden data covers, by its ggml name (the file prefix).
    static let types = [
        "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
        "IQ4_NL", "IQ4_XS", "MXFP4", "NVFP4", "TQ1_0", "TQ2_0",
    ]

    static func bytes(_ file: String) throws -> [UInt8] {
        let url = dir.appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw NSError(
                domain: "Golden", code: 1, userInfo: [NSLocalizedDescriptionKey: "missing golden file \(url.path)"])
        }
        return [UInt8](data)
    }

    /// A little-endian f32 file as floats.
    static func floats(_ file: String) throws -> [Float] {
        let b = try bytes(file)
        precondition(b.count % 4 == 0, "\(file) is not whole f32s")
        return (0..<b.count / 4).map { i in
            Float(
                bitPattern: UInt32(b[4 * i]) | UInt32(b[4 * i + 1]) << 8 | UInt32(b[4 * i + 2]) << 16
                    | UInt32(b[4 * i + 3]) << 24)
        }
    }

    static func blocks(_ type: String) throws -> [UInt8] { try bytes("\(type).blocks.bin") }
    static func expected(_ type: String) throws -> [Float] { try floats("\(type).f32.bin") }
    static func input(_ type: String) throws -> [Float] { try floats("\(type).input.bin") }
}

/// Compares floats by bit pattern; on a mismatch fails once, naming the first differing block and
/// value, and how many differ.
func assertBitsEqual(
    _ got: [Float], _ expected: [Float], blockSize: Int, _ what: String, file: StaticString = #filePath,
    line: UInt = #line
) {
    guard got.count == expected.count else {
        XCTFail("\(what): \(got.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var first: Int?
    var differing = 0
    for i in 0..<got.count where got[i].bitPattern != expected[i].bitPattern {
        differing += 1
        if first == nil { first = i }
    }
    if let i = first {
        let hex = { (f: Float) in String(f.bitPattern, radix: 16) }
        XCTFail(
            "\(what): \(differing) of \(got.count) values differ; first in block \(i / blockSize) (value \(i % blockSize)):"
                + " got \(got[i]) (0x\(hex(got[i]))), expected \(expected[i]) (0x\(hex(expected[i])))",
            file: file, line: line)
    }
}

/// Bytes as hex, for messages.
func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// A small deterministic generator (xorshift64*), so random tests repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }

    /// A standard normal sample (Box-Muller).
    mutating func normal() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}
