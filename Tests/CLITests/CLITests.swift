import TestSupport
import XCTest

final class CLITests: XCTestCase {
    func testHelpExplainsEachCommand() throws {
        for command in ["inspect", "convert"] {
            let r = try TestSupport.smelt([command, "--help"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("USAGE: smelt \(command)"), r.stdout)
            XCTAssertTrue(r.stdout.contains("--json"), r.stdout)
        }
    }

    func testUsageErrorsExit64() throws {
        let r = try TestSupport.smelt(["convert", "golden/safetensors/mixed.safetensors", "/tmp/x.safetensors", "--dtype", "q9"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--dtype must be f32, f16 or bf16"), r.stderr)
    }

    func testMissingFileIsAClearError() throws {
        let r = try TestSupport.smelt(["inspect", "/nonexistent/model.safetensors"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("/nonexistent/model.safetensors: cannot open: No such file or directory"), r.stderr)
    }

    func testInspectJSONOfGoldenFile() throws {
        let r = try TestSupport.smelt(["inspect", "golden/safetensors/mixed.safetensors", "--json", "--tensors"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["format"] as? String, "safetensors")
        XCTAssertEqual(json["tensor_count"] as? Int, 14)
        XCTAssertEqual((json["tensors"] as? [Any])?.count, 14)
        // 5 + 12 + 24 + 8 + 6 + 4 + 3 + 7 + 9 + 6 + 4 + 4 + 1 + 0 elements in the golden file.
        XCTAssertEqual(json["parameter_count"] as? Int, 93)
    }

    func testGoldenManifestMatchesFiles() throws {
        let r = try TestSupport.python(["golden/manifest.py", "--check"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    }
}
