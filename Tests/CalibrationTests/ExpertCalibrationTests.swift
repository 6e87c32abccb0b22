import Calibration
import Evaluator
import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// Calibration of mixtures of experts: llama-imatrix's per-expert layout, and the neutral prior
/// for experts calibration never routes to.
final class ExpertCalibrationTests: XCTestCase {
    /// `smelt calibrate` on the tiny Qwen3-MoE equals llama-imatrix on the same model and text
    /// (golden/imatrix-moe, golden/make_moe_imatrix_golden.sh): the same entries, `in_sum2`
    /// [experts, columns] and `counts` [experts, 1] for the `*_exps` weights, the same tokens
    /// routed to each expert, sums within 1e-5 (keys and values rounded to f16 as llama.cpp's
    /// cache stores them).
    func testPerExpertLayoutMatchesLlamaImatrix() throws {
        let dir = TestSupport.tempDir("moe-imatrix")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/q3m.imatrix.gguf"
        let r = try TestSupport.smelt([
            "calibrate", TestSupport.path("golden/tiny/qwen3moe"), "--text", TestSupport.path("golden/imatrix-moe/text.txt"),
            "--ctx", "64", "--chunks", "6", "--threads", "2", "--kv", "f16", "--output", out,
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ours = try GGUFReader.read(out), ref = try GGUFReader.read(TestSupport.path("golden/imatrix-moe/qwen3moe.imatrix.gguf"))
        XCTAssertEqual(Set(ours.tensors.map(\.name)), Set(ref.tensors.map(\.name)))
        var experts = 0
        for t in ref.tensors {
            let u = try XCTUnwrap(ours[t.name], t.name)
            XCTAssertEqual(u.shape, t.shape, t.name)
            let a = Fixtures.floats(try u.storage.readAll()), b = Fixtures.floats(try t.storage.readAll())
            if t.name.hasSuffix(".counts") {
                XCTAssertEqual(a, b, t.name)
                if t.name.contains("_exps") {
                    experts += 1
                    XCTAssertEqual(t.shape, [4, 1], t.name)
                    // Two experts per token: the counts add up to twice the tokens.
                    XCTAssertEqual(a.reduce(0, +), 2 * 6 * 64, t.name)
                }
            } else {
                let scale = b.map(abs).max() ?? 1
                let err = zip(a, b).map { abs($0 - $1) }.max()! / scale
                XCTAssertLessThan(err, 1e-5, t.name)
            }
        }
        XCTAssertEqual(experts, 6)
    }

    /// `smelt quantize --exact-ggml --imatrix` of the tiny gpt-oss (F32) with llama-imatrix's
    /// per-expert matrix is byte for byte what `llama-quantize --imatrix` makes
    /// (golden/imatrix-moe/gptoss-q4_0-imatrix.json), and the expert tensors differ from the
    /// unweighted quantization: each expert's rows were weighted by that expert's importances.
    func testExpertImportanceQuantizesAsLlamaQuantize() throws {
        let dir = TestSupport.tempDir("moe-quant")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let imatrix = TestSupport.path("golden/imatrix-moe/gptoss.imatrix.gguf")
        var r = try TestSupport.smelt(["convert", TestSupport.path("golden/gptoss/bf16"), "\(dir)/f32.gguf", "--dtype", "f32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt(["quantize", "\(dir)/f32.gguf", "\(dir)/q.gguf", "--type", "Q4_0", "--exact-ggml", "--imatrix", imatrix])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt(["quantize", "\(dir)/f32.gguf", "\(dir)/plain.gguf", "--type", "Q4_0", "--exact-ggml"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let py = try TestSupport.python(["-c", """
            import hashlib, json, sys
            from gguf import GGUFReader
            want = json.load(open(sys.argv[1]))['tensors']
            ours = {t.name: t for t in GGUFReader(sys.argv[2]).tensors}
            plain = {t.name: t for t in GGUFReader(sys.argv[3]).tensors}
            bad = []
            for name, w in want.items():
                t = ours[name]
                got = {'type': t.tensor_type.name, 'shape': [int(x) for x in reversed(t.shape)], 'sha256': hashlib.sha256(bytes(t.data.tobytes())).hexdigest()}
                if got != w: bad.append(name)
            assert set(ours) == set(want), sorted(set(ours) ^ set(want))
            exps = [n for n in want if '_exps.weight' in n]
            same = [n for n in exps if bytes(ours[n].data.tobytes()) == bytes(plain[n].data.tobytes())]
            print(json.dumps({'differ': bad, 'experts': len(exps), 'experts_as_unweighted': same}))
            """, imatrix.replacingOccurrences(of: "gptoss.imatrix.gguf", with: "gptoss-q4_0-imatrix.json"), "\(dir)/q.gguf", "\(dir)/plain.gguf"])
        XCTAssertEqual(py.status, 0, py.stdout + py.stderr)
        let out = try JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(out["differ"] as? [String], [], "tensors that differ from llama-quantize's")
        XCTAssertEqual(out["experts"] as? Int, 9)
        XCTAssertEqual(out["experts_as_unweighted"] as? [String], [], "expert tensors the importance matrix did not change")
    }

    /// An expert no token was routed to keeps its zero count in the file, and its importance is
    /// a neutral 1 per column, so the tensor's entry is kept and the routed experts' importances
    /// still apply.
    func testUnroutedExpertGetsNeutralPrior() throws {
        let collector = ImportanceCollector()
        let x: [Float] = [1, 2, 3, 4, 5, 6]  // two rows of three
        x.withUnsafeBufferPointer { collector.addExpert("blk.0.ffn_up_exps.weight", expert: 2, experts: 3, $0.baseAddress!, rows: 2, columns: 3) }
        let m = collector.matrix(datasets: ["t"], chunkCount: 1, chunkSize: 2)
        let e = try XCTUnwrap(m.entries["blk.0.ffn_up_exps.weight"])
        XCTAssertEqual(e.counts, [0, 0, 2])
        XCTAssertEqual(e.sums, [0, 0, 0, 0, 0, 0, 17, 29, 45])
        XCTAssertEqual(e.meanSquares, [1, 1, 1, 1, 1, 1, 8.5, 14.5, 22.5])
        let g = try m.graph()
        XCTAssertEqual(g["blk.0.ffn_up_exps.weight.in_sum2"]?.shape, [3, 3])
        XCTAssertEqual(g["blk.0.ffn_up_exps.weight.counts"]?.shape, [3, 1])
    }
}
