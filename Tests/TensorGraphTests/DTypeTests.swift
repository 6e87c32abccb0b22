import TensorGraph
import XCTest

final class DTypeTests: XCTestCase {
    func testEveryTypeHasATableRow() {
        for t in DType.allCases {
            XCTAssertNotNil(DType.table[t], "\(t) missing from the table")
            XCTAssertGreaterThan(t.blockSize, 0)
            XCTAssertGreaterThan(t.bytesPerBlock, 0)
        }
        XCTAssertEqual(DType.table.count, DType.allCases.count)
    }

    func testNamesRoundTrip() {
        for t in DType.allCases {
            if let s = t.info.safetensorsName { XCTAssertEqual(DType(safetensorsName: s), t) }
            if let g = t.info.ggmlType { XCTAssertEqual(DType(ggmlType: g), t) }
            XCTAssertEqual(DType(name: t.rawValue), t)
        }
        XCTAssertEqual(DType(name: "BF16"), .bf16)
        XCTAssertEqual(DType(name: "Q4_K"), .q4_K)
        XCTAssertNil(DType(name: "f12"))
    }

    func testByteCounts() throws {
        XCTAssertEqual(try DType.f32.byteCount(shape: [3, 4]), 48)
        XCTAssertEqual(try DType.bf16.byteCount(shape: []), 2)
        XCTAssertEqual(try DType.f16.byteCount(shape: [0, 7]), 0)
        XCTAssertEqual(try DType.q4_0.byteCount(shape: [2, 64]), 2 * 2 * 18)
        XCTAssertEqual(try DType.q6_K.byteCount(shape: [256]), 210)
    }

    func testOverflowIsAnError() {
        XCTAssertThrowsError(try DType.f32.byteCount(shape: [1 << 40, 1 << 30])) { e in
            XCTAssertEqual(e as? ShapeError, .overflow(shape: [1 << 40, 1 << 30], dtype: nil))
        }
        // The element count fits, the byte count does not.
        XCTAssertThrowsError(try DType.f64.byteCount(shape: [1 << 61])) { e in
            XCTAssertEqual(e as? ShapeError, .overflow(shape: [1 << 61], dtype: .f64))
        }
        XCTAssertThrowsError(try DType.f32.byteCount(shape: [2, -1]))
    }

    func testBlockTypesNeedAlignedRows() {
        XCTAssertThrowsError(try DType.q8_0.byteCount(shape: [4, 33])) { e in
            XCTAssertTrue("\(e)".contains("not a multiple of Q8_0's block size 32"), "\(e)")
        }
    }

    func testTensorChecksStorageSize() {
        XCTAssertThrowsError(try Tensor(name: "w", dtype: .f32, shape: [2, 2], storage: MemoryStorage([0, 0, 0]))) { e in
            XCTAssertTrue("\(e)".contains("tensor 'w': F32 [2, 2] needs 16 bytes, its storage has 3"), "\(e)")
        }
    }

    func testDuplicateNamesRejected() throws {
        let t = try Tensor(name: "a", dtype: .u8, shape: [1], storage: MemoryStorage([1]))
        XCTAssertThrowsError(try TensorGraph(tensors: [t, t]))
    }
}
