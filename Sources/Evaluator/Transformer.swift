import Architectures

/// The decoder-only transformer every architecture unit describes with a `ForwardPlan`, built
/// from the shared blocks: embeddings (plus learned positions), per layer a norm, Q/K/V (one fused
/// projection or three, biases when the model has them), optional per-head Q/K RMSNorm, rotary
/// positions (interleaved or NeoX pairs), grouped-query causal attention, the output projection,
/// a second norm and a gated or plain MLP or a mixture of experts (`MixtureOfExperts.swift`);
/// attention sinks and sliding-window layers where the plan says; then the final norm and the
/// output head (tied to the embedding when the model has no `output.weight`). Weights are in GGUF
/// layout and names.
struct TransformerForward: ForwardPass {
    let plan: ForwardPlan

    func run(_ m: LanguageModel, tokens: [Int32], outputRows: Range<Int>) throws -> [Float] {
        let p = plan, T = tokens.count, E = p.embedding
        if p.learnedPositions {
            let positions = try m.weights.tensor("position_embd.weight").shape[0]
            guard T <= positions else {
                throw EvaluatorError.badInput("a sequence of \(T) tokens exceeds the model's \(positions) learned positions")
            }
        }
        let qDim = p.heads * p.headDim, kDim = p.kvHeads * p.headDim, vDim = p.kvHeads * p.valueDim
        let attDim = p.heads * p.valueDim
        // A mixture of experts sizes its own buffers per expert; a fused gate/up has both halves.
        let upRows = p.experts == nil ? try m.weights.tensor("blk.0.ffn_up.weight").shape[0] : 0
        let ffn = p.fusedGateUp ? upRows / 2 : upRows

        let x = Buffer(T * E), xn = Buffer(T * E), att = Buffer(T * attDim), o = Buffer(T * E), up = Buffer(T * upRows)
        let gate = p.gatedMLP ? Buffer(T * ffn) : nil
        // Q, K and V: views of one [T × (q + k + v)] buffer for a fused projection, else three.
        let qkvStride = qDim + kDim + vDim
        let fused = p.fusedQKV ? Buffer(T * qkvStride) : nil
        let separate = p.fusedQKV ? nil : (Buffer(T * qDim), Buffer(T * kDim), Buffer(T * vDim))
        let q = fused?.p ?? separate!.0.p
        let k = fused.map { $0.p + qDim } ?? separate!.1.p
        let v = fused.map { $0.p + qDim + kDim } ?? separate!.2.p
        let (qStride, kStride, vStride) = p.fusedQKV ? (qkvStride, qkvStride, qkvStride) : (qDim, kDim, vDim)
        var divisors: [Float]?
        // LongRoPE picks its factors by the sequence length, as llama.cpp does by the context.
        let factorsName = p.ropeFactorsLong.map { T > p.ropeLongAfter ? $0 : p.ropeFactorsShort ?? $0 } ?? p.ropeFreqFactors
        if let name = factorsName, m.weights.has(name) {
            let t = try m.weights.tensor(name)
            guard t.elementCount == p.ropeDims / 2 else { throw EvaluatorError.badShape(tensor: name, shape: t.shape, expected: [p.ropeDims / 2]) }
            divisors = try m.weights.withF32(name) { Array(UnsafeBufferPointer(start: $0, count: p.ropeDims / 2)) }
        }
        let yarn = p.ropeYarn?.yarnFrequencies(headDim: p.ropeDims, base: p.ropeBase, alwaysRound: m.yarnAlwaysRound)
        let globalRope = p.rope.map { _ in
            RopeCache(positions: T, nRot: p.ropeDims, base: p.ropeBase, divisors: divisors, linearFactor: p.ropeLinearFactor,
                      invFreqs: yarn?.invFreq, scale: (yarn?.attentionFactor ?? 1) * p.ropeScale)
        }
        // Sliding-window layers rotate with their own base, unscaled.
        let localRope = p.localRopeBase.map { RopeCache(positions: T, nRot: p.ropeDims, base: $0) }

        let (layers, embedded) = try m.beginLayers(tokens, into: x.p)
        if embedded && p.learnedPositions {
            try m.weights.withF32("position_embd.weight") { pos in Ops.add(x.p, pos, count: T * E) }
        }
        if embedded, let s = p.embeddingScale {
            for i in 0..<(T * E) { x.p[i] *= s }
        }
        for l in layers {
            let b = "blk.\(l)."
            let sliding = l < p.slidingLayers.count && p.slidingLayers[l]
            let rope = sliding ? (localRope ?? globalRope) : globalRope
            try norm(m, b + "attn_norm", x.p, xn.p, rows: T)
            if p.fusedQKV {
                try m.linear(xn.p, rows: T, weight: b + "attn_qkv.weight", bias: b + "attn_qkv.bias", out: q)
            } else {
                try m.linear(xn.p, rows: T, weight: b + "attn_q.weight", bias: b + "attn_q.bias", out: q)
                try m.linear(xn.p, rows: T, weight: b + "attn_k.weight", bias: b + "attn_k.bias", out: k)
                try m.linear(xn.p, rows: T, weight: b + "attn_v.weight", bias: b + "attn_v.bias", out: v)
            }
            if p.qkNorm {
                try headNorm(m, b + "attn_q_norm.weight", q, rows: T, heads: p.heads, stride: qStride)
                try headNorm(m, b + "attn_k_norm.weight", k, rows: T, heads: p.kvHeads, stride: kStride)
            }
            if let style = p.rope, let rope {
                Profile.measure("rope") {
                    Ops.rope(q, rows: T, heads: p.heads, headDim: p.headDim, stride: qStride, nRot: p.ropeDims, base: p.ropeBase,
                             interleaved: style == .interleaved, cache: rope)
                    Ops.rope(k, rows: T, heads: p.kvHeads, headDim: p.headDim, stride: kStride, nRot: p.ropeDims, base: p.ropeBase,
                             interleaved: style == .interleaved, cache: rope)
                }
            }
            if p.fusedQKV {
                for r in 0..<T { m.roundToF16(k + r * qkvStride, count: kDim + vDim) }
            } else {
                m.roundToF16(k, count: T * kDim)
                m.roundToF16(v, count: T * vDim)
            }
            try withSinks(m, b + "attn_sinks.weight") { sinks in
                m.attention(q: q, qStride: qStride, k: k, kStride: kStride, v: v, vStride: vStride, rows: T, heads: p.heads,
                            kvHeads: p.kvHeads, headDim: p.headDim, valueDim: p.valueDim, out: att.p, outStride: attDim,
                            scale: p.attentionScale, window: sliding ? p.slidingWindow : nil, sinks: sinks)
            }
            try m.linear(att.p, rows: T, weight: b + "attn_output.weight", bias: b + "attn_output.bias", out: o.p)
            if p.sandwichNorms { try norm(m, b + "post_attention_norm", o.p, o.p, rows: T) }
            Ops.add(x.p, o.p, count: T * E)

            try norm(m, b + p.ffnNorm, x.p, xn.p, rows: T)
            if let moe = p.experts {
                try experts(m, moe, layer: l, xn.p, rows: T, out: o.p)
            } else if let gate, p.fusedGateUp {
                // One [T × 2·ffn] product; each row's halves are the gate and up views.
                try m.linear(xn.p, rows: T, weight: b + "ffn_up.weight", out: up.p)
                for r in 0..<T {
                    let row = up.p + r * 2 * ffn
                    switch p.activation {
                    case .silu: Ops.swiglu(row, row + ffn, count: ffn, threads: 1)
                    case .geluTanh: Ops.geglu(row, row + ffn, count: ffn, threads: 1)
                    }
                    (gate.p + r * ffn).update(from: row, count: ffn)
                }
                try m.linear(gate.p, rows: T, weight: b + "ffn_down.weight", out: o.p)
            } else if let gate {
                try m.linear(xn.p, rows: T, weight: b + "ffn_gate.weight", out: gate.p)
                try m.linear(xn.p, rows: T, weight: b + "ffn_up.weight", out: up.p)
                switch p.activation {
                case .silu: Profile.measure("swiglu") { Ops.swiglu(gate.p, up.p, count: T * ffn, threads: m.threads) }
                case .geluTanh: Ops.geglu(gate.p, up.p, count: T * ffn, threads: m.threads)
                }
                try m.linear(gate.p, rows: T, weight: b + "ffn_down.weight", out: o.p)
            } else {
                try m.linear(xn.p, rows: T, weight: b + "ffn_up.weight", bias: b + "ffn_up.bias", out: up.p)
                switch p.activation {
                case .silu: Ops.silu(up.p, count: T * ffn, threads: m.threads)
                case .geluTanh: Ops.gelu(up.p, count: T * ffn, threads: m.threads)
                }
                try m.linear(up.p, rows: T, weight: b + "ffn_down.weight", bias: b + "ffn_down.bias", out: o.p)
            }
            if p.sandwichNorms { try norm(m, b + "post_ffw_norm", o.p, o.p, rows: T) }
            Ops.add(x.p, o.p, count: T * E)
        }
        if m.endLayers(x.p, count: T * E) { return [] }
        let R = outputRows.count
        try norm(m, "output_norm", x.p + outputRows.lowerBound * E, xn.p, rows: R)
        var logits = [Float](repeating: 0, count: R * m.config.vocabSize)
        try logits.withUnsafeMutableBufferPointer { out in
            try m.linear(xn.p, rows: R, weight: m.outputWeight, out: out.baseAddress!)
            if let cap = p.finalLogitSoftcap { Ops.softcap(out.baseAddress!, count: out.count, cap: cap) }
        }
        return logits
    }

    /// The plan's norm with weights `prefix.weight` (and `prefix.bias` for LayerNorm).
    private func norm(_ m: LanguageModel, _ prefix: String, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int) throws {
        let E = plan.embedding, eps = plan.normEps
        try m.weights.withF32(prefix + ".weight") { w in
            switch plan.norm {
            case .rms:
                Ops.rmsNorm(x, w, out, rows: rows, dim: E, eps: eps, threads: m.threads)
            case .layer:
                try m.weights.withF32(prefix + ".bias") { b in
                    Ops.layerNorm(x, w, b, out, rows: rows, dim: E, eps: eps, threads: m.threads)
                }
            }
        }
    }

    /// Calls `body` with the layer's attention sinks (one per head) when the plan has them.
    private func withSinks(_ m: LanguageModel, _ name: String, _ body: (UnsafePointer<Float>?) throws -> Void) throws {
        guard plan.attentionSinks else { return try body(nil) }
        let t = try m.weights.tensor(name)
        guard t.elementCount == plan.heads else { throw EvaluatorError.badShape(tensor: name, shape: t.shape, expected: [plan.heads]) }
        try m.weights.withF32(name) { try body($0) }
    }

    /// RMSNorm over each head of `heads` × headDim in rows of `stride` floats, in place.
    private func headNorm(_ m: LanguageModel, _ weight: String, _ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, stride: Int) throws {
        let d = plan.headDim, eps = plan.normEps
        let w = try m.weights.tensor(weight)
        guard w.elementCount == d else { throw EvaluatorError.badShape(tensor: weight, shape: w.shape, expected: [d]) }
        try m.weights.withF32(weight) { wp in
            if stride == heads * d {
                Ops.rmsNorm(x, wp, x, rows: rows * heads, dim: d, eps: eps, threads: m.threads)
            } else {
                for r in 0..<rows { Ops.rmsNorm(x + r * stride, wp, x + r * stride, rows: heads, dim: d, eps: eps, threads: 1) }
            }
        }
    }
}
