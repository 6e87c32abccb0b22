import Foundation

/// How far a candidate model's predictions drift from a base model's on the same text: both run
/// chunk by chunk over the same tokens (interleaved, so no logits file is kept), and every scored
/// position compares the two distributions.
public enum Drift {
    public struct Report: Sendable {
        public let ctx: Int
        public let chunks: Int
        public let positions: Int
        public let base: Perplexity.Accumulator
        public let candidate: Perplexity.Accumulator
        /// KL(base ‖ candidate) per position, sorted ascending.
        public let kld: [Double]
        public let kldMean: Double
        public let kldError: Double
        public let rmsDeltaP: Double
        public let top1Agreement: Double
        public let top1Error: Double
        public let seconds: Double
        /// One entry per chunk, in chunk order (what a report draws per chunk).
        public let perChunk: [ChunkSummary]

        public var pplRatio: Double { candidate.ppl / base.ppl }
        public var pplDifference: Double { candidate.ppl - base.ppl }

        public func kldPercentile(_ p: Double) -> Double {
            guard !kld.isEmpty else { return .nan }
            let idx = min(kld.count - 1, max(0, Int((p / 100 * Double(kld.count - 1)).rounded())))
            return kld[idx]
        }
        public var kldMedian: Double { kldPercentile(50) }

        /// The per-position KLDs counted in bins equal on a log scale (`binsPerDecade` to a
        /// factor of 10), from the decade holding the 1st percentile of the positive values (not
        /// below 1e-12) to the decade above the maximum; `below` counts the positions under
        /// `floor` (zeros included). Bins are [low, high), the last one closed.
        public func kldHistogram(binsPerDecade: Int = 8) -> (floor: Double, below: Int, bins: [(low: Double, high: Double, count: Int)]) {
            let positive = kld.drop { $0 <= 0 }
            guard let first = positive.first, let top = kld.last, top > 0 else { return (1e-12, kld.count, []) }
            let p1 = positive[positive.startIndex + (positive.count - 1) / 100]
            let lowDecade = max(-12, Int(Foundation.floor(log10(max(p1, first)) + 1e-9)))
            let highDecade = max(lowDecade + 1, Int(ceil(log10(top) - 1e-9)))
            let n = (highDecade - lowDecade) * binsPerDecade
            let edges = (0...n).map { pow(10, Double(lowDecade) + Double($0) / Double(binsPerDecade)) }
            var counts = [Int](repeating: 0, count: n)
            var below = 0
            for v in kld {
                if v < edges[0] { below += 1; continue }
                var b = Int(Foundation.floor((log10(v) - Double(lowDecade)) * Double(binsPerDecade)))
                b = min(n - 1, max(0, b))
                // log10 rounding at an edge: move to the bin whose [low, high) holds v.
                if v < edges[b] && b > 0 { b -= 1 } else if b < n - 1 && v >= edges[b + 1] { b += 1 }
                counts[b] += 1
            }
            return (edges[0], below, (0..<n).map { (edges[$0], edges[$0 + 1], counts[$0]) })
        }
        public var kldMax: Double { kld.last ?? .nan }
    }

    /// One chunk's figures: both models' PPL over its scored positions, its mean KLD and its
    /// top-1 agreement.
    public struct ChunkSummary: Sendable, Equatable {
        public let positions: Int
        public let pplBase: Double
        public let pplCandidate: Double
        public let kldMean: Double
        public let top1Agreement: Double
    }

    /// A row of logits' largest value, log Σ exp(x − max) (f32 terms summed in f64) and argmax.
    public static func logSumExp(_ r: UnsafeBufferPointer<Float>) -> (max: Float, lse: Double, argmax: Int) {
        var mx = -Float.infinity
        var arg = 0
        for (i, v) in r.enumerated() where v > mx { mx = v; arg = i }
        var sum = 0.0
        for v in r { sum += Double(expf(v - mx)) }
        return (mx, log(sum), arg)
    }

    /// KL(base ‖ candidate) of two rows of logits, given each row's `logSumExp`; negative
    /// rounding residue is returned as is (callers clamp).
    public static func kl(base: UnsafeBufferPointer<Float>, _ b: (max: Float, lse: Double, argmax: Int),
                          candidate: UnsafeBufferPointer<Float>, _ c: (max: Float, lse: Double, argmax: Int)) -> Double {
        var kl = 0.0
        for i in 0..<base.count {
            let lb = Double(base[i] - b.max) - b.lse
            let lc = Double(candidate[i] - c.max) - c.lse
            kl += exp(lb) * (lb - lc)
        }
        return kl
    }

    /// Compares one row: returns (KL(base‖cand), Δp of the target, top-1 agreement) and the NLLs.
    static func compare(base: UnsafeBufferPointer<Float>, candidate: UnsafeBufferPointer<Float>, target: Int)
        -> (kld: Double, deltaP: Double, same: Bool, nllBase: Double, nllCandidate: Double)
    {
        let b = logSumExp(base), c = logSumExp(candidate)
        let kl = Drift.kl(base: base, b, candidate: candidate, c)
        let lpb = Double(base[target] - b.max) - b.lse
        let lpc = Double(candidate[target] - c.max) - c.lse
        return (max(0, kl), exp(lpc) - exp(lpb), b.argmax == c.argmax, -lpb, -lpc)
    }

    /// One scored position's comparison.
    public struct Position: Sendable, Equatable {
        public var kld: Double
        public var deltaP: Double
        public var same: Bool
        public var nllBase: Double
        public var nllCandidate: Double

        public init(kld: Double, deltaP: Double, same: Bool, nllBase: Double, nllCandidate: Double) {
            self.kld = kld
            self.deltaP = deltaP
            self.same = same
            self.nllBase = nllBase
            self.nllCandidate = nllCandidate
        }
    }

    public static func run(
        base: LanguageModel, candidate: LanguageModel, tokens: [Int32], ctx: Int, chunks limit: Int?, bos: Int32?,
        progress: (Int, Int, Double) -> Void = { _, _, _ in }
    ) throws -> Report {
        let chunks = try Perplexity.chunks(of: tokens, ctx: ctx, limit: limit, bos: bos)
        let start = Date()
        let compared = try compare(base: base, candidate: candidate, chunks: chunks, range: chunks.indices) { ci in
            progress(ci, chunks.count, Double((ci + 1) * ctx * 2) / Date().timeIntervalSince(start))
        }
        return report(ctx: ctx, perChunk: compared, seconds: Date().timeIntervalSince(start))
    }

    /// Runs both models over the chunks in `range` and returns each chunk's positions in order.
    public static func compare(
        base: LanguageModel, candidate: LanguageModel, chunks: [[Int32]], range: Range<Int>,
        chunkDone: (Int) -> Void = { _ in }
    ) throws -> [[Position]] {
        guard base.config.vocabSize == candidate.config.vocabSize else {
            throw EvaluatorError.badInput("the models' vocabularies differ: \(base.config.vocabSize) vs \(candidate.config.vocabSize) tokens")
        }
        guard let ctx = chunks.first?.count else { return [] }
        let rows = Perplexity.scoredRows(ctx: ctx)
        let vocab = base.config.vocabSize
        var out: [[Position]] = []
        for ci in range {
            let chunk = chunks[ci]
            let lb = try base.logits(tokens: chunk, outputRows: rows)
            let lc = try candidate.logits(tokens: chunk, outputRows: rows)
            // Rows compared on every thread, kept in row order.
            var compared = [Position](repeating: Position(kld: 0, deltaP: 0, same: false, nllBase: 0, nllCandidate: 0), count: rows.count)
            lb.withUnsafeBufferPointer { b in
                lc.withUnsafeBufferPointer { c in
                    compared.withUnsafeMutableBufferPointer { out in
                        Ops.parallelRows(rows.count, threads: base.threads) { part in
                            for i in part {
                                let r = (i * vocab)..<((i + 1) * vocab)
                                let x = compare(base: UnsafeBufferPointer(rebasing: b[r]), candidate: UnsafeBufferPointer(rebasing: c[r]),
                                                target: Int(chunk[rows.lowerBound + i + 1]))
                                out[i] = Position(kld: x.kld, deltaP: x.deltaP, same: x.same, nllBase: x.nllBase, nllCandidate: x.nllCandidate)
                            }
                        }
                    }
                }
            }
            out.append(compared)
            chunkDone(ci)
        }
        return out
    }

    /// The report from every chunk's positions in chunk order, accumulated position by position
    /// in that order (so shards merged in chunk order give one run's bits).
    public static func report(ctx: Int, perChunk: [[Position]], seconds: Double) -> Report {
        var accB = Perplexity.Accumulator(), accC = Perplexity.Accumulator()
        var klds: [Double] = []
        var sumDp2 = 0.0, same = 0
        for x in perChunk.joined() {
            klds.append(x.kld)
            sumDp2 += x.deltaP * x.deltaP
            if x.same { same += 1 }
            accB.add(x.nllBase)
            accC.add(x.nllCandidate)
        }
        let chunkSummaries = perChunk.map { c -> ChunkSummary in
            var b = Perplexity.Accumulator(), d = Perplexity.Accumulator()
            var kl = 0.0, agree = 0
            for x in c {
                b.add(x.nllBase)
                d.add(x.nllCandidate)
                kl += x.kld
                if x.same { agree += 1 }
            }
            let n = Double(max(1, c.count))
            return ChunkSummary(positions: c.count, pplBase: b.ppl, pplCandidate: d.ppl, kldMean: kl / n, top1Agreement: Double(agree) / n)
        }
        let n = Double(klds.count)
        let mean = klds.reduce(0, +) / n
        let variance = klds.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(1, n - 1)
        let agree = Double(same) / n
        return Report(
            ctx: ctx, chunks: perChunk.count, positions: klds.count, base: accB, candidate: accC, kld: klds.sorted(),
            kldMean: mean, kldError: (variance / n).squareRoot(), rmsDeltaP: (sumDp2 / n).squareRoot(),
            top1Agreement: agree, top1Error: (agree * (1 - agree) / max(1, n - 1)).squareRoot(),
            seconds: seconds, perChunk: chunkSummaries)
    }
}
