@testable import Evaluator
import Foundation
import TestSupport
import XCTest

/// GPTQ folders Smelt writes, loaded by the real client: transformers + GPTQModel
/// (`AutoModelForCausalLM.from_pretrained(..., device_map="cpu")`, GPTQModel's CPU kernel)
/// compute the logits of a sentence (`scripts/gptq_logits.py`, model in f32, GPTQModel's torch
/// kernel) and they must match Smelt's forward pass on the same folder within 1e-3 of the largest
/// logit once the scales are widened to f32 (`--f32-scales`: GPTQModel otherwise rounds every
/// dequantized weight to the scales' f16, about 5e-4 relative per weight; that difference is
/// printed, not gated). The packages (torch,
/// transformers, optimum, gptqmodel) are not part of `make test`: these tests run when
/// `SMELT_GPTQ_PYTHON` names a Python that has them, and skip (with a banner) otherwise.
final class GPTQClientTests: XCTestCase {
    var gptqPython: String {
        get throws {
            try ClientLogits.python("SMELT_GPTQ_PYTHON", banner: "a transformers + gptqmodel client check (a Python with them)")
        }
    }

    /// transformers + GPTQModel's logits for `folder` on `text`, and Smelt's for the same ids;
    /// returns the largest difference relative to the largest reference logit.
    func compare(_ folder: String, text: String, f32Scales: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let (error, meta) = try ClientLogits.compare(
            python: try gptqPython, script: "gptq_logits.py", client: "transformers + gptqmodel", folder: folder,
            arguments: ["--text", text] + (f32Scales ? ["--f32-scales"] : []), file: file, line: line)
        print("gptq client: \(meta["versions"] ?? "?"), kernels \(meta["kernels"] ?? "?")")
        return error
    }

    func smelt(_ args: [String]) throws {
        let r = try TestSupport.smelt(args)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// The tiny random Llama (golden/tiny/llama, f32) written by Smelt as GPTQ int4 g32, symmetric
    /// and asymmetric.
    func testTinyLlamaGPTQ() throws {
        _ = try gptqPython
        for sym in ["--sym", "--asym"] {
            let folder = TestSupport.tempDir("gptq-client") + "/llama\(sym)"
            try smelt(["convert", TestSupport.path("golden/tiny/llama"), folder, "--format", "gptq", "--group-size", "32", sym])
            let err = try compare(folder, text: "hello world, this is a test")
            let stored = try compare(folder, text: "hello world, this is a test", f32Scales: false)
            print("transformers + gptqmodel vs smelt, tiny llama GPTQ int4 g32 \(sym): max relative difference \(err) (f16 products: \(stored))")
            XCTAssertLessThan(err, 1e-3, sym)
        }
    }

    /// SmolLM2-135M quantized by Smelt to GPTQ int4 g128 (round to nearest, the default grid), from
    /// the F32 conversion when the benchmark cache has it, else from the Q4_1 GGUF.
    func testSmolLM2GPTQ() throws {
        _ = try gptqPython
        let f32 = TestSupport.path(".cache/bench/smollm2-f32.gguf")
        let source = FileManager.default.fileExists(atPath: f32) ? f32 : try TestSupport.requireModel(TestSupport.smolLM2)
        let folder = TestSupport.tempDir("gptq-client") + "/smollm2"
        try smelt(["quantize", source, folder, "--format", "gptq"])
        let text = "The capital of France is Paris, and the capital of Germany is Berlin."
        let err = try compare(folder, text: text)
        let stored = try compare(folder, text: text, f32Scales: false)
        print("transformers + gptqmodel vs smelt, SmolLM2 GPTQ int4 g128 from \(source): max relative difference \(err) (f16 products: \(stored))")
        XCTAssertLessThan(err, 1e-3)
    }
}
