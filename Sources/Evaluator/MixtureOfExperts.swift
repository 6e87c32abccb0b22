import Architectures
import Foundation
import Kernels

/// The mixture-of-experts feed-forward block of `ForwardPlan.MixtureOfExperts`, shared by every
/// MoE architecture: router logits (`ffn_gate_inp`, bias when present) → top-k per token →
/// routing weights (softmax over the chosen logits, or the chosen probabilities of a softmax over
/// all experts) → for each expert, only the tokens routed to it, gathered into one matrix: one
/// product per expert projection, the gated activation, the down projection, and the weighted
/// sum scattered back. Expert matrices are decoded one expert at a time (`withExpertF32`), so
/// memory stays near the stored size plus one expert.
extension TransformerForward {
    func experts(_ m: LanguageModel, _ moe: ForwardPlan.MixtureOfExperts, layer: Int, _ x: UnsafePointer<Float>, rows T: Int,
                 out: UnsafeMutablePointer<Float>) throws {
        let E = plan.embedding, n = moe.experts, k = moe.used
        let b = "blk.\(layer)."
        let router = b + "ffn_gate_inp.weight"
        let gateName = b + "ffn_gate_exps.weight", upName = b + "ffn_up_exps.weight", downName = b + "ffn_down_exps.weight"
        try MoEShapes.check(m, router: router, gate: gateName, up: upName, down: downName, experts: n, embedding: E)
        let F = try m.weights.tensor(gateName).shape[1]

        // Routing.
        let logits = Buffer(T * n)
        try m.linear(x, rows: T, weight: router, bias: b + "ffn_gate_inp.bias", out: logits.p)
        let routes = Self.route(logits.p, tokens: T, experts: n, used: k, normalizeChosen: moe.normalizeChosen)

        out.update(repeating: 0, count: T * E)
        let xs = Buffer(T * E), gate = Buffer(T * F), up = Buffer(T * F), y = Buffer(T * E)
        for e in 0..<n {
            let assigned = routes.tokens[e]
            let r = assigned.count
            guard r > 0 else { continue }
            for (i, a) in assigned.enumerated() { (xs.p + i * E).update(from: x + a.token * E, count: E) }
            try m.expertLinear(xs.p, rows: r, weight: gateName, expert: e, out: gate.p)
            try m.expertLinear(xs.p, rows: r, weight: upName, expert: e, out: up.p)
            Self.activate(moe.activation, gate: gate.p, up: up.p, count: r * F)
            try m.expertLinear(gate.p, rows: r, weight: downName, expert: e, out: y.p)
            for (i, a) in assigned.enumerated() {
                let o = out + a.token * E, yr = y.p + i * E
                for j in 0..<E { o[j] += a.weight * yr[j] }
            }
        }
    }

    /// Which experts each token uses and with what weight, grouped by expert (tokens in order).
    struct Routes {
        var tokens: [[(token: Int, weight: Float)]]
    }

    /// Top `used` logits per token (ties to the lower expert index), weighted by a softmax over
    /// the chosen logits, or by the chosen probabilities of a softmax over all experts.
    static func route(_ logits: UnsafePointer<Float>, tokens T: Int, experts n: Int, used k: Int, normalizeChosen: Bool) -> Routes {
        var routes = Routes(tokens: Array(repeating: [], count: n))
        var order = [Int](repeating: 0, count: n)
        for t in 0..<T {
            let l = logits + t * n
            for i in 0..<n { order[i] = i }
            order.sort { l[$0] != l[$1] ? l[$0] > l[$1] : $0 < $1 }
            let chosen = order.prefix(k)
            let mx = normalizeChosen ? l[chosen.first!] : (0..<n).map { l[$0] }.max()!
            var sum: Float = 0
            if normalizeChosen {
                for e in chosen { sum += expf(l[e] - mx) }
            } else {
                for e in 0..<n { sum += expf(l[e] - mx) }
            }
            for e in chosen { routes.tokens[e].append((t, expf(l[e] - mx) / sum)) }
        }
        return routes
    }

    /// gate ← act(gate, up) over `count` values.
    static func activate(_ a: ForwardPlan.MixtureOfExperts.Activation, gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>,
                         count: Int) {
        switch a {
        case .swiglu:
            Ops.swiglu(gate, up, count: count, threads: 1)
        case let .clampedSwiGLU(alpha, limit):
            for i in 0..<count {
                let g = min(gate[i], limit)
                let u = min(max(up[i], -limit), limit)
                gate[i] = g / (1 + expf(-alpha * g)) * (u + 1)
            }
        }
    }
}

extension LanguageModel {
    /// out[rows × outDim] = x · W[expert]ᵀ (+ bias[expert] when the tensor's `.bias` exists), for
    /// a [experts, outDim, inDim] weight; the expert's slice alone is decoded.
    func expertLinear(_ x: UnsafePointer<Float>, rows: Int, weight: String, expert: Int, out: UnsafeMutablePointer<Float>) throws {
        let w = try weights.tensor(weight)
        let (outDim, inDim) = (w.shape[1], w.shape[2])
        expertInputObserver?(weight, expert, w.shape[0], x, rows, inDim)
        var rounded: Buffer?
        if quantizeActivations, let scheme = ActivationRounding.scheme(for: w.dtype) {
            let b = Buffer(rows * inDim)
            ActivationRounding.apply(scheme, x, b.p, count: rows * inDim)
            rounded = b
        }
        let x = UnsafePointer(rounded?.p) ?? x
        try Profile.measure("weights") {
            try weights.withExpertF32(weight, expert: expert) { wp, _ in
                Profile.measure("sgemm") {
                    BLAS.parallelSgemm(m: rows, n: outDim, k: inDim, a: x, lda: inDim, b: wp, ldb: inDim,
                                       c: out, ldc: outDim, transposeB: true, threads: threads)
                }
            }
        }
        let bias = weight.hasSuffix(".weight") ? String(weight.dropLast(".weight".count)) + ".bias" : weight + ".bias"
        if weights.has(bias) {
            try weights.withExpertF32(bias, expert: expert) { bp, count in
                guard count == outDim else { throw EvaluatorError.badShape(tensor: bias, shape: try weights.tensor(bias).shape, expected: [w.shape[0], outDim]) }
                Ops.addBias(out, bp, rows: rows, dim: outDim)
            }
        }
    }
}

/// The shape checks of a mixture-of-experts layer, each naming the tensor.
enum MoEShapes {
    static func check(_ m: LanguageModel, router: String, gate: String, up: String, down: String, experts n: Int, embedding E: Int) throws {
        let r = try m.weights.tensor(router)
        guard r.shape == [n, E] else { throw EvaluatorError.badShape(tensor: router, shape: r.shape, expected: [n, E]) }
        let g = try m.weights.tensor(gate)
        guard g.shape.count == 3, g.shape[0] == n, g.shape[2] == E else {
            throw EvaluatorError.badShape(tensor: gate, shape: g.shape, expected: [n, g.shape.count == 3 ? g.shape[1] : 0, E])
        }
        let F = g.shape[1]
        let u = try m.weights.tensor(up)
        guard u.shape == [n, F, E] else { throw EvaluatorError.badShape(tensor: up, shape: u.shape, expected: [n, F, E]) }
        let d = try m.weights.tensor(down)
        guard d.shape == [n, E, F] else { throw EvaluatorError.badShape(tensor: down, shape: d.shape, expected: [n, E, F]) }
    }
}
