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

    /// Bad option values are usage errors: exit status exactly 64 from validate(), a message
    /// naming the option, and no output written (the inputs are not even opened).
    func testUsageErrorsExit64() throws {
        let dir = TestSupport.tempDir("usage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = "golden/safetensors/mixed.safetensors", text = TestSupport.wikiText
        let cases: [([String], String)] = [
            (["convert", model, "\(dir)/a.safetensors", "--dtype", "q9"], "--dtype must be f32, f16 or bf16, not 'q9'"),
            (["convert", model, "\(dir)/b.safetensors", "--max-shard-size", "lots"], "--max-shard-size: cannot read 'lots' as a size"),
            (["convert", model, "\(dir)/c.gguf", "--split-max-size=-5MB"], "--split-max-size: cannot read '-5MB' as a size"),
            (["convert", model, "\(dir)/d.ingot", "--level", "0"], "--level must be in"),
            (["convert", model, "\(dir)/e.ingot", "--level", "99"], "--level must be in"),
            (["quantize", model, "\(dir)/f.gguf", "--type", "q9_9"], "unknown --type 'q9_9'"),
            (["quantize", model, "\(dir)/g.gguf", "--type", "q4_0", "--method", "awq"], "--method must be rtn or gptq, not 'awq'"),
            (["quantize", model, "\(dir)/h.gguf", "--type", "q4_0", "--threads", "0"], "--threads must be at least 1"),
            (["quantize", model, "\(dir)/i.safetensors", "--type", "q4_0"], "OUT must end in .gguf (or .ingot)"),
            (["perplexity", model, "--text", text, "--activations", "q4"], "--activations must be f32 or q8, not 'q4'"),
            (["perplexity", model, "--text", text, "--kv", "bf16"], "--kv must be f32 or f16, not 'bf16'"),
            (["perplexity", model, "--text", text, "--ctx", "2"], "--ctx must be at least 4"),
            (["perplexity", model, "--text", text, "--chunks", "0"], "--chunks must be at least 1"),
            (["drift", "--base", model, "--candidate", model, "--text", text, "--min-top1", "100.5"],
             "--min-top1 must be a percentage from 0 to 100"),
            (["drift", "--base", model, "--candidate", model, "--text", text, "--max-kld=-1"], "--max-kld must be 0 or more"),
            (["drift", "--base", model, "--candidate", model, "--text", text, "--max-ppl-ratio", "nan"],
             "--max-ppl-ratio must be a positive ratio"),
            (["drift", "--base", model, "--candidate", model, "--text", text, "--kv", "q8"], "--kv must be f32 or f16"),
            (["calibrate", model, "--text", text, "--output", "\(dir)/m.gguf", "--threads", "0"], "--threads must be at least 1"),
            (["verify", "\(dir)/x.ingot", "--threads=-1"], "--threads must be 0 (all cores) or more"),
            (["tokenize", model], "Missing expected argument '--text <text>'"),
        ]
        for (args, message) in cases {
            let r = try TestSupport.smelt(args)
            XCTAssertEqual(r.status, 64, "smelt \(args.joined(separator: " ")): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "smelt \(args.joined(separator: " ")): want '\(message)' in: \(r.stderr)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "a usage error wrote something")
        // A value echoed back is cut short and its control characters escaped.
        let long = String(repeating: "x", count: 5000) + "\u{1b}[31m"
        let r = try TestSupport.smelt(["convert", model, "\(dir)/z.safetensors", "--dtype", long])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertLessThan(r.stderr.utf8.count, 1000, r.stderr)
        XCTAssertFalse(r.stderr.contains("\u{1b}"), r.stderr)
        let ctl = try TestSupport.smelt(["convert", model, "\(dir)/z.safetensors", "--dtype", "f\u{1b}[2J"])
        XCTAssertTrue(ctl.stderr.contains("not 'f\\u{1b}[2J'"), ctl.stderr)
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
