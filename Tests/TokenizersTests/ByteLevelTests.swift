import XCTest

@testable import Tokenizers

final class ByteLevelTests: XCTestCase {
    func testMappingIsGPT2s() {
        XCTAssertEqual(ByteLevel.characters[0x20], "\u{120}")  // Ġ
        XCTAssertEqual(ByteLevel.characters[0x0A], "\u{10A}")  // Ċ
        XCTAssertEqual(ByteLevel.characters[0x41], "A")
        XCTAssertEqual(ByteLevel.characters[0xAD], "\u{143}")  // soft hyphen, the last unprintable
        XCTAssertEqual(ByteLevel.characters[0xFF], "\u{FF}")
        XCTAssertEqual(Set(ByteLevel.characters).count, 256)
        for b in 0..<256 {
            XCTAssertEqual(ByteLevel.byte(for: ByteLevel.characters[b]), UInt8(b))
        }
        let all = (0..<256).map(UInt8.init)
        XCTAssertEqual(ByteLevel.decode(ByteLevel.encode(all)), all)
    }
}
