@testable import Calibration
import Evaluator
import Foundation
import Formats
import Kernels
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// GPTQ on mixture-of-experts weights: one Hessian per expert from the tokens routed to it.
final class GPTQExpertTests: XCTestCase {
    static let gptoss = TestSupport.path("golden/gptoss/bf16")

    /// One-pass GPTQ of the tiny gpt-oss's expert weights equals GPTQ of each expert's matrix with
    /// the Hessian of exactly the rows routed to that expert (captured independently by an
    /// observer on a separate run), and an expert no token reaches gets round-to-nearest.
    func testOneHessianPerExpert() throws {
        let (model, graph) = try ModelLoader.load(Self.gptoss, threads: 2)
        var chunks: [[Int32]] = []
        for c in 0..<3 {
            var chunk: [Int32] = []
            for i in 0..<24 { chunk.append(Int32((i * 31 + c * 7 + 3) % 384)) }
            chunks.append(chunk)
        }
        let name = "blk.1.ffn_up_exps.weight", down = "blk.1.ffn_down_exps.weight"
        // Expert 3 of layer 1 never chosen: its router bias far below the others.
        var bias = try GPTQRunner(model: model, targets: [:], chunks: [], options: .init()).f32Values(try XCTUnwrap(graph["blk.1.ffn_gate_inp.bias"]))
        bias[3] = -1e4
        try model.overrideWeight("blk.1.ffn_gate_inp.bias", values: bias)
        let options = GPTQ.Options(damp: 0.01, scaleSearch: true, actOrder: true, threads: 2)
        let runner = GPTQRunner(model: model, targets: [name: .q4_0, down: .q4_0], chunks: chunks, options: options)
        try runner.runOnePass(units: 1..<2)

        // Reference: every routed row of each expert's input, then GPTQ per expert.
        let t = try XCTUnwrap(graph[name])
        let (experts, rows, cols) = (t.shape[0], t.shape[1], t.shape[2])
        var inputs = [[[Float]]](repeating: [], count: experts)  // per expert, per call: [rows × cols]
        model.expertInputObserver = { w, e, n, x, r, c in
            XCTAssertEqual(n, experts)
            if w == name { inputs[e].append(Array(UnsafeBufferPointer(start: x, count: r * c))) }
        }
        for c in chunks { _ = try model.logits(tokens: c, outputRows: 0..<c.count) }
        model.expertInputObserver = nil
        XCTAssertEqual(inputs.map { $0.map(\.count).reduce(0, +) / cols }.reduce(0, +), 2 * 3 * 24, "two experts per token")
        // X^T X of the given calls, accumulated call by call as the runner does.
        func hessian(_ calls: [[Float]]) -> [Float] {
            var h = [Float](repeating: 0, count: cols * cols)
            h.withUnsafeMutableBufferPointer { hp in
                for call in calls { call.withUnsafeBufferPointer { BLAS.gramAccumulate($0.baseAddress!, rows: call.count / cols, n: cols, into: hp.baseAddress!) } }
                BLAS.symmetrize(hp.baseAddress!, n: cols)
            }
            return h
        }
        func gptq(_ slice: [Float], _ h: [Float]) throws -> [UInt8] {
            try slice.withUnsafeBufferPointer { wp in
                try h.withUnsafeBufferPointer { hp in
                    try GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, dtype: .q4_0, options: options, name: "ref").blocks
                }
            }
        }
        let pooled = hessian(inputs.flatMap { $0 })

        let w = try runner.f32Values(t)
        let perExpert = try DType.q4_0.byteCount(shape: [rows, cols])
        let blocks = try XCTUnwrap(runner.results[name])
        XCTAssertEqual(blocks.count, experts * perExpert)
        var routed = 0, differsFromPooled = 0
        for e in 0..<experts {
            let slice = Array(w[(e * rows * cols)..<((e + 1) * rows * cols)])
            let got = Array(blocks[(e * perExpert)..<((e + 1) * perExpert)])
            if inputs[e].isEmpty {
                XCTAssertEqual(got, try slice.withUnsafeBufferPointer { try Quantize.rows(.q4_0, $0) }, "expert \(e): round-to-nearest")
                continue
            }
            routed += 1
            XCTAssertEqual(got, try gptq(slice, hessian(inputs[e])), "expert \(e): GPTQ with its own Hessian")
            if try gptq(slice, pooled) != got { differsFromPooled += 1 }
        }
        // One Hessian over every expert's tokens would give other blocks.
        XCTAssertGreaterThan(differsFromPooled, 0)
        XCTAssertEqual(routed, 3)
        XCTAssertTrue(inputs[3].isEmpty)
        XCTAssertNotNil(runner.results[down])
        XCTAssertNotNil(runner.relativeErrors[name])
    }

    /// `smelt quantize --method gptq` on the tiny gpt-oss (sequential): every expert tensor is
    /// quantized by GPTQ, with a smaller output error on its calibration inputs than
    /// round-to-nearest's.
    func testGPTQQuantizesExpertsThroughCLI() throws {
        let dir = TestSupport.tempDir("gptq-moe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = try TestSupport.smelt(["convert", Self.gptoss, "\(dir)/f32.gguf", "--dtype", "f32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.smelt([
            "quantize", "\(dir)/f32.gguf", "\(dir)/q.gguf", "--type", "Q4_0", "--method", "gptq", "--calibration-text",
            TestSupport.path("golden/imatrix-moe/text.txt"), "--ctx", "64", "--chunks", "4", "--threads", "2", "--json",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let gptq = try XCTUnwrap(summary["gptq_relative_error"] as? [String: Double])
        let rtn = try XCTUnwrap(summary["rtn_relative_error"] as? [String: Double])
        let experts = gptq.keys.filter { $0.contains("_exps.weight") }
        XCTAssertEqual(experts.count, 9)
        for e in experts { XCTAssertLessThan(gptq[e]!, rtn[e]!, e) }
        let g = try GGUFReader.read("\(dir)/q.gguf")
        XCTAssertEqual(g["blk.0.ffn_gate_exps.weight"]?.dtype, .q4_0)
    }
}
