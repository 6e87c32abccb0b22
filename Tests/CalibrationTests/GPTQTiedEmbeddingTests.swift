@testable import Calibration
import Evaluator
import Foundation
import Formats
import Kernels
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// A tied embedding (`token_embd.weight` with no `output.weight`) is read as the head and, row by
/// row, as the input vectors: with `walkTiedEmbedding` off (`--gptq-tied-embedding weighted`)
/// GPTQ gives it the importance-weighted rounding (importance = the head's Hessian diagonal)
/// rather than the walk, whose error spreading only the head usage sees.
final class GPTQTiedEmbeddingTests: XCTestCase {
    /// H from `GPTQTests.correlatedInputs` (correlated columns, a few loud ones), so the walk has
    /// something to compensate.
    static func gram(cols: Int, rows: Int = 256) -> GPTQRunner.Gram {
        let x = GPTQTests.correlatedInputs(rows: rows, cols: cols, seed: 41)
        var g = GPTQRunner.Gram()
        x.withUnsafeBufferPointer { g.add($0.baseAddress!, rows: rows, cols: cols) }
        return g
    }

    func testTiedEmbeddingTakesTheWeightedRounding() throws {
        let (model, graph) = try ModelLoader.load(TestSupport.path("golden/tiny/qwen2"), threads: 2)
        let name = "token_embd.weight"
        XCTAssertNil(graph["output.weight"], "the tiny Qwen2 ties its head")
        let t = try XCTUnwrap(graph[name])
        let (rows, cols) = (t.shape[0], t.shape[1])
        for dtype in [DType.q4_0, .q5_1, .q8_0] {
            let runner = GPTQRunner(model: model, targets: [name: dtype], chunks: [], options: .init(threads: 2, walkTiedEmbedding: false))
            XCTAssertTrue(runner.isTiedEmbedding(name))
            var g = Self.gram(cols: cols)
            try runner.quantize([name], hessian: &g, override: false)
            let h = g.values  // symmetrized by the call
            let w = try runner.f32Values(t)
            let importance = (0..<cols).map { max(0, h[$0 * cols + $0]) }
            var expected = [UInt8](repeating: 0, count: try Quantize.byteCount(dtype, values: w.count))
            try w.withUnsafeBufferPointer { wp in
                try importance.withUnsafeBufferPointer { ip in
                    try expected.withUnsafeMutableBytes {
                        try Quantize.weightedRows(dtype, wp.baseAddress!, rows: rows, rowLength: cols, importance: ip.baseAddress!,
                                                  into: $0.baseAddress!)
                    }
                }
            }
            XCTAssertEqual(runner.results[name], expected, dtype.displayName)
            XCTAssertNotNil(runner.relativeErrors[name])

            // The walk (the default) lowers the head's error on these inputs and raises the
            // values' own error, which is what a looked-up row carries.
            let walker = GPTQRunner(model: model, targets: [name: dtype], chunks: [], options: .init(threads: 2))
            var g2 = Self.gram(cols: cols)
            try walker.quantize([name], hessian: &g2, override: false)
            let walked = try XCTUnwrap(walker.results[name])
            XCTAssertNotEqual(walked, expected, dtype.displayName)
            let a = try expected.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
            let b = try walked.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
            func sq(_ q: [Float]) -> Double { zip(w, q).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } }
            XCTAssertLessThan(try XCTUnwrap(walker.relativeErrors[name]), try XCTUnwrap(runner.relativeErrors[name]), dtype.displayName)
            XCTAssertLessThan(sq(a), sq(b), dtype.displayName)
        }
    }

    /// The CLI's choice: walk (default) or weighted; anything else is refused naming the option.
    func testCLIOption() throws {
        let dir = TestSupport.tempDir("gptq-tied")
        let r = try TestSupport.smelt([
            "quantize", TestSupport.path("golden/tiny/qwen2"), "\(dir)/x.gguf", "--type", "q8_0", "--method", "gptq",
            "--calibration-text", TestSupport.path("corpus/README.md"), "--gptq-tied-embedding", "nearest",
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--gptq-tied-embedding"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/x.gguf"))
    }

    /// With a separate head, the embedding is not the head and `output.weight` takes the walk.
    func testUntiedModelsAreNotTouched() throws {
        let (model, graph) = try ModelLoader.load(TestSupport.path("golden/tiny/llama"), threads: 2)
        XCTAssertNotNil(graph["output.weight"])
        let runner = GPTQRunner(model: model, targets: [:], chunks: [], options: .init())
        XCTAssertFalse(runner.isTiedEmbedding("token_embd.weight"))
        XCTAssertFalse(runner.isTiedEmbedding("output.weight"))
    }
}
