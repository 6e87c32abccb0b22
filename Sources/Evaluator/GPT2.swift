/// GPT-2's forward pass: learned positions, LayerNorm, fused QKV with biases, GELU (tanh) MLP,
/// output head tied to the embedding (GGUF holds it as `output.weight`).
struct GPT2Forward: ForwardPass {
    func run(_ m: LanguageModel, tokens: [Int32], outputRows: Range<Int>) throws -> [Float] {
        let c = m.config, T = tokens.count, E = c.embedding
        guard T <= (try m.weights.tensor("position_embd.weight").shape[0]) else {
            throw EvaluatorError.badInput("GPT-2 sequence of \(T) tokens exceeds its \(c.contextLength) positions")
        }
        let ffn = try m.weights.tensor("blk.0.ffn_up.weight").shape[0]
        let x = Buffer(T * E), xn = Buffer(T * E), qkv = Buffer(T * 3 * E), att = Buffer(T * E), o = Buffer(T * E)
        let up = Buffer(T * ffn)
        let (layers, embedded) = try m.beginLayers(tokens, into: x.p)
        if embedded { try m.weights.withF32("position_embd.weight") { pos in Ops.add(x.p, pos, count: T * E) } }
        for l in layers {
            let b = "blk.\(l)."
            try layerNorm(m, b + "attn_norm", x.p, xn.p, rows: T)
            try m.linear(xn.p, rows: T, weight: b + "attn_qkv.weight", bias: b + "attn_qkv.bias", out: qkv.p)
            for r in 0..<T { m.roundToF16(qkv.p + r * 3 * E + E, count: 2 * E) }
            m.attention(q: qkv.p, qStride: 3 * E, k: qkv.p + E, v: qkv.p + 2 * E, kvStride: 3 * E, rows: T, heads: c.heads,
                        kvHeads: c.heads, headDim: c.headDim, out: att.p, outStride: E)
            try m.linear(att.p, rows: T, weight: b + "attn_output.weight", bias: b + "attn_output.bias", out: o.p)
            Ops.add(x.p, o.p, count: T * E)
            try layerNorm(m, b + "ffn_norm", x.p, xn.p, rows: T)
            try m.linear(xn.p, rows: T, weight: b + "ffn_up.weight", bias: b + "ffn_up.bias", out: up.p)
            Ops.gelu(up.p, count: T * ffn, threads: m.threads)
            try m.linear(up.p, rows: T, weight: b + "ffn_down.weight", bias: b + "ffn_down.bias", out: o.p)
            Ops.add(x.p, o.p, count: T * E)
        }
        if m.endLayers(x.p, count: T * E) { return [] }
        let R = outputRows.count
        try layerNorm(m, "output_norm", x.p + outputRows.lowerBound * E, xn.p, rows: R)
        var logits = [Float](repeating: 0, count: R * c.vocabSize)
        try logits.withUnsafeMutableBufferPointer { out in
            try m.linear(xn.p, rows: R, weight: m.outputWeight, out: out.baseAddress!)
        }
        return logits
    }

    private func layerNorm(_ m: LanguageModel, _ prefix: String, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int) throws {
        try m.weights.withF32(prefix + ".weight") { w in
            try m.weights.withF32(prefix + ".bias") { b in
                Ops.layerNorm(x, w, b, out, rows: rows, dim: m.config.embedding, eps: m.config.normEps, threads: m.threads)
            }
        }
    }
}
