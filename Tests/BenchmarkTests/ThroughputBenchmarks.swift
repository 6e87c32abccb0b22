import Foundation
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// Decode and encode speed: a benchmark, run by `make bench` in a release build
/// (`swift test -c release --filter BenchmarkTests`) and left out of `make test`
/// (`--skip BenchmarkTests`). It also checks what it timed: every decoded value against the
/// golden file's (golden/quants, from gguf-py), and the multi-threaded encoders' bytes against the
/// single-threaded ones'. A debug build (a plain `swift test`) runs it on 16 times fewer values,
/// for the checks; its timings mean nothing.
final class ThroughputBenchmarks: XCTestCase {
    #if DEBUG
        static let values = 1 << 20
    #else
        static let values = 1 << 24  // 16 Mi values: 64 MiB of f32 per run
    #endif

    static func golden(_ file: String) throws -> [UInt8] {
        let path = try TestSupport.requireFile(TestSupport.path("golden/quants/\(file)"))
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<bytes.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    /// The best of three runs, in seconds.
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            let start = ContinuousClock.now
            try body()
            let d = ContinuousClock.now - start
            best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        return best
    }

    /// Fails unless `out[i]` has the bits of `expected[i % expected.count]` for every i.
    func assertRepeats(_ out: UnsafeBufferPointer<Float>, _ expected: [Float], _ what: String) {
        var bad = 0, first = -1
        for i in 0..<out.count where out[i].bitPattern != expected[i % expected.count].bitPattern {
            bad += 1
            if first < 0 { first = i }
        }
        XCTAssertEqual(bad, 0, "\(what): \(bad) of \(out.count) values differ from the golden file, first at \(first)")
    }

    func testDecodeThroughput() throws {
        var out = [Float](repeating: 0, count: Self.values)
        let mb = 1e6
        if Self.values < 1 << 24 { print("debug build: timings below are not meaningful (make bench runs a release build)") }
        for name in ["Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q2_K", "Q3_K", "IQ4_NL", "MXFP4", "F16", "BF16"] {
            let dtype = try XCTUnwrap(DType(name: name))
            let golden = try Self.golden("\(name).blocks.bin")
            let expected = Self.floats(try Self.golden("\(name).f32.bin"))
            XCTAssertEqual(golden.count / dtype.bytesPerBlock * dtype.blockSize, expected.count, name)
            let blocks = Self.values / dtype.blockSize
            var src = [UInt8]()
            src.reserveCapacity(blocks * dtype.bytesPerBlock)
            while src.count < blocks * dtype.bytesPerBlock { src += golden }
            src.removeLast(src.count - blocks * dtype.bytesPerBlock)
            let chunk = 1 << 16  // values per single-threaded call (below the parallel threshold)
            let single = try seconds {
                try src.withUnsafeBytes { s in
                    try out.withUnsafeMutableBufferPointer { d in
                        for v in stride(from: 0, to: Self.values, by: chunk) {
                            let b = v / dtype.blockSize, n = chunk / dtype.blockSize
                            try Dequantize.toF32(
                                dtype,
                                UnsafeRawBufferPointer(
                                    rebasing: s[b * dtype.bytesPerBlock..<(b + n) * dtype.bytesPerBlock]),
                                into: UnsafeMutableBufferPointer(rebasing: d[v..<v + chunk]))
                        }
                    }
                }
            }
            out.withUnsafeBufferPointer { assertRepeats($0, expected, "\(name) decoded on 1 thread") }
            out.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
            let parallel = try seconds {
                try src.withUnsafeBytes { s in
                    try out.withUnsafeMutableBufferPointer { try Dequantize.toF32(dtype, s, into: $0) }
                }
            }
            out.withUnsafeBufferPointer { assertRepeats($0, expected, "\(name) decoded on all cores") }
            print(String(
                format:
                    "decode %-6@ 1 thread: %7.0f MB/s in, %6.0f Mvalues/s (%5.0f MB/s f32 out) | all cores: %7.0f MB/s in, %6.0f Mvalues/s",
                name, Double(src.count) / single / mb, Double(Self.values) / single / 1e6,
                Double(Self.values * 4) / single / mb,
                Double(src.count) / parallel / mb, Double(Self.values) / parallel / 1e6))
        }

        // The lazy path: a whole Q4_K tensor read through `dequantized()`.
        let golden = try Self.golden("Q4_K.blocks.bin")
        let expected = Self.floats(try Self.golden("Q4_K.f32.bin"))
        let rows = Self.values / 256 / 12
        let bytes = [[UInt8]](repeating: golden, count: rows).flatMap { $0 }
        let t = try Tensor(name: "w", dtype: .q4_K, shape: [rows * 12, 256], storage: MemoryStorage(bytes))
            .dequantized()
        let lazy = try seconds {
            try out.withUnsafeMutableBytes {
                try t.storage.read(offset: 0, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<t.byteCount]))
            }
        }
        out.withUnsafeBufferPointer {
            assertRepeats(UnsafeBufferPointer(rebasing: $0[0..<t.byteCount / 4]), expected, "Q4_K through dequantized()")
        }
        print(String(
            format: "lazy Q4_K dequantized() read: %.0f MB/s in, %.0f Mvalues/s", Double(bytes.count) / lazy / mb,
            Double(t.byteCount / 4) / lazy / 1e6))
    }

    func testEncodeThroughput() throws {
        let mb = 1e6
        // Normal deviates from a fixed linear congruential sequence (Box-Muller), the same every run.
        var state: UInt64 = 1
        func uniform() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        let x = (0..<Self.values).map { _ in Float((-2 * Foundation.log(uniform())).squareRoot() * Foundation.cos(2 * .pi * uniform())) }
        for dtype in [DType.q8_0, .q4_0, .q4_1] {
            var dst = [UInt8](repeating: 0, count: Self.values / 32 * dtype.bytesPerBlock)
            let chunk = 1 << 16
            let single = try seconds {
                try x.withUnsafeBufferPointer { s in
                    try dst.withUnsafeMutableBytes { d in
                        for v in stride(from: 0, to: Self.values, by: chunk) {
                            let o = v / 32 * dtype.bytesPerBlock, n = chunk / 32 * dtype.bytesPerBlock
                            try Quantize.rows(
                                dtype, UnsafeBufferPointer(rebasing: s[v..<v + chunk]),
                                into: UnsafeMutableRawBufferPointer(rebasing: d[o..<o + n]))
                        }
                    }
                }
            }
            let singleBytes = dst
            dst = [UInt8](repeating: 0, count: dst.count)
            let parallel = try seconds {
                try x.withUnsafeBufferPointer { s in
                    try dst.withUnsafeMutableBytes { try Quantize.rows(dtype, s, into: $0) }
                }
            }
            XCTAssertTrue(dst == singleBytes, "\(dtype.displayName): all cores wrote other bytes than 1 thread")
            // The encoded values decode to within the type's rounding error of the input.
            let back = try dst.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
            var err = 0.0, sum = 0.0
            for i in 0..<Self.values { err += Double((back[i] - x[i]) * (back[i] - x[i])); sum += Double(x[i] * x[i]) }
            let relative = (err / sum).squareRoot()
            XCTAssertLessThan(relative, dtype == .q8_0 ? 0.01 : 0.15, "\(dtype.displayName) relative RMS error")
            print(String(
                format: "encode %-6@ 1 thread: %7.0f MB/s f32 in, %6.0f Mvalues/s | all cores: %7.0f MB/s f32 in (relative RMS error %.4f)",
                dtype.displayName, Double(Self.values * 4) / single / mb, Double(Self.values) / single / 1e6,
                Double(Self.values * 4) / parallel / mb, relative))
        }
    }
}
