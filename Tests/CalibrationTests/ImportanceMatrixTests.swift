import Calibration
import Evaluator
import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

final class ImportanceMatrixTests: XCTestCase {
    static let tinyLlama = TestSupport.path("golden/tiny/llama")

    /// Token chunks for the tiny model (vocabulary 320), deterministic.
    func chunks(count: Int, ctx: Int, seed: UInt64) -> [[Int32]] {
        var rng = SeededRandom(seed)
        return (0..<count).map { _ in (0..<ctx).map { _ in Int32(rng.next() % 320) } }
    }

    /// Our importance matrix equals one computed independently from the activations the forward
    /// pass hands to linear layers (captured by a separate observer on a second, identical run),
    /// and the file we write, read by gguf-py, holds exactly those sums and token counts under
    /// llama-imatrix's names, types and shapes.
    func testMatrixEqualsSumsOfCapturedActivations() throws {
        let (model, graph) = try ModelLoader.load(Self.tinyLlama, threads: 2)
        let data = chunks(count: 3, ctx: 40, seed: 9)
        let matrix = try Calibrate.importanceMatrix(model: model, chunks: data, dataset: "random.txt")

        // Independent reference: capture every activation, sum squares in double.
        var reference: [String: [Double]] = [:]
        var tokens: [String: Int] = [:]
        model.linearInputObserver = { name, x, rows, cols in
            var s = reference[name] ?? [Double](repeating: 0, count: cols)
            for r in 0..<rows { for c in 0..<cols { s[c] += Double(x[r * cols + c]) * Double(x[r * cols + c]) } }
            reference[name] = s
            tokens[name, default: 0] += rows
        }
        for c in data { _ = try model.logits(tokens: c, outputRows: 0..<c.count) }
        model.linearInputObserver = nil

        // Every linear weight of the graph (the head is the untied output.weight here).
        let linear = graph.tensors.filter { $0.shape.count == 2 && $0.name != "token_embd.weight" }.map(\.name)
        XCTAssertEqual(Set(matrix.entries.keys), Set(linear))
        XCTAssertEqual(Set(reference.keys), Set(linear))
        for (name, ref) in reference {
            let e = matrix.entries[name]!
            XCTAssertEqual(e.counts, [Float(tokens[name]!)], name)
            XCTAssertEqual(tokens[name], 120, name)
            XCTAssertEqual(e.sums.count, ref.count, name)
            for i in 0..<ref.count {
                XCTAssertEqual(Double(e.sums[i]), ref[i], accuracy: ref[i] * 1e-5 + 1e-9, "\(name)[\(i)]")
            }
        }
        XCTAssertEqual(matrix.chunkCount, 3)
        XCTAssertEqual(matrix.chunkSize, 40)

        // Written, then read by gguf-py.
        let path = TestSupport.tempDir("imatrix") + "/tiny.imatrix.gguf"
        try matrix.write(to: path)
        let py = try TestSupport.python(["-c", """
            import sys, json, numpy as np
            from gguf import GGUFReader
            from gguf.constants import Keys
            r = GGUFReader(sys.argv[1])
            def field(k):
                f = r.fields[k]
                return f.contents()
            out = {'type': field('general.type'), 'datasets': field(Keys.IMatrix.DATASETS),
                   'chunk_count': field(Keys.IMatrix.CHUNK_COUNT), 'chunk_size': field(Keys.IMatrix.CHUNK_SIZE),
                   'tensors': {}}
            for t in r.tensors:
                out['tensors'][t.name] = {'type': t.tensor_type.name, 'shape': [int(x) for x in t.shape],
                                          'data': [float(x) for x in np.asarray(t.data, dtype=np.float64).ravel()]}
            print(json.dumps(out))
            """, path])
        XCTAssertEqual(py.status, 0, py.stderr)
        let parsed = try JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(parsed["type"] as? String, "imatrix")
        XCTAssertEqual(parsed["datasets"] as? [String], ["random.txt"])
        XCTAssertEqual(parsed["chunk_count"] as? Int, 3)
        XCTAssertEqual(parsed["chunk_size"] as? Int, 40)
        let tensors = parsed["tensors"] as! [String: [String: Any]]
        XCTAssertEqual(tensors.count, 2 * linear.count)
        for (name, ref) in reference {
            let sums = tensors[name + ".in_sum2"]!, counts = tensors[name + ".counts"]!
            XCTAssertEqual(sums["type"] as? String, "F32")
            XCTAssertEqual(sums["shape"] as? [Int], [ref.count])
            XCTAssertEqual(counts["type"] as? String, "F32")
            XCTAssertEqual(counts["shape"] as? [Int], [1])
            XCTAssertEqual(counts["data"] as? [Double], [Double(tokens[name]!)])
            let values = sums["data"] as! [Double]
            for i in 0..<ref.count {
                XCTAssertEqual(values[i], ref[i], accuracy: ref[i] * 1e-5 + 1e-9, "\(name).in_sum2[\(i)] via gguf-py")
            }
        }
        // Our reader gives back the same matrix.
        XCTAssertEqual(try ImportanceMatrix.read(path), matrix)
    }

    /// The legacy .dat layout llama-imatrix wrote before GGUF: values are mean squares × ncall.
    func testReadsLegacyDat() throws {
        var b: [UInt8] = []
        func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        func str(_ s: String) { i32(Int32(s.utf8.count)); b.append(contentsOf: Array(s.utf8)) }
        i32(2)
        str("blk.0.attn_q.weight"); i32(4); i32(3); b += Fixtures.le([4, 8, 12])
        str("blk.0.ffn_down.weight"); i32(2); i32(2); b += Fixtures.le([1, 0.5])
        i32(7); str("calib.txt")
        let path = TestSupport.tempDir("imatrix") + "/legacy.dat"
        FileManager.default.createFile(atPath: path, contents: Data(b))
        let m = try ImportanceMatrix.read(path)
        XCTAssertEqual(m.importance(for: "blk.0.attn_q.weight"), [1, 2, 3])
        XCTAssertEqual(m.importance(for: "blk.0.ffn_down.weight"), [0.5, 0.25])
        XCTAssertEqual(m.chunkCount, 7)
        XCTAssertEqual(m.datasets, ["calib.txt"])
        // Garbage is refused with the path named.
        let bad = TestSupport.tempDir("imatrix") + "/bad.dat"
        FileManager.default.createFile(atPath: bad, contents: Data([1, 2, 3]))
        XCTAssertThrowsError(try ImportanceMatrix.read(bad)) { XCTAssertTrue("\($0)".contains(bad), "\($0)") }
    }

    /// Importance-weighted quantization through the CLI: `smelt calibrate` writes the matrix,
    /// `smelt quantize --imatrix` uses it on every linear weight it names.
    func testCalibrateThenQuantizeWithImatrix() throws {
        let dir = TestSupport.tempDir("imatrix-cli")
        let text = "\(dir)/text.txt"
        try String(repeating: "The quick brown fox jumps over the lazy dog. It's 12345 café 東京! ", count: 60)
            .write(toFile: text, atomically: true, encoding: .utf8)
        let imatrix = "\(dir)/tiny.imatrix.gguf"
        let c = try TestSupport.smelt(["calibrate", Self.tinyLlama, "--text", text, "--output", imatrix, "--ctx", "32", "--threads", "2"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let m = try ImportanceMatrix.read(imatrix)
        XCTAssertEqual(m.entries.count, 15)  // 7 per layer × 2 + output.weight
        let out = "\(dir)/q4_0.gguf"
        let q = try TestSupport.smelt(["quantize", Self.tinyLlama, out, "--type", "q4_0", "--imatrix", imatrix, "--json"])
        XCTAssertEqual(q.status, 0, q.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(q.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["importance_tensors"] as? Int, 15)
        let back = try GGUFReader.read(out)
        XCTAssertEqual(back.metadata["quantize.imatrix.entries_count"], .int32(15))
        XCTAssertEqual(back["blk.0.ffn_down.weight"]?.dtype, .q4_0)
        XCTAssertEqual(back["token_embd.weight"]?.dtype, .q4_0)  // no entry: round-to-nearest
        XCTAssertEqual(back["blk.1.ffn_norm.weight"]?.dtype, .f32)
    }
}
