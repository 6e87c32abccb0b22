/// The Llama family's forward pass (llama, mistral, SmolLM2; qwen2 with its q/k/v biases): RMSNorm,
/// rotary positions, grouped-query attention, SwiGLU MLP, tied or separate output head.
/// Weights are in GGUF layout: Llama's Q/K rows are permuted so rotation pairs are adjacent
/// (`interleavedRope`); Qwen2's are not permuted and rotate halves.
struct LlamaForward: ForwardPass {
    let interleavedRope: Bool

    func run(_ m: LanguageModel, tokens: [Int32], outputRows: Range<Int>) throws -> [Float] {
        let c = m.config, T = tokens.count, E = c.embedding
        let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim
        let ffn = try m.weights.tensor("blk.0.ffn_up.weight").shape[0]
        let x = Buffer(T * E), xn = Buffer(T * E), q = Buffer(T * qDim), k = Buffer(T * kvDim), v = Buffer(T * kvDim)
        let att = Buffer(T * qDim), o = Buffer(T * E), gate = Buffer(T * ffn), up = Buffer(T * ffn)
        let rope = RopeCache(positions: T, nRot: c.ropeDims, base: c.ropeBase)
        let (layers, _) = try m.beginLayers(tokens, into: x.p)
        for l in layers {
            let b = "blk.\(l)."
            try m.weights.withF32(b + "attn_norm.weight") { Ops.rmsNorm(x.p, $0, xn.p, rows: T, dim: E, eps: c.normEps, threads: m.threads) }
            try m.linear(xn.p, rows: T, weight: b + "attn_q.weight", bias: b + "attn_q.bias", out: q.p)
            try m.linear(xn.p, rows: T, weight: b + "attn_k.weight", bias: b + "attn_k.bias", out: k.p)
            try m.linear(xn.p, rows: T, weight: b + "attn_v.weight", bias: b + "attn_v.bias", out: v.p)
            Profile.measure("rope") {
            Ops.rope(q.p, rows: T, heads: c.heads, headDim: c.headDim, stride: qDim, nRot: c.ropeDims, base: c.ropeBase,
                     interleaved: interleavedRope, cache: rope)
            Ops.rope(k.p, rows: T, heads: c.kvHeads, headDim: c.headDim, stride: kvDim, nRot: c.ropeDims, base: c.ropeBase,
                     interleaved: interleavedRope, cache: rope)
            }
            m.roundToF16(k.p, count: T * kvDim)
            m.roundToF16(v.p, count: T * kvDim)
            m.attention(q: q.p, qStride: qDim, k: k.p, v: v.p, kvStride: kvDim, rows: T, heads: c.heads, kvHeads: c.kvHeads,
                        headDim: c.headDim, out: att.p, outStride: qDim)
            try m.linear(att.p, rows: T, weight: b + "attn_output.weight", out: o.p)
            Ops.add(x.p, o.p, count: T * E)
            try m.weights.withF32(b + "ffn_norm.weight") { Ops.rmsNorm(x.p, $0, xn.p, rows: T, dim: E, eps: c.normEps, threads: m.threads) }
            try m.linear(xn.p, rows: T, weight: b + "ffn_gate.weight", out: gate.p)
            try m.linear(xn.p, rows: T, weight: b + "ffn_up.weight", out: up.p)
            Profile.measure("swiglu") { Ops.swiglu(gate.p, up.p, count: T * ffn, threads: m.threads) }
            try m.linear(gate.p, rows: T, weight: b + "ffn_down.weight", out: o.p)
            Ops.add(x.p, o.p, count: T * E)
        }
        if m.endLayers(x.p, count: T * E) { return [] }
        let R = outputRows.count
        try m.weights.withF32("output_norm.weight") {
            Ops.rmsNorm(x.p + outputRows.lowerBound * E, $0, xn.p, rows: R, dim: E, eps: c.normEps, threads: m.threads)
        }
        var logits = [Float](repeating: 0, count: R * c.vocabSize)
        try logits.withUnsafeMutableBufferPointer { out in
            try m.linear(xn.p, rows: R, weight: m.outputWeight, out: out.baseAddress!)
        }
        return logits
    }
}
