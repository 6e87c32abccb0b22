import Calibration
import Foundation
import Formats
import Quantization
import TensorGraph
import TestSupport
import XCTest

/// llama.cpp's file types as data (formats/recipes/*.json) and the plans they give.
final class FileTypeMixTests: XCTestCase {
    func testEveryFileTypeParses() {
        XCTAssertEqual(
            FileTypeMix.all.map(\.name),
            ["Q4_0", "Q4_1", "Q8_0", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S",
             "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "MXFP4_MOE"])
        // llama_ftype numbers (llama.h).
        XCTAssertEqual(FileTypeMix.all.map(\.fileType), [2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 25, 30, 38])
        XCTAssertEqual(FileTypeMix.named("q4_k_m")?.name, "Q4_K_M")
        XCTAssertEqual(FileTypeMix.named("Q4_K")?.name, "Q4_K_M")
        XCTAssertEqual(FileTypeMix.named("q3_k")?.name, "Q3_K_M")
        XCTAssertEqual(FileTypeMix.named("iq4_xs")?.defaultType, .iq4_XS)
        XCTAssertNil(FileTypeMix.named("Q7_K"))
        XCTAssertEqual(FileTypeMix.fallbacks[.q4_K], .q5_0)
        XCTAssertEqual(FileTypeMix.fallbacks[.iq4_XS], .iq4_NL)
        XCTAssertFalse(FileTypeMix.named("Q4_0")!.mixByDefault)
        XCTAssertTrue(FileTypeMix.named("Q4_K_S")!.mixByDefault)
    }

    /// `more_bits` picks the layers llama-quantize gave Q6_K in SmolLM2's Q4_K_M (30 layers; read
    /// from its output with gguf-py when the rule was written).
    func testMoreBitsLayers() {
        let picked = (0..<30).filter { FileTypeMix.Layers.moreBits.contains($0, 30) }
        XCTAssertEqual(picked, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29])
    }

    /// A small Llama: 8 layers, hidden 256, feed-forward 704 (not a multiple of 256), 8 query heads
    /// per 2 key/value heads, tied embedding; tensors listed in name order (blk.1, blk.10 … as
    /// some files are) to check that positions follow layer numbers.
    func graph(ffn: Int = 704, layers: Int = 8) throws -> TensorGraph {
        var tensors = [try Fixtures.f32Tensor("token_embd.weight", shape: [64, 256], [Float](repeating: 0.5, count: 64 * 256))]
        let names = (0..<layers).map(String.init).sorted()
        for l in names {
            for (n, shape) in [("attn_norm", [256]), ("attn_q", [256, 256]), ("attn_k", [64, 256]), ("attn_v", [64, 256]),
                               ("attn_output", [256, 256]), ("ffn_gate", [ffn, 256]), ("ffn_up", [ffn, 256]), ("ffn_down", [256, ffn])] {
                let count = shape.reduce(1, *)
                tensors.append(try Fixtures.f32Tensor("blk.\(l).\(n).weight", shape: shape, [Float](repeating: 0.25, count: count)))
            }
        }
        var g = try TensorGraph(architecture: "llama", tensors: tensors)
        g.hyperparameters.blockCount = layers
        g.hyperparameters.headCount = 8
        g.hyperparameters.headCountKV = 2
        return g
    }

    func targets(_ plan: [ModelQuantizer.Entry]) -> [String: DType] {
        Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0.target) })
    }

    func testQ4_K_MPlan() throws {
        let g = try graph()
        let plan = ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: FileTypeMix.named("Q4_K_M")!))
        let t = targets(plan)
        XCTAssertEqual(t["token_embd.weight"], .q6_K)  // tied: the output head's rule
        XCTAssertEqual(t["blk.0.attn_norm.weight"], .f32)
        // more_bits over 8 layers: i < 1, i ≥ 7, (i - 1) % 3 == 2 → 0, 3, 6, 7.
        for l in 0..<8 {
            XCTAssertEqual(t["blk.\(l).attn_v.weight"], [0, 3, 6, 7].contains(l) ? .q6_K : .q4_K, "layer \(l)")
            XCTAssertEqual(t["blk.\(l).attn_q.weight"], .q4_K)
            // ffn_down's rows are 704 long: Q6_K falls back to Q8_0, Q4_K to Q5_0.
            XCTAssertEqual(t["blk.\(l).ffn_down.weight"], [0, 3, 6, 7].contains(l) ? .q8_0 : .q5_0, "layer \(l)")
            XCTAssertEqual(t["blk.\(l).ffn_up.weight"], .q4_K)
        }
        let down = plan.first { $0.name == "blk.1.ffn_down.weight" }!
        XCTAssertEqual(down.note, "row length 704 is not a multiple of Q4_K's block of 256: fallback Q5_0")
        XCTAssertEqual(down.role, .ffnDown)
        XCTAssertNotNil(plan.first { $0.name == "blk.0.attn_v.weight" }!.mix)
        // --pure: one type, fallbacks still apply.
        let pure = targets(ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: FileTypeMix.named("Q4_K_M")!, pure: true)))
        XCTAssertEqual(pure["token_embd.weight"], .q4_K)
        XCTAssertEqual(pure["blk.0.attn_v.weight"], .q4_K)
        XCTAssertEqual(pure["blk.0.ffn_down.weight"], .q5_0)
    }

    func testGroupedQueryAndImatrixRules() throws {
        let g = try graph()
        let q2 = targets(ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: FileTypeMix.named("Q2_K")!)))
        XCTAssertEqual(q2["blk.0.attn_v.weight"], .q4_K)  // 8 / 2 = 4 query heads per key/value head
        XCTAssertEqual(q2["blk.0.attn_output.weight"], .q3_K)
        XCTAssertEqual(q2["blk.0.attn_q.weight"], .q2_K)
        XCTAssertEqual(q2["blk.0.ffn_down.weight"], .q4_0)  // Q3_K, rows of 704: fallback Q4_0
        let xs = FileTypeMix.named("IQ4_XS")!
        let plain = targets(ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: xs)))
        XCTAssertEqual(plain["blk.0.attn_v.weight"], .q5_K)
        XCTAssertEqual(plain["blk.0.ffn_down.weight"], .q5_1)  // Q5_K (first eighth, no imatrix) → Q5_1
        XCTAssertEqual(plain["blk.1.ffn_down.weight"], .iq4_NL)
        let withImatrix = targets(ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: xs, hasImatrix: true)))
        XCTAssertEqual(withImatrix["blk.0.ffn_down.weight"], .iq4_NL)
        // Legacy Q4_0: pure unless --exact-ggml; then the output head and, with an imatrix, the
        // first eighth of ffn_down.
        let q40 = FileTypeMix.named("Q4_0")!
        XCTAssertEqual(targets(ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: q40)))["token_embd.weight"], .q4_0)
        let exact = targets(ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: q40, exactGGML: true, hasImatrix: true)))
        XCTAssertEqual(exact["token_embd.weight"], .q6_K)
        XCTAssertEqual(exact["blk.0.ffn_down.weight"], .q4_1)
        XCTAssertEqual(exact["blk.1.ffn_down.weight"], .q4_0)
    }

    /// Rows no fallback divides: F16 with --exact-ggml (llama-quantize's last resort), F32 otherwise.
    func testLastResort() throws {
        let g = try graph(ffn: 48, layers: 1)  // one layer: no "first eighth", IQ4_XS everywhere
        let xs = FileTypeMix.named("IQ4_XS")!
        let a = ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: xs)).first { $0.name == "blk.0.ffn_down.weight" }!
        XCTAssertEqual(a.target, .f32)
        XCTAssertEqual(a.note, "row length 48 is not a multiple of IQ4_XS's block of 256 (nor its fallbacks'): F32")
        let b = ModelQuantizer.plan(g, recipe: .builtIn(), request: .init(mix: xs, exactGGML: true)).first { $0.name == "blk.0.ffn_down.weight" }!
        XCTAssertEqual(b.target, .f16)
    }

    func testBadRecipeFilesAreDescribed() {
        XCTAssertThrowsError(try FileTypeMix.parse(#"{"name": "X", "file_type": 1, "type": "q4_k", "rules": [{"role": "attn_z", "type": "q6_k"}]}"#, origin: "x.json")) { e in
            XCTAssertTrue("\(e)".contains("x.json"), "\(e)")
            XCTAssertTrue("\(e)".contains("\"role\" must be one of"), "\(e)")
        }
        XCTAssertThrowsError(try FileTypeMix.parse(#"{"name": "X", "file_type": 1, "type": "iq2_xxs"}"#, origin: "y.json"))
        XCTAssertThrowsError(try FileTypeMix.parse(#"{"name": "X", "file_type": 1, "type": "q4_k", "rules": [{"role": "attn_v", "type": "q6_k", "layer": "first"}]}"#, origin: "z.json")) { e in
            XCTAssertTrue("\(e)".contains("unknown key \"layer\""), "\(e)")
        }
    }

    /// The CLI: file type names in either case, the fallback summary, unknown names listed.
    func testCLI() throws {
        let dir = TestSupport.tempDir("mix")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var g = try graph(layers: 2)
        g.metadata["general.architecture"] = .string("llama")
        let src = "\(dir)/in.gguf"
        try GGUFWriter.write(GGUFMetadata.applying(to: g), to: src)
        let r = try TestSupport.smelt(["quantize", src, "\(dir)/out.gguf", "--type", "q4_k_m", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Q4_K_M mix"), r.stdout)
        XCTAssertTrue(r.stdout.contains("fallback: 1 tensor: row length 704 is not a multiple of Q4_K's block of 256: fallback Q5_0"), r.stdout)
        let back = try GGUFReader.read("\(dir)/out.gguf")
        XCTAssertEqual(back["blk.1.attn_q.weight"]?.dtype, .q4_K)
        XCTAssertEqual(back.metadata["general.file_type"], .uint32(15))
        // inspect shows the mix by role.
        let i = try TestSupport.smelt(["inspect", "\(dir)/out.gguf"])
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("mix:           Q4_K_M, "), i.stdout)
        XCTAssertTrue(i.stdout.contains("ffn_down"), i.stdout)
        let summary = FileTypeMix.summary(of: back)
        XCTAssertEqual(summary.fileType, "Q4_K_M")
        let down = summary.roles.first { $0.role == "ffn_down" }!
        XCTAssertEqual(down.tensors, 2)
        XCTAssertEqual(Set(down.types.map(\.type)), [.q5_0, .q8_0])
        let bad = try TestSupport.smelt(["quantize", src, "\(dir)/x.gguf", "--type", "q4_k_x"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("unknown --type 'q4_k_x'; known: Q4_0, Q4_1, Q8_0"), bad.stderr)
    }
}

