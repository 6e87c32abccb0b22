import Codecs
import XCTest

/// The reusable zstd contexts: parameter sets, one-frame exact-size decoding and its errors.
final class ZstdContextTests: XCTestCase {
    let data: [UInt8] = (0..<200_000).map { UInt8(truncatingIfNeeded: ($0 * 7) ^ ($0 >> 6)) }

    func compress(_ input: [UInt8], _ p: ZstdParameters, capacity: Int? = nil) throws -> [UInt8]? {
        let c = ZstdCompressor()
        var out = [UInt8](repeating: 0, count: capacity ?? input.count + 1024)
        let n = try input.withUnsafeBytes { i in try out.withUnsafeMutableBytes { try c.compress(i, into: $0, parameters: p) } }
        return n.map { Array(out.prefix($0)) }
    }

    func decompress(_ frame: [UInt8], size: Int) throws(ZstdFrameError) -> [UInt8] {
        let d = ZstdDecompressor()
        var out = [UInt8](repeating: 0, count: size)
        var failure: ZstdFrameError?
        frame.withUnsafeBytes { f in
            out.withUnsafeMutableBytes { o in
                do throws(ZstdFrameError) { try d.decompress(f, into: o) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }

    func testParameterSetsRoundTrip() throws {
        for p in [ZstdParameters(level: 3), ZstdParameters(level: -3), ZstdParameters(level: 19), .literals] {
            let frame = try XCTUnwrap(try compress(data, p))
            XCTAssertLessThan(frame.count, data.count, "\(p)")
            XCTAssertEqual(try decompress(frame, size: data.count), data, "\(p)")
        }
    }

    /// One context reused with changing parameters gives the same frames as fresh contexts.
    func testContextReuse() throws {
        let c = ZstdCompressor()
        for p in [ZstdParameters.literals, ZstdParameters(level: 5), .literals] {
            var out = [UInt8](repeating: 0, count: data.count)
            let n = try data.withUnsafeBytes { i in try out.withUnsafeMutableBytes { try c.compress(i, into: $0, parameters: p) } }
            XCTAssertEqual(Array(out.prefix(n!)), try compress(data, p))
        }
    }

    func testOutputTooSmallIsNil() throws {
        let noise = (0..<10_000).map { i in UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 13) }
        XCTAssertNil(try compress(noise, .literals, capacity: 100))
    }

    func testDecodingErrors() throws {
        let frame = try XCTUnwrap(try compress(data, ZstdParameters(level: 3)))
        XCTAssertThrowsError(try decompress(frame, size: data.count - 1)) { e in
            XCTAssertEqual(e as? ZstdFrameError, .declaredSize(declared: UInt64(data.count), expected: data.count - 1))
        }
        XCTAssertThrowsError(try decompress(frame + frame, size: data.count)) { e in
            XCTAssertEqual(e as? ZstdFrameError, .trailingBytes(frame: frame.count, input: 2 * frame.count))
        }
        XCTAssertThrowsError(try decompress([1, 2, 3, 4, 5, 6], size: 10)) { e in
            XCTAssertEqual(e as? ZstdFrameError, .notAFrame("no valid zstd frame header"))
        }
        var unsized = ZstdParameters(level: 3)
        unsized.contentSize = false
        let open = try XCTUnwrap(try compress(data, unsized))
        XCTAssertEqual(try decompress(open, size: data.count), data)
        XCTAssertThrowsError(try decompress(open, size: 1000)) { e in
            XCTAssertEqual(e as? ZstdFrameError, .expands(limit: 1000))
        }
        XCTAssertThrowsError(try decompress(open, size: data.count + 5)) { e in
            XCTAssertEqual(e as? ZstdFrameError, .shortOutput(got: data.count, expected: data.count + 5))
        }
        // Frames carry no content checksum (Ingot checksums the stored bytes itself): a damaged
        // literal byte decodes, to different bytes.
        var corrupt = frame
        corrupt[corrupt.count / 2] ^= 0xFF
        if let out = try? decompress(corrupt, size: data.count) { XCTAssertNotEqual(out, data) }
    }
}
