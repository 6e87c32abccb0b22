import Kernels

extension LanguageModel {
    /// One kind of matrix product in a forward pass, for the sgemm microbenchmark.
    public struct Product: Sendable {
        /// The product's shape as one thread computes it (attention) or whole (linear layers,
        /// which `BLAS.parallelSgemm` tiles over the threads).
        public var shape: SgemmBench.Shape
        /// How many times a forward pass of the sequence computes it.
        public var count: Int
        /// Linear layers are tiled over the threads; attention runs whole products side by side.
        public var tiled: Bool
        public var label: String
    }

    /// The matrix products of one forward pass over `tokens` tokens with logits for `outputRows`
    /// (perplexity's scored rows): the linear layers as the pass itself reports them (through
    /// `linearInputObserver`, running it once), and the attention products of every (head, query
    /// block) pair.
    public func products(tokens count: Int, outputRows: Range<Int>) throws -> [Product] {
        var seen: [String: Product] = [:]
        var order: [String] = []
        let previous = linearInputObserver
        defer { linearInputObserver = previous }
        linearInputObserver = { [weights] name, _, rows, columns in
            guard let w = try? weights.tensor(name), w.shape.count == 2 else { return }
            let shape = SgemmBench.Shape(m: rows, n: w.shape[0], k: columns, transposeB: true)
            let key = "\(rows)x\(w.shape[0])x\(columns)"
            if seen[key] == nil { order.append(key); seen[key] = Product(shape: shape, count: 0, tiled: true, label: name) }
            seen[key]!.count += 1
        }
        let tokens = (0..<count).map { Int32($0 % config.vocabSize) }
        _ = try logits(tokens: tokens, outputRows: outputRows)
        var out = order.map { seen[$0]! }
        // Attention: per layer and head, for each block of queries [r0, r1): scores = Q·Kᵀ
        // (block × r1, inner headDim), then scores · V (block × headDim, inner r1).
        let block = Self.attentionBlock
        var r0 = 0
        while r0 < count {
            let r1 = min(count, r0 + block)
            let n = config.layers * config.heads
            out.append(Product(shape: .init(m: r1 - r0, n: r1, k: config.headDim, transposeB: true), count: n, tiled: false,
                               label: "attention scores, keys 0..<\(r1)"))
            out.append(Product(shape: .init(m: r1 - r0, n: config.headDim, k: r1, transposeB: false), count: n, tiled: false,
                               label: "attention values, keys 0..<\(r1)"))
            r0 = r1
        }
        return out
    }
}
