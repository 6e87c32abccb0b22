import ArgumentParser
import Calibration
import Evaluator
import Formats
import Foundation

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Compute an importance matrix (llama-imatrix's GGUF layout) from a model run over a text.",
        discussion: """
            The text is tokenized and cut into chunks of --ctx tokens as `smelt perplexity` cuts it; \
            every chunk runs through the model, and for every linear layer's weight the sum of each \
            input column's squared activation and the token count are accumulated (the output head \
            included, under its weight's name: token_embd.weight when tied). The result is written as \
            a GGUF with <weight>.in_sum2 and <weight>.counts tensors and imatrix.* keys, the layout \
            llama.cpp's llama-imatrix writes: `llama-quantize --imatrix` reads it, and \
            `smelt quantize --imatrix` reads llama-imatrix's (and its legacy .dat files).
            """
    )

    @Argument(help: "The model (any format smelt reads).") var model: String
    @OptionGroup var eval: EvalOptions
    @Option(help: "Where to write the importance matrix (GGUF).") var output: String?
    @Flag(help: "Replace an existing output.") var force = false
    @Flag(help: "Print a JSON summary.") var json = false
    @OptionGroup var shard: ShardOptions

    func validate() throws {
        if shard.partial != nil && output != nil { throw ValidationError("give --output or --partial, not both") }
        if shard.partial == nil && output == nil { throw ValidationError("give --output FILE") }
    }

    func run() throws {
        try SmeltCLI.run {
            if let output, !force && Paths.exists(output) { throw OutputError.exists(path: output) }
            let started = Date()
            let loaded = try eval.load(model)
            let tokens = try eval.tokens(for: loaded.graph)
            let chunks = try Perplexity.chunks(of: tokens, ctx: eval.ctx, limit: eval.chunks, bos: eval.bosToken(loaded.graph))
            if let s = try shard.resolved() {
                let range = try ShardOptions.range(s, total: chunks.count)
                let progress = Terminal.ChunkProgress(label: "calibrate \(s.k)/\(s.n)")
                let t0 = Date()
                let nodes = try Calibrate.importanceNodes(model: loaded.model, chunks: chunks, range: range) { done, total in
                    progress.update(done: done, total: total, tokensPerSecond: Double(done * eval.ctx) / Date().timeIntervalSince(t0))
                }
                progress.finish()
                var tensors: [(String, [Double])] = []
                for (node, sums) in nodes {
                    for name in sums.sums.keys.sorted() {
                        let prefix = CalibrationPartial.prefix(node)
                        tensors.append((prefix + name + ImportanceMatrix.sumsSuffix, sums.sums[name]!))
                        tensors.append((prefix + name + ImportanceMatrix.countsSuffix, sums.countsOf(name).map(Double.init)))
                    }
                }
                let partial = PartialFile(
                    kind: .calibrate, shard: s.k, shards: s.n, chunks: range, totalChunks: chunks.count, ctx: eval.ctx,
                    fingerprint: try Fingerprint.parts(
                        kind: "calibrate", models: [("model", model)], tokens: tokens, textPath: eval.text, ctx: eval.ctx,
                        chunks: chunks.count, bos: eval.bosToken(loaded.graph), eval: eval),
                    paths: [model], text: eval.text ?? "", seconds: Date().timeIntervalSince(t0), threads: eval.threads,
                    tensors: tensors)
                try partial.write(to: shard.partial!)
                print(partial.summary(written: shard.partial!))
                return
            }
            let output = output!
            let progress = Terminal.ChunkProgress(label: "calibrate")
            let t0 = Date()
            let matrix = try Calibrate.importanceMatrix(model: loaded.model, chunks: chunks, dataset: eval.text ?? "") { done, total in
                progress.update(done: done, total: total, tokensPerSecond: Double(done * eval.ctx) / Date().timeIntervalSince(t0))
            }
            progress.finish()
            try matrix.write(to: output, replace: force)
            let secs = Date().timeIntervalSince(started)
            if json {
                print(JSONWriter.write(.object([
                    ("model", .string(model)), ("output", .string(output)), ("entries", .int(matrix.entries.count)),
                    ("chunks", .int(chunks.count)), ("ctx", .int(eval.ctx)), ("tokens", .int(chunks.count * eval.ctx)),
                    ("seconds", .double(secs)), ("system", SystemReport.json(threads: eval.threads)),
                ]), indent: 2))
            } else {
                print("wrote \(output): \(matrix.entries.count) weights, \(chunks.count) chunks of \(eval.ctx) tokens, "
                    + String(format: "%.1f s", secs))
            }
        }
    }
}
