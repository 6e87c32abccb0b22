import Foundation
import Quantization
import TensorGraph
import XCTest

final class LazyTensorTests: XCTestCase {
    /// The golden blocks of `name` as a tensor of shape [blocks, block size].
    func goldenTensor(_ name: String, storage: (([UInt8]) throws -> any TensorStorage)? = nil) throws -> Tensor {
        let dtype = DType(name: name)!
        let blocks = try Golden.blocks(name)
        let s = try storage?(blocks) ?? MemoryStorage(blocks)
        return try Tensor(
            name: "golden.\(name)", dtype: dtype, shape: [blocks.count / dtype.bytesPerBlock, dtype.blockSize],
            storage: s)
    }

    /// Expected bytes of the golden values in `target` (f32 as is; f16/bf16 rounded to nearest even).
    func expectedBytes(_ name: String, _ target: DType) throws -> [UInt8] {
        let values = try Golden.expected(name)
        var out: [UInt8] = []
        for v in values {
            switch target {
            case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
            case .f16: withUnsafeBytes(of: Half.f16Bits(v).littleEndian) { out += $0 }
            default: withUnsafeBytes(of: Half.bf16Bits(v).littleEndian) { out += $0 }
            }
        }
        return out
    }

    func read(_ t: Tensor, _ offset: Int, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: count)
        try out.withUnsafeMutableBytes { try t.storage.read(offset: offset, into: $0) }
        return out
    }

    /// Reads at ranges that start and end inside blocks and inside elements equal the full decode.
    func testOddRangesEqualTheFullDecode() throws {
        for name in ["Q4_K", "Q4_1", "Q6_K", "NVFP4"] {
            for target in [DType.f32, .f16, .bf16] {
                let t = try goldenTensor(name).dequantized(to: target)
                XCTAssertEqual(t.dtype, target)
                let full = try expectedBytes(name, target)
                XCTAssertEqual(t.byteCount, full.count)
                XCTAssertEqual(try t.storage.readAll(), full, "\(name) → \(target.displayName) full read")
                let n = full.count
                let ranges = [
                    (0, 1), (1, 3), (3, 1021), (1023, n - 2050), (n / 2 - 7, 13), (n - 3, 3), (5, n - 9), (n - 1, 1),
                    (7, 0),
                ]
                for (offset, count) in ranges {
                    XCTAssertEqual(
                        try read(t, offset, count), Array(full[offset..<offset + count]),
                        "\(name) → \(target.displayName) bytes \(offset)..<\(offset + count)")
                }
            }
        }
    }

    /// A file-backed source (mapped, at an odd file offset) decodes the same.
    func testMappedSourceAtOddFileOffset() throws {
        let name = "Q5_K"
        let blocks = try Golden.blocks(name)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("quant-\(UUID()).bin").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3] + blocks + [4]))
        let file = try ReadableFile(path: path)
        let t = try goldenTensor(name) { b in FileRegion(file: file, offset: 3, byteCount: b.count) }.dequantized()
        let full = try expectedBytes(name, .f32)
        XCTAssertEqual(try t.storage.readAll(), full)
        XCTAssertEqual(try read(t, 1001, 2999), Array(full[1001..<4000]))
    }

    /// A read large enough to be split over cores equals the golden values repeated.
    func testLargeRead() throws {
        let name = "Q8_0"
        let blocks = try Golden.blocks(name)
        let repeats = 200  // 200 × 48 blocks × 32 = 307200 values
        let big = [[UInt8]](repeating: blocks, count: repeats).flatMap { $0 }
        let t = try Tensor(name: "big", dtype: .q8_0, shape: [repeats * 48, 32], storage: MemoryStorage(big))
            .dequantized()
        let one = try expectedBytes(name, .f32)
        let all = try t.storage.readAll()
        XCTAssertEqual(all.count, one.count * repeats)
        var bad = 0
        for i in 0..<all.count where all[i] != one[i % one.count] { bad += 1 }
        XCTAssertEqual(bad, 0, "bytes differing in a parallel lazy read")
        let offset = 12_345, count = all.count - 2 * offset - 1
        XCTAssertEqual(try read(t, offset, count), Array(all[offset..<offset + count]))
    }

    func testUnsupportedTypeNamesTensorAndType() throws {
        let t = try Tensor(
            name: "x", dtype: .iq2_XXS, shape: [256], storage: MemoryStorage([UInt8](repeating: 0, count: 66)))
        XCTAssertThrowsError(try t.dequantized()) { e in
            XCTAssertEqual(e as? QuantizationError, .cannotDequantize(tensor: "x", dtype: .iq2_XXS))
            XCTAssertEqual("\(e)", "cannot dequantize tensor 'x': type IQ2_XXS is not supported")
        }
        let q = try goldenTensor("Q4_0")
        XCTAssertThrowsError(try q.dequantized(to: .q8_0)) { e in
            XCTAssertEqual(e as? QuantizationError, .badDequantizeTarget(tensor: "golden.Q4_0", target: .q8_0))
        }
    }

    /// Plain float tensors go through `cast`; same type is the tensor itself.
    func testPlainFloatSources() throws {
        let values: [Float] = [1, -2.5, 3.25, 65504, 1e-8]
        let bytes = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let t = try Tensor(name: "p", dtype: .f32, shape: [5], storage: MemoryStorage(bytes))
        XCTAssertEqual(try t.dequantized().storage.readAll(), bytes)
        let h = try t.dequantized(to: .f16)
        XCTAssertEqual(h.dtype, .f16)
        let back = try h.dequantized(to: .f32).storage.readAll()
        XCTAssertEqual(back.count, 20)
    }
}
