import Formats
import Quantization
import TensorGraph

/// A GGUF graph → a Hugging Face model folder's graph: names back to Hugging Face's, Q/K rows
/// un-permuted, Conv1D weights transposed back, quantized tensors dequantized, and `config.json`,
/// `tokenizer.json`, `tokenizer_config.json` made from the GGUF metadata.
public enum GGUFToHF {
    /// `dtype` (f32, f16, bf16): the type of every float tensor. `nil` keeps unquantized tensors as
    /// they are and dequantizes quantized ones to f32.
    /// The block types a folder flavour can take as they are (`convert --format`): kept by
    /// `convert(_:dtype:keepBlocks:)` when asked, for the flavour to re-express exactly.
    public static let flavourBlockTypes: Set<DType> = [.q4_0, .q4_1, .q8_0, .mxfp4]

    /// `keepBlocks`: quantized types left as they are (rows still un-permuted, which moves whole
    /// rows of blocks) instead of dequantized.
    public static func convert(_ gguf: TensorGraph, dtype: DType? = nil, keepBlocks: Set<DType> = []) throws -> TensorGraph {
        let unit = try ArchitectureRegistry.unit(gguf: gguf.architecture)
        let spec = unit.table
        var arch = try unit.configuration(gguf: gguf.metadata)
        let generated = try arch.restore(fromGGUF: gguf)
        let plan = try arch.forwardPlan()
        let hasOutput = gguf["output.weight"] != nil
        let tied = spec.tiedOutput == .duplicate ? true : !hasOutput

        var out = try TensorGraph()
        var mxfp4Form = false
        out.architecture = spec.hfModelTypes.first
        out.hyperparameters = gguf.hyperparameters
        for source in gguf.tensors {
            if source.name == "output.weight" && spec.tiedOutput == .duplicate { continue }
            if generated.contains(source.name) { continue }
            if let (rule, bid) = spec.expertStack(forGGUF: source.name) {
                for t in try ExpertStacks.unstacked(source, rule: rule, bid: bid, prefix: spec.hfWritePrefix ?? "", dtype: dtype) {
                    try out.append(t)
                }
                continue
            }
            let groups = spec.groups(forGGUF: source.name)
            if !groups.isEmpty {
                // Several GGUF tensors → one Hugging Face tensor or pair (tensor_groups): made where
                // the group's first tensor sits. MXFP4 experts go back to blocks + scales unless a
                // float dtype is asked for; anything else to the float form.
                let wantMXFP4 = dtype == nil && source.dtype == .mxfp4
                let pick = groups.first { $0.rule.form == "any" } ?? groups.first { ($0.rule.form == "mxfp4") == wantMXFP4 }
                guard let (rule, bid, index) = pick else { throw ArchitectureError.unmappedTensor(name: source.name, architecture: spec.architecture) }
                let names = rule.gguf.map { $0.fill(bid) }
                if rule.form == "mxfp4" { mxfp4Form = true }
                guard index == 0 else {
                    guard gguf[names[0]] != nil else { throw TensorGroups.GroupError.missingPartner(tensor: source.name, partner: names[0]) }
                    continue
                }
                let sources = try names.map { n -> Tensor in
                    guard let t = gguf[n] else { throw TensorGroups.GroupError.missingPartner(tensor: source.name, partner: n) }
                    return t
                }
                let prefix = spec.hfWritePrefix ?? ""
                for t in try TensorGroups.toHF(rule.transform, sources: sources, hfNames: rule.hf.map { prefix + $0.fill(bid) }, dtype: dtype) {
                    try out.append(t)
                }
                continue
            }
            guard let (hfName, transform) = spec.hfName(forGGUF: source.name) else {
                throw ArchitectureError.unmappedTensor(name: source.name, architecture: spec.architecture)
            }
            var t = source
            if keepBlocks.contains(t.dtype) && transform != .transpose {
                // kept for a folder flavour to re-express
            } else if t.dtype.isQuantized {
                t = try t.dequantized(to: dtype ?? .f32)
            } else if let dtype, Tensor.castableTypes.contains(t.dtype) {
                t = try t.cast(to: dtype)
            }
            switch transform {
            case .ropePermuteQ?, .ropePermuteK?:
                let n = transform == .ropePermuteQ ? plan.heads : plan.kvHeads
                let headDim = plan.headDim
                guard headDim % 2 == 0, t.shape.first == n * headDim else {
                    throw ArchitectureError.badShape(
                        tensor: source.name, shape: t.shape, reason: "expected \(n) heads × \(headDim) rows for the RoPE permutation")
                }
                t = try t.permutingRows { RopePermutation.ggufRow(forHFRow: $0, headDim: headDim) }
            case .transpose?:
                t = try t.transposed2D()
            case nil:
                break
            }
            t = try arch.transformToHF(t, ggufName: source.name)
            t.name = (spec.hfWritePrefix.map { hfName.hasPrefix("lm_head") ? "" : $0 } ?? "") + hfName
            try out.append(t)
        }

        var config: [(String, JSONValue)] = [
            ("architectures", .array([.string(spec.hfClass)])),
            ("model_type", .string(spec.hfModelTypes.first!)),
        ]
        config += try arch.hfConfigEntries()
        config += arch.hfConfigExtras(gguf: gguf)
        if config.first(where: { $0.0 == "vocab_size" }) == nil, !gguf.tokenizer.tokens.isEmpty {
            config.append(("vocab_size", .int(gguf.tokenizer.tokens.count)))
        }
        config.append(("tie_word_embeddings", .bool(tied)))
        if mxfp4Form, let q = spec.hfMXFP4QuantizationConfig { config.append(("quantization_config", q)) }
        if let b = gguf.tokenizer.bosTokenID { config.append(("bos_token_id", .int(b))) }
        if let e = gguf.tokenizer.eosTokenID { config.append(("eos_token_id", .int(e))) }
        // Stated when known: some configurations default it past a small vocabulary (Phi-3: 32000).
        if let p = gguf.tokenizer.paddingTokenID, !config.contains(where: { $0.0 == "pad_token_id" }) { config.append(("pad_token_id", .int(p))) }
        let mainType = out.tensors.filter { $0.shape.count >= 2 }.first?.dtype ?? .f32
        config.append(("torch_dtype", .string(["f16": "float16", "bf16": "bfloat16"][mainType.rawValue] ?? "float32")))

        var m = Metadata()
        m[SafetensorsGraph.metadataPrefix + "format"] = .string("pt")
        m[HFFolder.metadataPrefix + "config.json"] = .string(JSONWriter.write(.object(config), indent: 2) + "\n")
        if !gguf.tokenizer.isEmpty {
            let (tj, tc) = gguf.tokenizer.model == "llama"
                ? try SentencePieceJSON.render(
                    gguf.tokenizer, extras: .init(metadata: gguf.metadata, count: gguf.tokenizer.tokens.count),
                    maxLength: gguf.hyperparameters.contextLength)
                : try TokenizerJSON.render(gguf.tokenizer, maxLength: gguf.hyperparameters.contextLength)
            m[HFFolder.metadataPrefix + "tokenizer.json"] = .string(tj)
            m[HFFolder.metadataPrefix + "tokenizer_config.json"] = .string(tc)
        }
        var gen: [(String, JSONValue)] = []
        if let b = gguf.tokenizer.bosTokenID { gen.append(("bos_token_id", .int(b))) }
        if let e = gguf.tokenizer.eosTokenID { gen.append(("eos_token_id", .int(e))) }
        if !gen.isEmpty { m[HFFolder.metadataPrefix + "generation_config.json"] = .string(JSONWriter.write(.object(gen), indent: 2) + "\n") }
        out.metadata = m
        return out
    }
}
