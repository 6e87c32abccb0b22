import ArgumentParser
import Architectures
import Tokenizers
import Evaluator
import Formats
import Foundation
import TensorGraph

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a model on a text, computed as llama.cpp's llama-perplexity does.",
        discussion: """
            The whole text is tokenized, cut into chunks of --ctx tokens (BOS replaces each chunk's \
            first token when the model adds BOS), and the second half of every chunk is scored. \
            Prints the running estimate per chunk and the final `PPL = x ± stderr`. MODEL is any \
            model smelt reads (GGUF, Hugging Face folder, safetensors with config, Ingot); quantized \
            weights are dequantized one matrix at a time, activations are f32.
            """
    )

    @Argument(help: "The model.") var model: String
    @OptionGroup var eval: EvalOptions
    @OptionGroup var shard: ShardOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try SmeltCLI.run {
            let loaded = try eval.load(model)
            let tokens = try eval.tokens(for: loaded.graph)
            if let s = try shard.resolved() {
                let chunks = try Perplexity.chunks(of: tokens, ctx: eval.ctx, limit: eval.chunks, bos: eval.bosToken(loaded.graph))
                let range = try ShardOptions.range(s, total: chunks.count)
                let progress = Terminal.ChunkProgress(label: "perplexity \(s.k)/\(s.n)")
                let t0 = Date()
                let scored = try Perplexity.score(model: loaded.model, chunks: chunks, range: range) { c, _ in
                    let done = c - range.lowerBound + 1
                    progress.update(done: done, total: range.count, tokensPerSecond: Double(done * eval.ctx) / Date().timeIntervalSince(t0))
                }
                progress.finish()
                let partial = PartialFile(
                    kind: .perplexity, shard: s.k, shards: s.n, chunks: range, totalChunks: chunks.count, ctx: eval.ctx,
                    fingerprint: try Fingerprint.parts(
                        kind: "perplexity", models: [("model", model)], tokens: tokens, textPath: eval.text, ctx: eval.ctx,
                        chunks: chunks.count, bos: eval.bosToken(loaded.graph), eval: eval),
                    paths: [model], text: eval.text ?? "", seconds: Date().timeIntervalSince(t0), threads: eval.threads,
                    tensors: [("chunk_positions", scored.map { Double($0.count) }), ("nll", Array(scored.joined()))])
                try partial.write(to: shard.partial!)
                print(partial.summary(written: shard.partial!))
                return
            }
            let progress = Terminal.ChunkProgress(label: "perplexity")
            let bos = eval.bosToken(loaded.graph)
            if !json { print("\(model): \(tokens.count) tokens, ctx \(eval.ctx), threads \(eval.threads)") }
            var line = ""
            let result = try Perplexity.run(
                model: loaded.model, tokens: tokens, ctx: eval.ctx, chunks: eval.chunks, bos: bos
            ) { c, n, ppl, tps in
                progress.update(done: c + 1, total: n, tokensPerSecond: tps)
                if !json {
                    line += String(format: "[%d]%.4f,", c + 1, ppl)
                    if !Terminal.stdoutIsTTY || c + 1 == n { } else { }
                }
            }
            progress.finish()
            if json {
                print(JSONWriter.write(Self.json(result, model: model, threads: eval.threads), indent: 2))
            } else {
                print(line)
                print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.ppl, result.pplError))
                print(String(format: "%d chunks, %d tokens scored, %.1f s, %.1f tokens/s",
                             result.chunkPPL.count, result.tokensScored, result.seconds, result.tokensPerSecond))
            }
        }
    }
}

extension PerplexityCommand {
    /// The `--json` report (also what `smelt merge` writes for perplexity partials).
    static func json(_ result: Perplexity.Result, model: String, threads: Int) -> JSONValue {
        .object([
            ("model", .string(model)), ("ctx", .int(result.ctx)), ("chunks", .int(result.chunkPPL.count)),
            ("ppl", .double(result.ppl)), ("ppl_stderr", .double(result.pplError)),
            ("chunk_ppl", .array(result.chunkPPL.map(JSONValue.double))),
            ("tokens_scored", .int(result.tokensScored)), ("tokens_evaluated", .int(result.tokensEvaluated)),
            ("seconds", .double(result.seconds)), ("tokens_per_second", .double(result.tokensPerSecond)),
            ("system", SystemReport.json(threads: threads)),
        ])
    }
}

/// Options shared by the commands that run models.
struct EvalOptions: ParsableArguments {
    @Option(help: "The text to evaluate (UTF-8).") var text: String?
    @Option(name: .customLong("token-ids"), help: ArgumentHelp("Pre-tokenized input instead of --text: little-endian int32 token ids.", visibility: .hidden))
    var tokenIDs: String?
    @Option(help: "Tokens per chunk.") var ctx: Int = 512
    @Option(help: "Evaluate at most this many chunks (default: all).") var chunks: Int?
    @Option(help: "Threads for matrix products and element-wise work.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Keep dequantized weights between chunks (faster, uses the f32 size of the model in memory).")
    var cacheWeights = false
    @Option(help: ArgumentHelp(
        "Activations in products with quantized weights: f32 (exact) or q8 (rounded to 8 bits per block as llama.cpp's CPU backend does).",
        valueName: "f32|q8"))
    var activations: String = "f32"
    @Option(name: .customLong("kv"), help: ArgumentHelp(
        "Keys and values in attention: f32 (exact) or f16 (rounded as llama.cpp's default KV cache stores them).",
        valueName: "f32|f16"))
    var kv: String = "f32"
    @Option(name: .customLong("yarn-range"), help: ArgumentHelp(
        "YaRN's correction range: config (as transformers: rounded to whole dimensions unless the configuration sets truncate false) or rounded (always, as llama.cpp does).",
        valueName: "config|rounded"))
    var yarnRange: String = "config"
    @Flag(help: "Print the processor, the BLAS kernels in use and who chose them to stderr before running.")
    var verbose = false

    func validate() throws {
        guard (text == nil) != (tokenIDs == nil) else { throw ValidationError("give --text FILE") }
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4") }
        if let c = chunks, c < 1 { throw ValidationError("--chunks must be at least 1") }
        try Usage.oneOf("--activations", activations, ["f32", "q8"])
        try Usage.oneOf("--kv", kv, ["f32", "f16"])
        try Usage.oneOf("--yarn-range", yarnRange, ["config", "rounded"])
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func load(_ path: String) throws -> (model: LanguageModel, graph: TensorGraph) {
        if verbose && !Self.reported {
            Self.reported = true
            SystemReport.printVerbose(threads: threads)
        }
        let loaded = try ModelLoader.load(path, threads: threads, cacheDecoded: cacheWeights)
        // Evaluation reads f32 weights in place from the mapped file (ARCHITECTURE.md: where
        // Smelt maps files); conversion and quantization read with pread only.
        for t in loaded.graph.tensors { (t.storage as? FileRegion)?.file.permitMapping() }
        loaded.model.quantizeActivations = activations == "q8"
        loaded.model.roundKVToF16 = kv == "f16"
        loaded.model.yarnAlwaysRound = yarnRange == "rounded"
        return loaded
    }

    /// The system lines are printed once per process (drift loads two models).
    nonisolated(unsafe) static var reported = false

    /// The token ids of the text for this model.
    func tokens(for graph: TensorGraph) throws -> [Int32] {
        if let tokenIDs {
            let data = try Data(contentsOf: URL(fileURLWithPath: tokenIDs))
            return data.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)).map { Int32(littleEndian: $0) } }
        }
        return try TextTokens.tokenize(file: text!, graph: graph)
    }

    /// BOS when the model's tokenizer adds it (llama.cpp then puts it at each chunk's start).
    func bosToken(_ graph: TensorGraph) -> Int32? {
        guard graph.tokenizer.addBOS == true, let b = graph.tokenizer.bosTokenID else { return nil }
        return Int32(b)
    }
}

/// Text → token ids with the model's own tokenizer, as llama-perplexity tokenizes: BOS first when
/// the model adds it, special-token text left as plain text.
enum TextTokens {
    static func tokenize(file: String, graph: TensorGraph) throws -> [Int32] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw EvaluatorError.badInput("\(file): cannot read the text file")
        }
        let (tokenizer, metadata) = try TokenizerJSON.tokenizerAndMetadata(of: graph)
        let encode = try TextEncoder.encoder(for: tokenizer, metadata: metadata)
        return encode([UInt8](data), nil, false)
    }
}
