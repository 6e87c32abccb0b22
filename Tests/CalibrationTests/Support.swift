import Foundation
import TensorGraph
import TestSupport
import XCTest

/// Test data helpers: golden files, f32 tensors, seeded random numbers.
enum Fixtures {
    static func bytes(_ relative: String) throws -> [UInt8] {
        let path = TestSupport.path(relative)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NSError(domain: "Fixtures", code: 1, userInfo: [NSLocalizedDescriptionKey: "missing \(path)"])
        }
        return [UInt8](data)
    }

    static func floats(_ bytes: [UInt8]) -> [Float] {
        (0..<bytes.count / 4).map { i in
            Float(bitPattern: UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16
                | UInt32(bytes[4 * i + 3]) << 24)
        }
    }

    static func le(_ values: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    static func f32Tensor(_ name: String, shape: [Int], _ values: [Float]) throws -> Tensor {
        try Tensor(name: name, dtype: .f32, shape: shape, storage: MemoryStorage(le(values)))
    }

    static func read(_ t: Tensor) throws -> [UInt8] { try t.storage.readAll() }
}

/// A small deterministic generator (SplitMix64) with normal deviates.
struct SeededRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-12), u2 = uniform()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}

import Architectures
import Tokenizers

/// Text → token ids with a model's tokenizer (as the CLI tokenizes calibration text).
enum BPEText {
    static func tokens(_ text: String, graph: TensorGraph) throws -> [Int32] {
        let tokenizer = try BPETokenizer(tokenizer: TokenizerJSON.tokenizer(of: graph))
        return tokenizer.encode(utf8: Array(text.utf8), parseSpecial: false)
    }
}
