import Formats
import TensorGraph

/// What `inspect` shows of a configured architecture: the numbers and choices its forward pass is
/// built from (head sizes, rotary kind, base and scaling, sliding window and its layer pattern,
/// Q/K norms, …), as JSON entries in a fixed order. The default comes from the unit's
/// `forwardPlan()` and `ropeScaling`; a unit with more to say (experts) overrides `summary()`.
public enum ArchitectureSummary {
    /// The entries every unit shares, from its plan.
    public static func entries(plan p: ForwardPlan, ropeScaling: RopeScaling?) -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = [
            ("layers", .int(p.layers)), ("embedding", .int(p.embedding)), ("context_length", .int(p.contextLength)),
            ("heads", .int(p.heads)), ("kv_heads", .int(p.kvHeads)), ("head_dim", .int(p.headDim)),
        ]
        if p.valueDim != p.headDim { out.append(("value_head_dim", .int(p.valueDim))) }
        if p.headDim * p.heads != p.embedding { out.append(("head_dim_note", .string("heads × head_dim = \(p.heads * p.headDim) ≠ embedding \(p.embedding)"))) }
        out.append(("norm", .string(p.norm == .rms ? "rms" : "layer")))
        out.append(("norm_eps", float(p.normEps)))
        if p.sandwichNorms { out.append(("sandwich_norms", .bool(true))) }
        out.append(("qk_norm", .bool(p.qkNorm)))
        if p.fusedQKV { out.append(("fused_qkv", .bool(true))) }
        if p.fusedGateUp { out.append(("fused_gate_up", .bool(true))) }
        if p.learnedPositions { out.append(("positions", .string("learned"))) }
        if let rope = p.rope {
            out.append(("rope", .string(rope == .neox ? "neox" : "interleaved")))
            out.append(("rope_dims", .int(p.ropeDims)))
            out.append(("rope_base", .double(p.ropeBase)))
            if let s = ropeScaling {
                out.append(("rope_scaling", scalingJSON(s)))
                if p.slidingWindow != nil, p.localRopeBase != nil { out.append(("rope_scaling_layers", .string("global (full-attention) layers only"))) }
            }
        }
        if p.ropeFactorsLong != nil {
            out.append(("rope_long_after", .int(p.ropeLongAfter)))
            out.append(("rope_scale", float(p.ropeScale)))
        }
        if let w = p.slidingWindow {
            out.append(("sliding_window", .int(w)))
            out.append(("sliding_pattern", .string(pattern(p.slidingLayers))))
            let global = p.slidingLayers.enumerated().filter { !$0.element }.map(\.offset)
            out.append(("global_layers", .array(global.map(JSONValue.int))))
            if let b = p.localRopeBase { out.append(("local_rope_base", .double(b))) }
        }
        if p.attentionSinks { out.append(("attention_sinks", .bool(true))) }
        if let moe = p.experts {
            let act: String
            switch moe.activation {
            case .swiglu: act = "swiglu"
            case let .clampedSwiGLU(alpha, limit): act = "clamped swiglu (alpha \(alpha), limit \(limit))"
            }
            out.append(("experts", .object([
                ("count", .int(moe.experts)), ("used", .int(moe.used)),
                ("weights", .string(moe.normalizeChosen ? "softmax over the chosen" : "softmax over all")), ("activation", .string(act)),
            ])))
        } else {
            out.append(("mlp", .string((p.gatedMLP ? "gated " : "") + (p.activation == .silu ? "silu" : "gelu_tanh"))))
        }
        if let s = p.embeddingScale { out.append(("embedding_scale", float(s))) }
        if let s = p.attentionScale { out.append(("attention_scale", float(s))) }
        if let c = p.finalLogitSoftcap { out.append(("final_logit_softcap", float(c))) }
        return out
    }

    /// A float32 as the shortest decimal that reads back as it (1e-06, not 9.99999997e-07).
    static func float(_ f: Float) -> JSONValue { f.isFinite ? .number("\(f)") : .string("\(f)") }

    static func scalingJSON(_ s: RopeScaling) -> JSONValue {
        var e: [(String, JSONValue)] = [("type", .string(s.kind.rawValue))]
        if !(s.kind == .longrope && s.factor == 0) { e.append(("factor", .double(s.factor))) }
        if let v = s.originalContext { e.append(("original_context", .int(v))) }
        if let v = s.lowFreqFactor { e.append(("low_freq_factor", .double(v))) }
        if let v = s.highFreqFactor { e.append(("high_freq_factor", .double(v))) }
        if let v = s.extrapolationFactor { e.append(("extrapolation_factor", .double(v))) }
        if let v = s.attentionFactor { e.append(("attention_factor", .double(v))) }
        if let v = s.betaFast { e.append(("beta_fast", .double(v))) }
        if let v = s.betaSlow { e.append(("beta_slow", .double(v))) }
        if let v = s.truncate { e.append(("truncate", .bool(v))) }
        if let v = s.longFactor { e.append(("long_factor_count", .int(v.count))) }
        if let v = s.shortFactor { e.append(("short_factor_count", .int(v.count))) }
        return .object(e)
    }

    /// "5 local : 1 global" when the layers repeat a run of local layers closed by one global
    /// layer (a shorter last run allowed), else the count of each.
    static func pattern(_ sliding: [Bool]) -> String {
        let local = sliding.filter { $0 }.count, global = sliding.count - local
        if let first = sliding.firstIndex(of: false) {
            let period = first + 1
            if sliding.enumerated().allSatisfy({ $0.element == (($0.offset + 1) % period != 0) }) {
                return "\(period - 1) local : 1 global"
            }
        }
        return "\(local) local, \(global) global"
    }

    /// The configured architecture of a graph as `origin` lays it out (a GGUF's `{arch}.*` keys,
    /// with Llama 3 scaling taken back from `rope_freqs.weight` where it regenerates exactly; a
    /// Hugging Face folder's `config.json`), and its summary. Nil for a graph that states no
    /// architecture or lacks the configuration.
    public static func of(_ graph: TensorGraph, origin: ModelFormat) throws -> (unit: String, entries: [(String, JSONValue)])? {
        if origin == .gguf {
            guard graph.architecture != nil else { return nil }
            let unit = try ArchitectureRegistry.unit(gguf: graph.architecture)
            var a = try ArchitectureRegistry.configuration(gguf: graph)
            var entries: [(String, JSONValue)] = []
            if (try? a.restore(fromGGUF: graph)) == nil, let t = graph[RopeScaling.freqsTensor],
                let f = try? (t.dtype == .f32 ? t : t.cast(to: .f32)).storage.readAll()
            {
                // Divisors that are not Llama 3.1's defaults: the GGUF does not state the
                // parameters that made them, so show their range.
                let values = stride(from: 0, to: f.count - 3, by: 4).map {
                    Float(bitPattern: UInt32(f[$0]) | UInt32(f[$0 + 1]) << 8 | UInt32(f[$0 + 2]) << 16 | UInt32(f[$0 + 3]) << 24)
                }
                entries.append(("rope_freqs", .object([
                    ("tensor", .string(RopeScaling.freqsTensor)), ("count", .int(values.count)),
                    ("min", float(values.min() ?? 0)), ("max", float(values.max() ?? 0)),
                ])))
            }
            return (unit.name, try a.summary() + entries)
        }
        guard let text = graph.metadata[HFFolder.metadataPrefix + "config.json"]?.stringValue else { return nil }
        guard let type = graph.architecture else { throw ArchitectureError.missingConfig(key: "model_type", architecture: "config.json") }
        let unit = try ArchitectureRegistry.unit(hfModelType: type)
        return (unit.name, try unit.configuration(hfConfig: text).summary())
    }
}
