import ArgumentParser
import Architectures
import Formats
import Foundation
import TensorGraph
import Tokenizers

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a text file into token ids with a model's tokenizer (byte-level BPE or SentencePiece).",
        discussion: """
            MODEL is any model `smelt inspect` opens that carries a tokenizer: GGUF \
            tokenizer.ggml.model = gpt2 (byte-level BPE) or llama (SentencePiece), or a Hugging Face \
            folder's tokenizer.model (SentencePiece) or tokenizer.json. Special tokens written in the text (control and \
            user-defined tokens such as <|im_start|>) become their ids. BOS is prepended when the \
            model asks for it (add_bos_token) unless --no-bos. Prints the ids on one line separated \
            by spaces, or with --json as {"count": N, "ids": [...]}; timings go to stderr.
            """
    )

    @Argument(help: "The model file or folder.") var model: String
    @Option(help: "The text file to tokenize ('-' for standard input).") var text: String
    @Flag(help: "Print {\"count\": N, \"ids\": [...]} instead of bare ids.") var json = false
    @Flag(help: "Do not prepend BOS even if the model asks for it.") var noBos = false

    func run() throws {
        try SmeltCLI.run {
            let started = Date()
            let (_, graph) = try FormatRegistry.open(model)
            let (data, encode) = try InputError.naming(model) {
                let (data, metadata) = try TokenizerJSON.tokenizerAndMetadata(of: graph)
                return (data, try TextEncoder.encoder(for: data, metadata: metadata))
            }
            let loaded = Date()
            let bytes: [UInt8]
            if text == "-" {
                bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
            } else {
                guard let data = FileManager.default.contents(atPath: text) else {
                    throw ValidationError("cannot read text file '\(text)'")
                }
                bytes = [UInt8](data)
            }
            let t0 = Date()
            let ids = encode(bytes, noBos ? false : nil, true)
            let secs = Date().timeIntervalSince(t0)
            var line = ids.map(String.init).joined(separator: json ? ", " : " ")
            if json { line = "{\"count\": \(ids.count), \"ids\": [\(line)]}" }
            print(line)
            Terminal.printErr(String(
                format: "tokenize: %d tokens from %d bytes in %.3f s (%.0f tokens/s); tokenizer (%@, %d tokens) loaded in %.3f s",
                ids.count, bytes.count, secs, secs > 0 ? Double(ids.count) / secs : 0,
                data.model == "llama" ? "sentencepiece" : (data.preTokenizer ?? "default"), data.tokens.count,
                loaded.timeIntervalSince(started)))
        }
    }
}
