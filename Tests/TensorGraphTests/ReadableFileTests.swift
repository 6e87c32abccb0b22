import Foundation
import TensorGraph
import TestSupport
import XCTest

/// A file that shrinks while it is open: `pread` reads and mapped reads both end in an error
/// naming the file, never in SIGBUS.
final class ReadableFileTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("readable-file") }
    override func tearDown() { if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) } }

    func makeFile(_ size: Int) -> String {
        let path = "\(dir)/f.bin"
        FileManager.default.createFile(atPath: path, contents: Data(repeating: 0xAB, count: size))
        return path
    }

    func testPreadPastAShrunkEndNamesTheFileAndOffset() throws {
        let path = makeFile(1 << 20)
        let f = try ReadableFile(path: path)
        XCTAssertEqual(truncate(path, 1000), 0)
        var buf = [UInt8](repeating: 0, count: 4096)
        XCTAssertThrowsError(try buf.withUnsafeMutableBytes { try f.read(at: 512 << 10, into: $0) }) { e in
            guard case let .shrank(file, offset, wanted, size, openedSize)? = e as? StorageError else { return XCTFail("\(e)") }
            XCTAssertEqual(file, path)
            XCTAssertEqual(offset, 512 << 10)
            XCTAssertEqual(wanted, 4096)
            XCTAssertEqual(size, 1000)
            XCTAssertEqual(openedSize, 1 << 20)
            XCTAssertTrue("\(e)".contains("at offset \(512 << 10)"), "\(e)")
        }
    }

    func testMappingNeedsPermission() throws {
        let f = try ReadableFile(path: makeFile(100))
        XCTAssertThrowsError(try f.mapped())
        f.permitMapping()
        XCTAssertEqual(try f.mapped().count, 100)
    }

    /// Without the SIGBUS guard this test process would die on the read below.
    func testMappedReadPastAShrunkEndReadsZerosThenFails() throws {
        let path = makeFile(1 << 20)
        let f = try ReadableFile(path: path)
        f.permitMapping()
        let m = try f.mapped()
        XCTAssertEqual(m[700 << 10], 0xAB)
        try f.checkNotShrunk(below: 1 << 20)
        XCTAssertEqual(truncate(path, 1000), 0)
        XCTAssertEqual(m[900 << 10], 0, "a page past the new end reads as zeros")
        XCTAssertThrowsError(try f.checkNotShrunk(below: 1)) { e in
            guard case .shrank? = e as? StorageError else { return XCTFail("\(e)") }
        }
    }
}
