import Architectures
import Formats
import TensorGraph
import TestSupport
import XCTest

/// What the commands say about a model whose architecture has no unit, or whose configuration
/// lacks or contradicts a key: a clear error (exit 2) naming the architecture or the key, and no
/// output.
final class ArchitectureErrorTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = TestSupport.tempDir("arch-errors") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// golden/tiny/llama copied with its config.json edited by `edit`.
    func folder(_ name: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let out = "\(dir)/\(name)"
        try FileManager.default.copyItem(atPath: TestSupport.path("golden/tiny/llama"), toPath: out)
        let url = URL(fileURLWithPath: "\(out)/config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: url)
        return out
    }

    /// The tiny Llama as GGUF with its metadata edited by `edit`.
    func gguf(_ name: String, _ edit: (inout Metadata) -> Void) throws -> String {
        let base = "\(dir)/base.gguf"
        if !FileManager.default.fileExists(atPath: base) {
            let r = try TestSupport.smelt(["convert", TestSupport.path("golden/tiny/llama"), base])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        var g = try GGUFReader.read(base)
        edit(&g.metadata)
        let out = "\(dir)/\(name).gguf"
        try GGUFWriter.write(g, to: out)
        return out
    }

    func assertFails(_ args: [String], output: String?, saying fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try TestSupport.smelt(args)
        XCTAssertEqual(r.status, 2, r.stderr, file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "stderr lacks \(f): \(r.stderr)", file: file, line: line) }
        if let output { XCTAssertFalse(FileManager.default.fileExists(atPath: output), output, file: file, line: line) }
    }

    func testUnknownHFModelTypeIsAnErrorListingTheSupportedOnes() throws {
        let src = try folder("mamba") { $0["model_type"] = "mamba2" }
        let supported = ArchitectureRegistry.hfModelTypes
        XCTAssertTrue(supported.contains("llama") && supported.contains("gemma3_text"), "\(supported)")
        try assertFails(["convert", src, "\(dir)/m.gguf"], output: "\(dir)/m.gguf",
                        saying: ["architecture 'mamba2' is not supported", "supported: " + supported.joined(separator: ", ")])
        // Every command that needs the architecture says the same.
        try assertFails(["perplexity", src, "--text", TestSupport.wikiText, "--ctx", "16", "--chunks", "1"], output: nil,
                        saying: ["architecture 'mamba2' is not supported"])
        try assertFails(["quantize", src, "\(dir)/q.gguf", "--type", "q8_0"], output: "\(dir)/q.gguf",
                        saying: ["architecture 'mamba2' is not supported"])
    }

    func testContainerConversionIsOptIn() throws {
        let src = try folder("mamba") { $0["model_type"] = "mamba2" }
        let r = try TestSupport.smelt(["convert", "--container", src, "\(dir)/m.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("note: container conversion of architecture 'mamba2'"), r.stderr)
        XCTAssertNotNil(try GGUFReader.read("\(dir)/m.gguf")["model.layers.0.self_attn.q_proj.weight"])
        // A copy within the Hugging Face side needs no architecture.
        let copy = try TestSupport.smelt(["convert", src, "\(dir)/m.safetensors"])
        XCTAssertEqual(copy.status, 0, copy.stderr)
        XCTAssertEqual(try SafetensorsGraph.read("\(dir)/m.safetensors").tensors.count, try HFFolder.read(src).tensors.count)
    }

    func testMissingModelTypeIsNamed() throws {
        let src = try folder("untyped") { $0["model_type"] = nil }
        try assertFails(["convert", src, "\(dir)/u.gguf"], output: "\(dir)/u.gguf", saying: ["lacks 'model_type'"])
    }

    func testMissingAndContradictoryHFKeysAreNamed() throws {
        let missing = try folder("no-layers") { $0["num_hidden_layers"] = nil }
        try assertFails(["convert", missing, "\(dir)/a.gguf"], output: "\(dir)/a.gguf", saying: ["llama", "lacks 'num_hidden_layers'"])
        // 5 heads do not divide hidden_size 32 when head_dim is not stated.
        let heads = try folder("bad-heads") { $0["num_attention_heads"] = 5; $0["head_dim"] = nil }
        try assertFails(["convert", heads, "\(dir)/b.gguf"], output: "\(dir)/b.gguf",
                        saying: ["configuration key 'num_attention_heads'", "5 heads do not divide hidden_size 32"])
        // 3 key/value heads do not divide 4 attention heads.
        let kv = try folder("bad-kv") { $0["num_key_value_heads"] = 3 }
        try assertFails(["convert", kv, "\(dir)/c.gguf"], output: "\(dir)/c.gguf",
                        saying: ["configuration key 'num_key_value_heads'", "3 key/value heads do not divide 4"])
        let type = try folder("bad-type") { $0["hidden_size"] = "wide" }
        try assertFails(["convert", type, "\(dir)/d.gguf"], output: "\(dir)/d.gguf", saying: ["configuration key 'hidden_size'"])
    }

    func testUnknownGGUFArchitectureIsAnError() throws {
        let src = try gguf("mamba") { $0["general.architecture"] = .string("mamba2") }
        try assertFails(["convert", src, "\(dir)/hf"], output: "\(dir)/hf",
                        saying: ["architecture 'mamba2' is not supported", "supported: " + ArchitectureRegistry.names.joined(separator: ", ")])
        try assertFails(["perplexity", src, "--text", TestSupport.wikiText, "--ctx", "16", "--chunks", "1"], output: nil,
                        saying: ["architecture 'mamba2' is not supported"])
        // GGUF → GGUF is a copy and needs no architecture.
        XCTAssertEqual(try TestSupport.smelt(["convert", src, "\(dir)/copy.gguf"]).status, 0)
    }

    func testMissingAndContradictoryGGUFKeysAreNamedByTheirGGUFNames() throws {
        let missing = try gguf("no-blocks") { $0["llama.block_count"] = nil }
        try assertFails(["convert", missing, "\(dir)/hf"], output: "\(dir)/hf", saying: ["lacks 'llama.block_count'"])
        try assertFails(["perplexity", missing, "--text", TestSupport.wikiText, "--ctx", "16", "--chunks", "1"], output: nil,
                        saying: ["lacks 'llama.block_count'"])
        let kv = try gguf("bad-kv") { $0["llama.attention.head_count_kv"] = .uint32(3) }
        try assertFails(["perplexity", kv, "--text", TestSupport.wikiText, "--ctx", "16", "--chunks", "1"], output: nil,
                        saying: ["configuration key 'llama.attention.head_count_kv'", "3 key/value heads do not divide 4"])
    }
}

/// transformers 5 saves the chat template as chat_template.jinja beside tokenizer_config.json:
/// HF → GGUF reads it there when tokenizer_config.json has none, as gguf-py does.
final class ChatTemplateFileTests: XCTestCase {
    func testChatTemplateJinjaBecomesTheGGUFChatTemplate() throws {
        let dir = TestSupport.tempDir("chat-template")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = "\(dir)/qwen2"
        try FileManager.default.copyItem(atPath: TestSupport.path("golden/tiny/qwen2"), toPath: src)
        let url = URL(fileURLWithPath: "\(src)/tokenizer_config.json")
        var tc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let template = try XCTUnwrap(tc.removeValue(forKey: "chat_template") as? String)
        try JSONSerialization.data(withJSONObject: tc).write(to: url)
        try template.write(toFile: "\(src)/chat_template.jinja", atomically: true, encoding: .utf8)
        let r = try TestSupport.smelt(["convert", src, "\(dir)/q.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try GGUFReader.read("\(dir)/q.gguf").metadata["tokenizer.chat_template"], .string(template))
        // A folder copy keeps the file.
        XCTAssertEqual(try TestSupport.smelt(["convert", src, "\(dir)/copy"]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: "\(dir)/copy/chat_template.jinja", encoding: .utf8), template)
    }
}
