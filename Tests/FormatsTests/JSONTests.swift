import Formats
import XCTest

final class JSONTests: XCTestCase {
    func testParsesAndKeepsOrder() throws {
        let v = try JSONParser.parse(#"{"b": [1, -2.5e3, true, null], "a": "x\u00e9\ud83d\ude00\n"}"#)
        XCTAssertEqual(v.objectEntries?.map(\.0), ["b", "a"])
        XCTAssertEqual(v["a"]?.stringValue, "xé😀\n")
        XCTAssertEqual(v["b"]?.arrayValue?[1].doubleValue, -2500)
        XCTAssertEqual(v["b"]?.arrayValue?[0].intValue, 1)
    }

    func testRejects() {
        for bad in [#"{"a": 1,}"#, #"{"a" 1}"#, "[1 2]", #""\x""#, "01", "1.", #"{"a": 1} x"#, #""\ud800""#, "nul"] {
            XCTAssertThrowsError(try JSONParser.parse(bad), bad)
        }
        XCTAssertThrowsError(try JSONParser.parse(#"{"k": 1, "k": 2}"#)) { e in
            XCTAssertEqual((e as? JSONError)?.duplicateKey, "k")
        }
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        XCTAssertThrowsError(try JSONParser.parse(deep)) { e in XCTAssertTrue("\(e)".contains("nesting deeper")) }
    }

    func testWriterRoundTrips() throws {
        let v = try JSONParser.parse(#"{"s": "q\"\\\u0001", "n": [1, 2.5, {}], "e": []}"#)
        XCTAssertEqual(try JSONParser.parse(JSONWriter.write(v)), v)
        XCTAssertEqual(try JSONParser.parse(JSONWriter.write(v, indent: 2)), v)
    }
}
