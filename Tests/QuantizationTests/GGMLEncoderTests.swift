import Foundation
@testable import Quantization
import TensorGraph
import XCTest

/// Every encoder against llama.cpp's own bytes (golden/quants/ggml, made by
/// golden/make_kquant_golden.py through ggml_quantize_chunk of llama.cpp 3f545bec): without an
/// importance matrix (`Quantize.rows`) and with one (`Quantize.weightedRows`), byte for byte.
final class GGMLEncoderTests: XCTestCase {
    static let rows = 8, cols = 512
    static let types: [DType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .iq4_XS, .mxfp4]

    func input() throws -> (x: [Float], importance: [Float]) {
        let x = try Golden.floats("ggml/rows.f32.bin")
        let importance = try Golden.floats("ggml/importance.f32.bin")
        XCTAssertEqual(x.count, Self.rows * Self.cols)
        XCTAssertEqual(importance.count, Self.cols)
        return (x, importance)
    }

    /// The first differing block, with its row and position, or nil.
    func firstDifference(_ got: [UInt8], _ expected: [UInt8], _ t: DType) -> String? {
        guard got.count == expected.count else { return "\(got.count) bytes, expected \(expected.count)" }
        guard let i = (0..<got.count).first(where: { got[$0] != expected[$0] }) else { return nil }
        let b = i / t.bytesPerBlock
        let perRow = Self.cols / t.blockSize
        let range = b * t.bytesPerBlock..<(b + 1) * t.bytesPerBlock
        let differing = stride(from: 0, to: got.count, by: t.bytesPerBlock).filter {
            got[$0..<$0 + t.bytesPerBlock] != expected[$0..<$0 + t.bytesPerBlock]
        }.count
        return "\(differing) of \(got.count / t.bytesPerBlock) blocks differ; first: row \(b / perRow) block \(b % perRow), "
            + "byte \(i - range.lowerBound)\n got      \(hex(got[range]))\n expected \(hex(expected[range]))"
    }

    func testEncodersMatchLlamaCpp() throws {
        let (x, _) = try input()
        XCTAssertEqual(Set(Quantize.supportedTypes), Set(Self.types))
        for t in Self.types {
            let expected = try Golden.bytes("ggml/\(t.displayName).bin")
            let got = try x.withUnsafeBufferPointer { try Quantize.rows(t, $0) }
            if let d = firstDifference(got, expected, t) { XCTFail("\(t.displayName) without importance: \(d)") }
        }
    }

    func testWeightedEncodersMatchLlamaCpp() throws {
        let (x, importance) = try input()
        for t in Self.types {
            let expected = try Golden.bytes("ggml/\(t.displayName).imatrix.bin")
            var got = [UInt8](repeating: 0, count: expected.count)
            try x.withUnsafeBufferPointer { src in
                try importance.withUnsafeBufferPointer { imp in
                    try got.withUnsafeMutableBytes { out in
                        try Quantize.weightedRows(
                            t, src.baseAddress!, rows: Self.rows, rowLength: Self.cols, importance: imp.baseAddress!,
                            into: out.baseAddress!)
                    }
                }
            }
            if let d = firstDifference(got, expected, t) { XCTFail("\(t.displayName) with importance: \(d)") }
        }
    }

    /// The golden rows are worth something only if the importance changes the bytes (except
    /// for Q8_0 and MXFP4, where ggml ignores it).
    func testImportanceChangesTheGoldenBytes() throws {
        for t in Self.types {
            let plain = try Golden.bytes("ggml/\(t.displayName).bin")
            let weighted = try Golden.bytes("ggml/\(t.displayName).imatrix.bin")
            if t == .q8_0 || t == .mxfp4 { XCTAssertEqual(plain, weighted) } else { XCTAssertNotEqual(plain, weighted, t.displayName) }
        }
    }

    /// Each codec's field offsets against `DType.table`'s layout, and every registered type's sizes.
    func testDescriptorsMatchTheDTypeTable() {
        for codec in BlockTypes.registry {
            let t = codec.dtype
            XCTAssertEqual(codec.elements, t.blockSize, t.displayName)
            XCTAssertEqual(codec.bytes, t.bytesPerBlock, t.displayName)
            for (name, offset) in codec.fieldOffsets {
                XCTAssertEqual(t.info.offset(of: name), offset, "\(t.displayName).\(name)")
            }
            if t.isQuantized {
                XCTAssertEqual(Set(codec.fieldOffsets.keys), Set(t.info.fields.map(\.name)), "\(t.displayName) fields")
            }
        }
        for t in DType.allCases where t.isQuantized {
            XCTAssertEqual(t.info.fields.reduce(0) { $0 + $1.length }, t.bytesPerBlock, t.displayName)
        }
        // llama.cpp's vec_dot_type for the types it quantizes activations for.
        let activation: [DType: DType] = [
            .q4_0: .q8_0, .q4_1: .q8_1, .q5_0: .q8_0, .q5_1: .q8_1, .q8_0: .q8_0, .iq4_NL: .q8_0,
            .q2_K: .q8_K, .q3_K: .q8_K, .q4_K: .q8_K, .q5_K: .q8_K, .q6_K: .q8_K, .iq4_XS: .q8_K,
        ]
        for (t, a) in activation { XCTAssertEqual(BlockTypes.descriptor(t)?.activation, a, t.displayName) }
        XCTAssertEqual(
            BlockTypes.all.filter { $0.grid != nil }.map(\.dtype), [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0])
        // GPTQ rounds onto every type Smelt encodes: (block, group) sizes as ggml lays them out.
        let gptq: [DType: (Int, Int)] = [
            .q4_0: (32, 32), .q4_1: (32, 32), .q5_0: (32, 32), .q5_1: (32, 32), .q8_0: (32, 32), .iq4_NL: (32, 32),
            .q2_K: (256, 16), .q3_K: (256, 16), .q4_K: (256, 32), .q5_K: (256, 32), .q6_K: (256, 16), .iq4_XS: (256, 32),
        ]
        XCTAssertEqual(Set(BlockTypes.all.filter { $0.gptq != nil }.map(\.dtype)), Set(gptq.keys))
        for (t, (b, g)) in gptq {
            XCTAssertEqual(BlockTypes.descriptor(t)?.gptq?.blockSize, b, t.displayName)
            XCTAssertEqual(BlockTypes.descriptor(t)?.gptq?.groupSize, g, t.displayName)
        }
        XCTAssertEqual(BlockTypes.descriptor(.iq4_XS)?.gptq?.levels, .table([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]))
        XCTAssertEqual(BlockTypes.descriptor(.q6_K)?.gptq?.levels, .integers(lo: -32, hi: 31))
        XCTAssertNil(BlockTypes.descriptor(.iq2_XXS))
    }
}
