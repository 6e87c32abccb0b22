import Calibration
import Formats
import Foundation
import TensorGraph
import TestSupport
import XCTest

/// `smelt sensitivity` and `smelt quantize` with a budget, on the tiny Llama (rows of 32 and 64:
/// the K-quants fall back, the legacy types fit).
final class BudgetCLITests: XCTestCase {
    static let tiny = TestSupport.path("golden/tiny/llama")
    static let dir = TestSupport.tempDir("budget-cli")
    static let text = "\(dir)/text.txt"
    static let sens = "\(dir)/s.json"
    static let imatrix = "\(dir)/i.gguf"

    override class func setUp() {
        super.setUp()
        let content = String(repeating: "The quick brown fox jumps over the lazy dog. It's 12345 café 東京! ", count: 30)
        try? content.write(toFile: text, atomically: true, encoding: .utf8)
    }

    func smelt(_ args: [String]) throws -> TestSupport.Result { try TestSupport.smelt(args) }

    func sensitivity() throws -> SensitivityReport {
        if !FileManager.default.fileExists(atPath: Self.sens) {
            let r = try smelt([
                "sensitivity", Self.tiny, "--text", Self.text, "--ctx", "32", "--chunks", "4", "--gain-chunks", "1",
                "--check-chunks", "1", "--check-pairs", "6", "--threads", "2", "--output", Self.sens, "--write-imatrix", Self.imatrix,
            ])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        return try SensitivityReport.read(Self.sens)
    }

    /// The file's contents hang together, and the gain's measurement is the drift `smelt drift`
    /// measures for a model with only that tensor quantized.
    func testSensitivityFileAndItsMeasurement() throws {
        let s = try sensitivity()
        XCTAssertEqual(s.candidates.count, Sensitivity.defaultCandidates.count)
        XCTAssertEqual(s.tensors.count, 16)  // 2 layers × 7 linear weights, the token embedding and the output head
        XCTAssertEqual(s.check?.pairs.count, 6)
        XCTAssertEqual(s.parameters, s.tensors.reduce(0) { $0 + $1.parameters } + s.fixed.reduce(0) { $0 + $1.parameters })
        for t in s.tensors {
            let q4k = t.types.first { $0.type == "q4_k" }!
            XCTAssertFalse(q4k.valid, t.name)  // rows of 32 or 64
            XCTAssertEqual(q4k.stored, "q5_0", t.name)
            XCTAssertEqual(t.reference, "q4_0")
            let ref = t.types.first { $0.type == "q4_0" }!
            XCTAssertEqual(ref.predictedKld, t.measuredKld, accuracy: 1e-12 + 1e-9 * t.measuredKld)
            XCTAssertEqual(t.types.first { $0.type == "q8_0" }!.bytes, t.parameters / 32 * 34)
            XCTAssertEqual(t.types.first { $0.type == "f16" }!.bytes, t.parameters * 2)
            XCTAssertGreaterThan(ref.weightedError, t.types.first { $0.type == "q8_0" }!.weightedError, t.name)
        }
        // The measurement, independently: quantize blk.1.ffn_down alone to q4_0 (same importance
        // matrix) and let `smelt drift` compare on the gain chunk.
        let name = "blk.1.ffn_down.weight"
        let entry = s.tensors.first { $0.name == name }!
        let recipe = "\(Self.dir)/one.json"
        try #"{"rules": [{"pattern": "blk.1.ffn_down.weight", "type": "q4_0"}, {"pattern": "*", "type": "f32"}]}"#
            .write(toFile: recipe, atomically: true, encoding: .utf8)
        let one = "\(Self.dir)/one.gguf"
        var r = try smelt(["quantize", Self.tiny, one, "--type", "q4_0", "--recipe", recipe, "--imatrix", Self.imatrix, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = "\(Self.dir)/drift.json"
        r = try smelt(["drift", "--base", Self.tiny, "--candidate", one, "--text", Self.text, "--ctx", "32", "--chunks", "1",
                       "--threads", "2", "--json", json])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        let mean = (report["kld"] as! [String: Any])["mean"] as! Double
        XCTAssertGreaterThan(mean, 0)
        XCTAssertEqual(entry.measuredKld, mean, accuracy: mean * 1e-4)
    }

    /// --target-size: the file is never larger; --write-recipe replays to the same bytes.
    func testTargetSizeAndRecipeReplay() throws {
        _ = try sensitivity()
        // The reachable range, from the error a too-small size gives.
        let e = try smelt(["quantize", Self.tiny, "\(Self.dir)/never.gguf", "--sensitivity", Self.sens, "--target-size", "1000",
                           "--imatrix", Self.imatrix])
        XCTAssertEqual(e.status, 2)
        let range = e.stderr.components(separatedBy: "reachable range ").last!.components(separatedBy: " bytes").first!
            .components(separatedBy: "…").compactMap { Int($0) }
        XCTAssertEqual(range.count, 2, e.stderr)
        let (low, high) = (range[0], range[1])
        for size in [low, low + (high - low) / 10, low + (high - low) * 4 / 10, low + (high - low) * 8 / 10, high] {
            let out = "\(Self.dir)/b\(size).gguf", recipe = "\(Self.dir)/b\(size).json"
            let r = try smelt(["quantize", Self.tiny, out, "--sensitivity", Self.sens, "--target-size", "\(size)", "--imatrix",
                               Self.imatrix, "--write-recipe", recipe, "--force", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let bytes = try FileManager.default.attributesOfItem(atPath: out)[.size] as! Int
            XCTAssertLessThanOrEqual(bytes, size)
            let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(summary["file_bytes"] as? Int, bytes)
            XCTAssertEqual(summary["pure"] as? Bool, false, "a budgeted mix is not one type")
            let allocation = summary["allocation"] as! [String: Any]
            XCTAssertGreaterThan(allocation["predicted_kld"] as! Double, 0)
            // Replay.
            let rj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: recipe))) as! [String: Any]
            let replay = "\(Self.dir)/r\(size).gguf"
            let p = try smelt(["quantize", Self.tiny, replay, "--type", rj["type"] as! String, "--recipe", recipe, "--imatrix",
                               Self.imatrix, "--force"])
            XCTAssertEqual(p.status, 0, p.stderr)
            XCTAssertEqual(FileManager.default.contents(atPath: out), FileManager.default.contents(atPath: replay), "size \(size)")
        }
        // A bigger budget never predicts more drift.
        var last = Double.infinity
        // (The tiny model's range is about 4.6 to 16 bits per weight: its norms are a large share.)
        for bpw in ["5", "7", "9.5", "12", "15.5"] {
            let r = try smelt(["quantize", Self.tiny, "\(Self.dir)/bpw.gguf", "--sensitivity", Self.sens, "--target-bpw", bpw,
                               "--force", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertLessThanOrEqual(summary["bits_per_weight"] as! Double, Double(bpw)!)
            let k = (summary["allocation"] as! [String: Any])["predicted_kld"] as! Double
            XCTAssertLessThanOrEqual(k, last)
            last = k
            // --max-kld at that prediction: a mix within it, no larger (the grid's unit there is
            // 0.1 % of the largest mix ÷ tensors; 4 bytes × parameters bounds the largest).
            let m = try smelt(["quantize", Self.tiny, "\(Self.dir)/kld.gguf", "--sensitivity", Self.sens, "--max-kld", "\(k)",
                               "--force", "--json"])
            XCTAssertEqual(m.status, 0, m.stderr)
            let ms = try JSONSerialization.jsonObject(with: Data(m.stdout.utf8)) as! [String: Any]
            XCTAssertLessThanOrEqual((ms["allocation"] as! [String: Any])["predicted_kld"] as! Double, k * (1 + 1e-12))
            XCTAssertLessThanOrEqual(ms["tensor_bytes"] as! Int, (summary["tensor_bytes"] as! Int) + 4 * (summary["parameters"] as! Int) / 1000)
        }
    }

    func testBudgetsOutOfReachAreClearErrors() throws {
        _ = try sensitivity()
        for (option, value) in [("--target-bpw", "1"), ("--target-bpw", "40"), ("--target-size", "1000"), ("--target-size", "10MB")] {
            let out = "\(Self.dir)/never.gguf"
            let r = try smelt(["quantize", Self.tiny, out, "--sensitivity", Self.sens, option, value])
            XCTAssertEqual(r.status, 2, "\(option) \(value)")
            XCTAssertTrue(r.stderr.contains("outside the reachable range"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        let r = try smelt(["quantize", Self.tiny, "\(Self.dir)/never.gguf", "--sensitivity", Self.sens, "--max-kld", "0"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("no mix has a predicted KLD of at most 0"), r.stderr)
        let u = try smelt(["quantize", Self.tiny, "\(Self.dir)/never.gguf", "--sensitivity", Self.sens])
        XCTAssertEqual(u.status, 64, u.stderr)
    }

    /// --shard: the merged partials are the file one run writes (but seconds).
    func testSensitivityShardsMergeToOneRun() throws {
        _ = try sensitivity()
        let common = ["sensitivity", Self.tiny, "--text", Self.text, "--ctx", "32", "--gain-chunks", "1", "--check-chunks", "1",
                      "--check-pairs", "6", "--threads", "2", "--imatrix", Self.imatrix]
        let whole = "\(Self.dir)/whole.json"
        var r = try smelt(common + ["--output", whole, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var partials: [String] = []
        for k in 0..<3 {
            let p = "\(Self.dir)/part\(k).gguf"
            r = try smelt(common + ["--shard", "\(k)/3", "--partial", p])
            XCTAssertEqual(r.status, 0, r.stderr)
            partials.append(p)
        }
        let merged = "\(Self.dir)/merged.json"
        r = try smelt(["merge"] + partials.reversed() + ["--output", merged, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var a = try SensitivityReport.read(whole), b = try SensitivityReport.read(merged)
        XCTAssertEqual(b.tensors.count, 16)
        XCTAssertEqual(b.check?.pairs.count, 6)
        a.seconds = 0
        b.seconds = 0
        XCTAssertEqual(a, b)
        // Without --imatrix a shard is refused (every shard must round alike).
        r = try smelt(Array(common.dropLast(2)) + ["--shard", "0/3", "--partial", "\(Self.dir)/x.gguf"])
        XCTAssertEqual(r.status, 64, r.stderr)
    }

    /// --keep wins over the allocation.
    func testKeepIsHonoured() throws {
        _ = try sensitivity()
        let out = "\(Self.dir)/keep.gguf"
        let r = try smelt(["quantize", Self.tiny, out, "--sensitivity", Self.sens, "--target-bpw", "15", "--keep", "blk.0.*", "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for t in try GGUFReader.read(out).tensors where t.name.hasPrefix("blk.0.") { XCTAssertEqual(t.dtype, .f32, t.name) }
        // --types limits the choice.
        let r2 = try smelt(["quantize", Self.tiny, out, "--sensitivity", Self.sens, "--target-bpw", "7", "--types", "q4_0,q8_0", "--force"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        for t in try GGUFReader.read(out).tensors where t.shape.count == 2 { XCTAssertTrue([.q4_0, .q8_0].contains(t.dtype), t.name) }
    }

    /// A tensor whose weights were dequantized from the reference type (here Q4_0) rounds back to
    /// it with no more error than Q8_0 leaves: its single-tensor KLD there is zero or noise, so the
    /// gain comes from the next candidate instead (not a zero gain that prices every type at 0).
    func testReferenceSkipsTheGridTheWeightsSitOn() throws {
        let name = "blk.1.ffn_down.weight"
        let recipe = "\(Self.dir)/grid.json"
        try #"{"rules": [{"pattern": "blk.1.ffn_down.weight", "type": "q4_0"}, {"pattern": "*", "type": "f32"}]}"#
            .write(toFile: recipe, atomically: true, encoding: .utf8)
        let q = "\(Self.dir)/grid-q4_0.gguf", base = "\(Self.dir)/grid-f32.gguf", out = "\(Self.dir)/grid-s.json"
        var r = try smelt(["quantize", Self.tiny, q, "--type", "q4_0", "--recipe", recipe, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try smelt(["convert", q, base, "--dtype", "f32", "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try smelt(["sensitivity", base, "--text", Self.text, "--ctx", "32", "--chunks", "4", "--gain-chunks", "1",
                       "--check-chunks", "0", "--threads", "2", "--output", out, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try SensitivityReport.read(out)
        for t in s.tensors {
            let error = { (type: String) in t.types.first { $0.type == type }!.weightedError }
            if t.name == name {
                XCTAssertLessThanOrEqual(error("q4_0"), error("q8_0"), "the dequantized tensor sits on Q4_0's grid")
                XCTAssertNotEqual(t.reference, "q4_0")
                XCTAssertGreaterThan(error(t.reference), error("q8_0"))
                XCTAssertGreaterThan(t.gain, 0)
                XCTAssertGreaterThan(t.measuredKld, 0)
            } else {
                XCTAssertEqual(t.reference, "q4_0", t.name)
            }
        }
    }

    func testChooseReference() {
        let errors: [DType: Double] = [.q4_K: 0, .q4_0: 2e-7, .q4_1: 0.3]
        XCTAssertEqual(Sensitivity.chooseReference([.q4_K, .q4_0, .q4_1], floor: 1e-6) { errors[$0]! }, .q4_1)
        XCTAssertEqual(Sensitivity.chooseReference([.q4_K, .q4_0, .q4_1], floor: 0) { errors[$0]! }, .q4_0)
        XCTAssertEqual(Sensitivity.chooseReference([.q4_K, .q4_0], floor: 1) { errors[$0]! }, .q4_K, "none clears the floor: the preferred")
        XCTAssertNil(Sensitivity.chooseReference([], floor: 0) { errors[$0]! })
    }
}
