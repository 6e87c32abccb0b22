import Calibration
import Foundation
import Formats
import Quantization
import TensorGraph
import TestSupport
import XCTest

final class RecipeTests: XCTestCase {
    func tensor(_ name: String, _ shape: [Int], _ dtype: DType = .f32) throws -> Tensor {
        let n = shape.reduce(1, *)
        if dtype == .f32 { return try Fixtures.f32Tensor(name, shape: shape, [Float](repeating: 0, count: n)) }
        return try Tensor(name: name, dtype: dtype, shape: shape, storage: MemoryStorage([UInt8](repeating: 0, count: try dtype.byteCount(shape: shape))))
    }

    func testBuiltInRecipe() throws {
        let r = QuantRecipe.builtIn()
        XCTAssertFalse(r.rules.isEmpty)
        let cases: [(String, [Int], DType)] = [
            ("token_embd.weight", [320, 64], .q4_0),
            ("output.weight", [320, 64], .q4_0),
            ("blk.0.attn_q.weight", [64, 64], .q4_0),
            ("blk.11.attn_k.weight", [32, 64], .q4_0),
            ("blk.0.attn_v.weight", [32, 64], .q4_0),
            ("blk.0.attn_qkv.weight", [192, 64], .q4_0),
            ("blk.0.attn_output.weight", [64, 64], .q4_0),
            ("blk.3.ffn_gate.weight", [128, 64], .q4_0),
            ("blk.3.ffn_up.weight", [128, 64], .q4_0),
            ("blk.3.ffn_down.weight", [64, 128], .q4_0),
            ("blk.0.attn_norm.weight", [64], .f32),
            ("blk.0.attn_q.bias", [64], .f32),
            ("output_norm.weight", [64], .f32),
            ("position_embd.weight", [64, 64], .f32),
            ("blk.0.ffn_down.weight", [64, 100], .f32),  // rows do not divide into blocks
        ]
        for (name, shape, want) in cases {
            let d = r.decide(try tensor(name, shape), requested: .q4_0)
            XCTAssertEqual(d.dtype, want, name)
        }
        XCTAssertNotNil(r.decide(try tensor("blk.0.ffn_down.weight", [64, 100]), requested: .q8_0).note)
        // Integer tensors are left alone.
        XCTAssertEqual(r.decide(try tensor("blk.0.ffn_up.weight", [4, 64], .i32), requested: .q4_0).dtype, .i32)
    }

    func testKeepAndRecipeFileComeFirst() throws {
        let file = TestSupport.tempDir("recipe") + "/r.json"
        try #"{"rules": [{"pattern": "blk.*.ffn_down.weight", "type": "q8_0", "why": "sensitive"}, {"pattern": "token_embd.weight", "type": "f16"}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        let r = QuantRecipe.builtIn().overridden(by: try QuantRecipe.read(file)).keeping(["blk.1.*"])
        XCTAssertEqual(r.decide(try tensor("blk.0.ffn_down.weight", [64, 128]), requested: .q4_0).dtype, .q8_0)
        XCTAssertEqual(r.decide(try tensor("blk.1.ffn_down.weight", [64, 128]), requested: .q4_0).dtype, .f32)
        XCTAssertEqual(r.decide(try tensor("blk.1.attn_q.weight", [64, 64]), requested: .q4_0).dtype, .f32)
        XCTAssertEqual(r.decide(try tensor("blk.2.attn_q.weight", [64, 64]), requested: .q4_0).dtype, .q4_0)
        XCTAssertEqual(r.decide(try tensor("token_embd.weight", [320, 64]), requested: .q4_0).dtype, .f16)
    }

    func testBadRecipes() {
        for (text, fragment) in [
            (#"{"rule": []}"#, "\"rules\" array"),
            (#"{"rules": [{"type": "f32"}]}"#, "missing \"pattern\""),
            (#"{"rules": [{"pattern": "*", "type": "iq2_xxs"}]}"#, "not one of"),
            (#"{"rules": [{"pattern": "*", "type": "f32", "dim": 1}]}"#, "unknown key \"dim\""),
            (#"{"rules": [{"pattern": "*", "type": "f32", "dims": 0}]}"#, "positive integer"),
            (#"{"rules": [}"#, "invalid JSON"),
        ] {
            XCTAssertThrowsError(try QuantRecipe.parse(text, origin: "r.json"), text) {
                XCTAssertTrue("\($0)".contains(fragment), "\($0) lacks '\(fragment)'")
                XCTAssertTrue("\($0)".hasPrefix("r.json: bad quantization recipe"), "\($0)")
            }
        }
    }
}

/// Round-to-nearest through the whole quantize pipeline is ggml's reference, byte for byte
/// (golden blocks from gguf-py's `gguf.quants`, golden/make_quant_golden.py).
final class RTNPipelineTests: XCTestCase {
    func golden(_ type: String) throws -> (input: [Float], blocks: [UInt8]) {
        let input = Fixtures.floats(try Fixtures.bytes("golden/quants/\(type).input.bin"))
        let all = try Fixtures.bytes("golden/quants/\(type).blocks.bin")
        let t = DType(name: type)!
        return (input, Array(all[0..<(input.count / 32 * t.bytesPerBlock)]))
    }

    func testPipelineMatchesGoldenBlocks() throws {
        for t: DType in [.q8_0, .q4_0, .q4_1] {
            let (input, blocks) = try golden(t.displayName)
            let rows = input.count / 64
            let graph = try TensorGraph(
                architecture: "llama",
                tensors: [
                    Fixtures.f32Tensor("blk.0.ffn_up.weight", shape: [rows, 64], input),
                    Fixtures.f32Tensor("blk.0.ffn_norm.weight", shape: [64], [Float](repeating: 1, count: 64)),
                ])
            let plan = ModelQuantizer.plan(graph, recipe: .builtIn(), type: t)
            XCTAssertEqual(plan.map(\.target), [t, .f32])
            let (out, used) = try ModelQuantizer.output(graph, plan: plan, type: t)
            XCTAssertEqual(used, 0)
            let q = out["blk.0.ffn_up.weight"]!
            XCTAssertEqual(q.dtype, t)
            XCTAssertEqual(try q.storage.readAll(), blocks, "\(t.displayName) blocks differ from gguf-py's")
            XCTAssertEqual(out["blk.0.ffn_norm.weight"]!.dtype, .f32)
            XCTAssertEqual(out.metadata["general.file_type"], .uint32(ModelQuantizer.fileType(t)!))
            XCTAssertEqual(out.metadata["general.quantization_version"], .uint32(2))
        }
        XCTAssertEqual(ModelQuantizer.fileType(.q8_0), 7)
        XCTAssertEqual(ModelQuantizer.fileType(.q4_0), 2)
        XCTAssertEqual(ModelQuantizer.fileType(.q4_1), 3)
    }

    /// The CLI: an f32 GGUF in, a GGUF out whose blocks are the golden ones (read back by our reader
    /// and by gguf-py).
    func testCLIQuantizeMatchesGolden() throws {
        let dir = TestSupport.tempDir("quantize-rtn")
        for t: DType in [.q8_0, .q4_0, .q4_1] {
            let (input, blocks) = try golden(t.displayName)
            let rows = input.count / 32
            var g = try TensorGraph(
                architecture: "llama",
                tensors: [
                    Fixtures.f32Tensor("blk.0.attn_q.weight", shape: [rows, 32], input),
                    Fixtures.f32Tensor("blk.0.attn_norm.weight", shape: [32], [Float](repeating: 1, count: 32)),
                ])
            g.hyperparameters.blockCount = 1
            let src = "\(dir)/in-\(t.rawValue).gguf", dst = "\(dir)/out-\(t.rawValue).gguf"
            try GGUFWriter.write(GGUFMetadata.applying(to: g), to: src)
            let r = try TestSupport.smelt(["quantize", src, dst, "--type", t.rawValue, "--threads", "2"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("bits per weight"), r.stdout)
            let back = try GGUFReader.read(dst)
            XCTAssertEqual(try back["blk.0.attn_q.weight"]!.storage.readAll(), blocks, t.displayName)
            XCTAssertEqual(back["blk.0.attn_norm.weight"]!.dtype, .f32)
            XCTAssertEqual(back.metadata["general.file_type"], .uint32(ModelQuantizer.fileType(t)!))
            let py = try TestSupport.python(["-c", """
                import sys, numpy as np
                from gguf import GGUFReader
                r = GGUFReader(sys.argv[1])
                t = {x.name: x for x in r.tensors}['blk.0.attn_q.weight']
                sys.stdout.write(t.tensor_type.name + ' ' + bytes(np.asarray(t.data).tobytes()).hex())
                """, dst])
            XCTAssertEqual(py.status, 0, py.stderr)
            XCTAssertEqual(py.stdout, t.displayName + " " + blocks.map { String(format: "%02x", $0) }.joined())
        }
        // An Ingot output holds the same graph: converted back to GGUF, the same blocks.
        let ingot = "\(dir)/out.ingot", back = "\(dir)/back.gguf"
        let qi = try TestSupport.smelt(["quantize", "\(dir)/in-q4_0.gguf", ingot, "--type", "q4_0"])
        XCTAssertEqual(qi.status, 0, qi.stderr)
        let cv = try TestSupport.smelt(["convert", ingot, back])
        XCTAssertEqual(cv.status, 0, cv.stderr)
        let direct = try GGUFReader.read("\(dir)/out-q4_0.gguf"), viaIngot = try GGUFReader.read(back)
        XCTAssertEqual(viaIngot.tensors.map(\.name), direct.tensors.map(\.name))
        for t in direct.tensors { XCTAssertEqual(try viaIngot[t.name]!.storage.readAll(), try t.storage.readAll(), t.name) }
        XCTAssertEqual(viaIngot.metadata["general.file_type"], .uint32(2))
        // An existing output is refused; usage errors exit 64.
        let again = try TestSupport.smelt(["quantize", "\(dir)/in-q8_0.gguf", "\(dir)/out-q8_0.gguf", "--type", "q8_0"])
        XCTAssertEqual(again.status, 2)
        XCTAssertEqual(try TestSupport.smelt(["quantize", "a.gguf", "b.gguf", "--type", "iq2_xxs"]).status, 64)
        XCTAssertEqual(try TestSupport.smelt(["quantize", "a.gguf", "b.gguf", "--type", "q4_0", "--method", "gptq"]).status, 64)
        XCTAssertEqual(try TestSupport.smelt(["quantize", "a.gguf", "b.safetensors", "--type", "q4_0"]).status, 64)
    }
}
