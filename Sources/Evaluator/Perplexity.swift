import Foundation

/// Perplexity computed the way llama.cpp's `llama-perplexity` computes it: the whole text is
/// tokenized once and cut into chunks of `ctx` tokens; when the model adds BOS, BOS replaces each
/// chunk's first token; only the second half of each chunk is scored (token j+1 from the logits
/// at j, for j from ctx/2 to ctx−2); the estimate after each chunk is exp(mean NLL), and the
/// final one carries the standard error of the mean NLL, scaled by the PPL.
public enum Perplexity {
    /// One chunk's token ids, as evaluated (BOS already put in place).
    public static func chunks(of tokens: [Int32], ctx: Int, limit: Int?, bos: Int32?) throws -> [[Int32]] {
        guard ctx >= 4 else { throw EvaluatorError.badInput("--ctx must be at least 4, not \(ctx)") }
        let available = tokens.count / ctx
        guard available > 0 else {
            throw EvaluatorError.badInput("the text has \(tokens.count) tokens, fewer than one chunk of \(ctx)")
        }
        let n = min(available, limit ?? available)
        return (0..<n).map { c in
            var chunk = Array(tokens[(c * ctx)..<((c + 1) * ctx)])
            if let bos { chunk[0] = bos }
            return chunk
        }
    }

    /// The scored positions of a chunk: logits rows `first..<ctx-1`.
    public static func scoredRows(ctx: Int) -> Range<Int> { (ctx / 2)..<(ctx - 1) }

    /// Negative log-likelihood of `target` under one row of logits (log-softmax in double).
    static func nll(_ row: UnsafeBufferPointer<Float>, target: Int) -> Double {
        var mx = -Float.infinity
        for v in row { mx = max(mx, v) }
        var sum = 0.0
        for v in row { sum += Double(expf(v - mx)) }
        return -(Double(row[target] - mx) - log(sum))
    }

    /// Running totals and the final figure.
    public struct Accumulator: Sendable {
        public private(set) var count = 0
        private var sum = 0.0
        private var sumSquares = 0.0

        public init() {}

        public mutating func add(_ nll: Double) {
            sum += nll
            sumSquares += nll * nll
            count += 1
        }

        public var meanNLL: Double { count > 0 ? sum / Double(count) : .nan }
        public var ppl: Double { exp(meanNLL) }
        /// Standard error of the PPL estimate (delta method: PPL × stderr of the mean NLL).
        public var pplError: Double {
            guard count > 1 else { return .nan }
            let mean = meanNLL
            let variance = sumSquares / Double(count) - mean * mean
            return variance > 0 ? (variance / Double(count - 1)).squareRoot() * ppl : 0
        }
    }

    public struct Result: Sendable {
        public let ctx: Int
        public let chunkPPL: [Double]
        public let ppl: Double
        public let pplError: Double
        public let tokensScored: Int
        public let tokensEvaluated: Int
        public let seconds: Double
        public var tokensPerSecond: Double { Double(tokensEvaluated) / seconds }
    }

    /// The chunks shard `k` of `n` evaluates: contiguous runs, the first `count % n` shards one
    /// chunk longer than the rest (shard k starts at k·count/n rounded down, exactly).
    public static func shardRange(_ k: Int, of n: Int, chunks count: Int) -> Range<Int> {
        (k * count / n)..<((k + 1) * count / n)
    }

    /// Runs the evaluation. `progress(chunkIndex, chunkCount, runningPPL, tokensPerSecond)` is
    /// called after each chunk.
    public static func run(
        model: LanguageModel, tokens: [Int32], ctx: Int, chunks limit: Int?, bos: Int32?,
        progress: (Int, Int, Double, Double) -> Void = { _, _, _, _ in }
    ) throws -> Result {
        let all = try chunks(of: tokens, ctx: ctx, limit: limit, bos: bos)
        let start = Date()
        var acc = Accumulator()
        let scored = try score(model: model, chunks: all, range: all.indices) { c, nlls in
            for v in nlls { acc.add(v) }
            progress(c, all.count, acc.ppl, Double((c + 1) * ctx) / Date().timeIntervalSince(start))
        }
        return result(ctx: ctx, perChunkNLL: scored, seconds: Date().timeIntervalSince(start))
    }

    /// Scores the chunks in `range` and returns each one's NLLs, scored positions in order.
    /// `chunkDone(chunkIndex, nlls)` is called after each chunk.
    public static func score(
        model: LanguageModel, chunks: [[Int32]], range: Range<Int>, chunkDone: (Int, [Double]) -> Void = { _, _ in }
    ) throws -> [[Double]] {
        guard let ctx = chunks.first?.count else { return [] }
        let rows = scoredRows(ctx: ctx)
        var out: [[Double]] = []
        for c in range {
            let chunk = chunks[c]
            let logits = try model.logits(tokens: chunk, outputRows: rows)
            let vocab = model.config.vocabSize
            // Rows scored on every thread, then kept in row order (the same sums as one thread).
            var nlls = [Double](repeating: 0, count: rows.count)
            logits.withUnsafeBufferPointer { all in
                nlls.withUnsafeMutableBufferPointer { out in
                    Ops.parallelRows(rows.count, threads: model.threads) { part in
                        for i in part {
                            let row = UnsafeBufferPointer(rebasing: all[(i * vocab)..<((i + 1) * vocab)])
                            out[i] = nll(row, target: Int(chunk[rows.lowerBound + i + 1]))
                        }
                    }
                }
            }
            out.append(nlls)
            chunkDone(c, nlls)
        }
        return out
    }

    /// The result from every chunk's NLLs in chunk order: the positions are added one by one in
    /// that order, so a run cut into shards and merged adds the same numbers in the same order as
    /// one run and gets the same bits.
    public static func result(ctx: Int, perChunkNLL: [[Double]], seconds: Double) -> Result {
        var acc = Accumulator()
        var perChunk: [Double] = []
        for nlls in perChunkNLL {
            for v in nlls { acc.add(v) }
            perChunk.append(acc.ppl)
        }
        return Result(
            ctx: ctx, chunkPPL: perChunk, ppl: acc.ppl, pplError: acc.pplError, tokensScored: acc.count,
            tokensEvaluated: perChunkNLL.count * ctx, seconds: seconds)
    }
}
