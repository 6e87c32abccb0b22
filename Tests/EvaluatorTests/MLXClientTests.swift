@testable import Evaluator
import Foundation
import TestSupport
import XCTest

/// MLX folders Smelt writes, loaded by the real client: `mlx_lm` (pip `mlx[cpu]` + `mlx-lm`, no
/// torch) computes the logits of a sentence (`scripts/mlx_logits.py`, model cast to f32) and they
/// must match Smelt's forward pass on the same folder within 1e-3 of the largest logit.
/// The packages are not part of `make test`: these tests run when `SMELT_MLX_PYTHON` names a
/// Python that has them, and skip (with a banner) otherwise.
final class MLXClientTests: XCTestCase {
    var mlxPython: String {
        get throws { try ClientLogits.python("SMELT_MLX_PYTHON", banner: "an mlx_lm client check (a Python with mlx[cpu] and mlx-lm)") }
    }

    /// mlx_lm's logits for `folder` on `text`, and Smelt's for the same ids; returns the largest
    /// difference relative to the largest mlx_lm logit.
    func compare(_ folder: String, text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        try ClientLogits.compare(
            python: try mlxPython, script: "mlx_logits.py", client: "mlx_lm", folder: folder, arguments: ["--text", text, "--f32"],
            file: file, line: line
        ).error
    }

    func mlxFolder(from source: String, _ extra: [String], label: String) throws -> String {
        let out = TestSupport.tempDir("mlx-client") + "/\(label)"
        let r = try TestSupport.smelt(["convert", source, out, "--format", "mlx"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    /// The tiny random Llama (golden/tiny/llama, f32) quantized by Smelt to MLX 4-bit g32.
    func testTinyLlamaMLX4Bit() throws {
        _ = try mlxPython
        let folder = try mlxFolder(from: TestSupport.path("golden/tiny/llama"), ["--group-size", "32"], label: "llama-4bit")
        let err = try compare(folder, text: "hello world, this is a test")
        print("mlx_lm vs smelt, tiny llama MLX 4-bit g32: max relative difference \(err)")
        XCTAssertLessThan(err, 1e-3)
    }

    /// The tiny Llama at 3 and 6 bits (codes straddling uint32 words) and 8 bits, group 32.
    func testTinyLlamaMLXOtherWidths() throws {
        _ = try mlxPython
        for bits in ["3", "6", "8", "2"] {
            let folder = try mlxFolder(
                from: TestSupport.path("golden/tiny/llama"), ["--group-size", "32", "--bits", bits], label: "llama-\(bits)bit")
            let err = try compare(folder, text: "hello world, this is a test")
            print("mlx_lm vs smelt, tiny llama MLX \(bits)-bit g32: max relative difference \(err)")
            XCTAssertLessThan(err, 1e-3, "\(bits) bits")
        }
    }

    /// The tiny Llama quantized by `quantize --format mlx --method gptq` (4-bit, groups of 64
    /// where the row allows and 32 elsewhere, so config.json carries per-layer overrides; and
    /// 3-bit g32 --sym), loaded by mlx_lm.
    func testTinyLlamaGPTQ() throws {
        _ = try mlxPython
        for extra in [[String](), ["--bits", "3", "--group-size", "32", "--sym"]] {
            let folder = TestSupport.tempDir("mlx-client") + "/gptq"
            let r = try TestSupport.smelt([
                "quantize", TestSupport.path("golden/tiny/llama"), folder, "--format", "mlx", "--method", "gptq",
                "--calibration-text", TestSupport.calibrationText, "--ctx", "32", "--chunks", "4", "--force",
            ] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let err = try compare(folder, text: "hello world, this is a test")
            print("mlx_lm vs smelt, tiny llama MLX GPTQ \(extra): max relative difference \(err)")
            XCTAssertLessThan(err, 1e-3, "\(extra)")
        }
    }

    /// Any MLX folder named by `SMELT_MLX_FOLDER` (for example one `scripts/mlx_table.sh` made),
    /// loaded by mlx_lm; skipped when the variable is not set.
    func testFolderFromEnvironment() throws {
        _ = try mlxPython
        guard let folder = ProcessInfo.processInfo.environment["SMELT_MLX_FOLDER"], !folder.isEmpty else {
            throw XCTSkip("SMELT_MLX_FOLDER is not set")
        }
        let err = try compare(folder, text: "The capital of France is Paris, and the capital of Germany is Berlin.")
        print("mlx_lm vs smelt, \(folder): max relative difference \(err)")
        XCTAssertLessThan(err, 1e-3)
    }

    /// SmolLM2-135M Q4_1 GGUF moved exactly to MLX (4-bit g32, the embedding 8-bit), loaded by mlx_lm.
    func testSmolLM2FromGGUF() throws {
        _ = try mlxPython
        let gguf = try TestSupport.requireModel(TestSupport.smolLM2)
        let folder = try mlxFolder(from: gguf, ["--exact"], label: "smollm2-q4_1")
        let err = try compare(folder, text: "The capital of France is Paris, and the capital of Germany is Berlin.")
        print("mlx_lm vs smelt, SmolLM2 Q4_1 → MLX: max relative difference \(err)")
        XCTAssertLessThan(err, 1e-3)
    }
}
