import Codecs
import XCTest

final class ZstdTests: XCTestCase {
    func testRoundTrip() throws {
        let input: [UInt8] = (0..<100_000).map { UInt8(truncatingIfNeeded: ($0 * 7) ^ ($0 >> 5)) }
        let packed = try input.withUnsafeBytes { try Zstd.compress($0, level: 3) }
        XCTAssertLessThan(packed.count, input.count / 4, "regular data should compress")
        var out = [UInt8](repeating: 0, count: input.count)
        try packed.withUnsafeBytes { p in try out.withUnsafeMutableBytes { try Zstd.decompress(p, into: $0) } }
        XCTAssertEqual(out, input)
    }

    func testWrongDeclaredSizeIsAnError() throws {
        let input = [UInt8](repeating: 42, count: 4096)
        let packed = try input.withUnsafeBytes { try Zstd.compress($0) }
        var small = [UInt8](repeating: 0, count: 100)
        XCTAssertThrowsError(try packed.withUnsafeBytes { p in try small.withUnsafeMutableBytes { try Zstd.decompress(p, into: $0) } })
        var garbage: [UInt8] = [1, 2, 3, 4, 5]
        XCTAssertThrowsError(try garbage.withUnsafeBytes { p in try small.withUnsafeMutableBytes { try Zstd.decompress(p, into: $0) } })
        garbage.removeAll()
    }
}
