import Foundation
import Quantization
import TensorGraph
import XCTest

/// Decode and encode speed. Skipped unless QUANT_BENCH is set; meaningful in a release build:
///
///     QUANT_BENCH=1 swift test -c release --filter ThroughputTests
final class ThroughputTests: XCTestCase {
    static let values = 1 << 24  // 16 Mi values: 64 MiB of f32 per run

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

    func testThroughput() throws {
        guard ProcessInfo.processInfo.environment["QUANT_BENCH"] != nil else {
            throw XCTSkip("set QUANT_BENCH=1 (and build with -c release) to measure throughput")
        }
        var out = [Float](repeating: 0, count: Self.values)
        let mb = 1e6
        for name in ["Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q2_K", "Q3_K", "IQ4_NL", "MXFP4", "F16", "BF16"] {
            let dtype = DType(name: name)!
            let golden = try Golden.blocks(name)
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
            let parallel = try seconds {
                try src.withUnsafeBytes { s in
                    try out.withUnsafeMutableBufferPointer { try Dequantize.toF32(dtype, s, into: $0) }
                }
            }
            let line = String(
                format:
                    "decode %-6@ 1 thread: %7.0f MB/s in, %6.0f Mvalues/s (%5.0f MB/s f32 out) | all cores: %7.0f MB/s in, %6.0f Mvalues/s",
                name, Double(src.count) / single / mb, Double(Self.values) / single / 1e6,
                Double(Self.values * 4) / single / mb,
                Double(src.count) / parallel / mb, Double(Self.values) / parallel / 1e6)
            print(line)
        }
        var rng = SeededGenerator(seed: 1)
        let x = (0..<Self.values).map { _ in rng.normal() }
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
            let parallel = try seconds {
                try x.withUnsafeBufferPointer { s in
                    try dst.withUnsafeMutableBytes { try Quantize.rows(dtype, s, into: $0) }
                }
            }
            print(
                String(
                    format: "encode %-6@ 1 thread: %7.0f MB/s f32 in, %6.0f Mvalues/s | all cores: %7.0f MB/s f32 in",
                    dtype.displayName, Double(Self.values * 4) / single / mb, Double(Self.values) / single / 1e6,
                    Double(Self.values * 4) / parallel / mb))
        }
        // The lazy path: a whole Q4_K tensor read through `dequantized()`.
        let name = "Q4_K"
        let golden = try Golden.blocks(name)
        let rows = Self.values / 256 / 12
        let bytes = [[UInt8]](repeating: golden, count: rows).flatMap { $0 }
        let t = try Tensor(name: "w", dtype: .q4_K, shape: [rows * 12, 256], storage: MemoryStorage(bytes))
            .dequantized()
        let lazy = try seconds {
            try out.withUnsafeMutableBytes {
                try t.storage.read(offset: 0, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<t.byteCount]))
            }
        }
        print(
            String(
                format: "lazy Q4_K dequantized() read: %.0f MB/s in, %.0f Mvalues/s", Double(bytes.count) / lazy / mb,
                Double(t.byteCount / 4) / lazy / 1e6))
    }
}
