import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// SmolLM2-135M-Instruct Q4_1 (`make models` fetches it into .cache/): our reader against
/// gguf-py's reading of the same file, and our writer's copies as gguf-py reads them.
final class GGUFRealModelTests: XCTestCase {
    var dir = ""
    let model = TestSupport.smolLM2

    override func setUpWithError() throws {
        try TestSupport.requireModel(model)
        dir = TestSupport.tempDir("gguf-real")
    }

    override func tearDown() { if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) } }

    func testReaderMatchesGGUFPy() throws {
        let f = try GGUFReader.readFile(model)
        XCTAssertEqual(f.tensors.count, 272)
        // Every key, type and value (all 49152 tokens, token types and 48900 merges exactly),
        // every tensor's name, type, shape, offset and size as gguf-py reads them.
        try GGUFJSON.assertMatches(f, try GGUFJSON.pythonDump(model, hexLimit: 0))
        let g = try GGUFReader.read(model)
        XCTAssertEqual(g.architecture, "llama")
        XCTAssertEqual(g.hyperparameters.blockCount, 30)
        XCTAssertEqual(g.hyperparameters.embeddingLength, 576)
        XCTAssertEqual(g.hyperparameters.headCountKV, 3)
        XCTAssertEqual(g.hyperparameters.ropeFreqBase, 100_000)
        XCTAssertEqual(g.tokenizer.tokens.count, 49152)
        XCTAssertEqual(g.tokenizer.merges.count, 48900)
        XCTAssertEqual(g.tokenizer.model, "gpt2")
        XCTAssertEqual(g.tokenizer.eosTokenID, 2)
        XCTAssertEqual(g.bytesByDType.map(\.dtype), [.q4_1, .q8_0, .f32])
    }

    func testRoundTripIsIdenticalPerGGUFPyAndByteForByte() throws {
        let graph = try GGUFReader.read(model)
        let out = "\(dir)/copy.gguf"
        try GGUFWriter.write(graph, to: out)
        let r = try TestSupport.python(["golden/check_gguf.py", "same", model, out])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        try GGUFJSON.assertSameContent(try GGUFReader.read(out), graph)
        // llama.cpp wrote the original with the layout we use: the whole file comes out the same.
        XCTAssertTrue(try GGUFJSON.sameBytes(
            FileRegion(file: ReadableFile(path: out), offset: 0, byteCount: Paths.fileSize(out)!),
            FileRegion(file: ReadableFile(path: model), offset: 0, byteCount: Paths.fileSize(model)!)))
    }

    func testSplitWriteReadsBackAndSatisfiesGGUFPy() throws {
        let graph = try GGUFReader.read(model)
        let files = try GGUFWriter.write(graph, to: "\(dir)/smol.gguf", splitMaxSize: 40_000_000)
        XCTAssertEqual(files.count, 3)
        let r = try TestSupport.python(["golden/check_gguf.py", "split", model] + files)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        try GGUFJSON.assertSameContent(try GGUFReader.read(files[2]), graph)
        XCTAssertEqual(try GGUFReader.readFile(files[1]).metadata.count, 3)
    }

    func testInspectListsEveryTensor() throws {
        let r = try TestSupport.smelt(["inspect", "--tensors", "--json", model])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONParser.parse(r.stdout)
        XCTAssertEqual(json["format"]?.stringValue, "gguf")
        XCTAssertEqual(json["tensor_count"]?.intValue, 272)
        let names = json["tensors"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        XCTAssertEqual(names, try GGUFReader.read(model).tensors.map(\.name))
        XCTAssertEqual(json["metadata"]?["tokenizer.ggml.tokens"]?["count"]?.intValue, 49152)
        XCTAssertNil(json["metadata"]?["tokenizer.ggml.tokens"]?["values"])

        let text = try TestSupport.smelt(["inspect", "--tensors", model])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("tensors:       272"), text.stdout)
        XCTAssertTrue(text.stdout.contains("tokenizer.ggml.tokens (array of string) = 49152 values [\"<|endoftext|>\", \"<|im_start|>\""), text.stdout)
        XCTAssertTrue(text.stdout.contains("llama.block_count (uint32) = 30"), text.stdout)
        XCTAssertTrue(text.stdout.contains(#"tokenizer.chat_template (string) = (368 bytes of text) "{% for message in messages %}{% if loop.first and messages[0…""#), text.stdout)
        XCTAssertTrue(text.stdout.contains("blk.29.ffn_down.weight"), text.stdout)
        XCTAssertLessThan(text.stdout.utf8.count, 100_000, "long arrays must be summarized")
    }

    /// Quantized tensors leave GGUF dequantized, with values bit-identical to gguf-py's decoders.
    func testConvertToSafetensorsDequantizesLikeGGUFPy() throws {
        let out = "\(dir)/smol.safetensors"
        let r = try TestSupport.smelt(["convert", model, out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let py = try TestSupport.python(["-c", """
            import sys, numpy as np, safetensors
            from gguf import GGUFReader
            from gguf.quants import dequantize
            g = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
            ours = {n: v for n, v in safetensors.deserialize(open(sys.argv[2], 'rb').read())}
            for gname, hname in [('token_embd.weight', 'model.embed_tokens.weight'),
                                 ('blk.3.ffn_down.weight', 'model.layers.3.mlp.down_proj.weight'),
                                 ('blk.3.attn_norm.weight', 'model.layers.3.input_layernorm.weight')]:
                t = g[gname]
                want = dequantize(t.data, t.tensor_type).astype('<f4').reshape(-1)
                got = np.frombuffer(bytes(ours[hname]['data']), dtype='<f4')
                assert ours[hname]['dtype'] == 'F32', hname
                assert np.array_equal(want.view(np.uint32), got.view(np.uint32)), gname
            print('ok')
            """, model, out])
        XCTAssertEqual(py.status, 0, py.stdout + py.stderr)
    }

}
