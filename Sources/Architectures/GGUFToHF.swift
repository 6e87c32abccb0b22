import Formats
import Quantization
import TensorGraph

/// A GGUF graph → a Hugging Face model folder's graph: names back to Hugging Face's, Q/K rows
/// un-permuted, Conv1D weights transposed back, quantized tensors dequantized, and `config.json`,
/// `tokenizer.json`, `tokenizer_config.json` made from the GGUF metadata.
public enum GGUFToHF {
    /// `dtype` (f32, f16, bf16): the type of every float tensor. `nil` keeps unquantized tensors as
    /// they are and dequantizes quantized ones to f32.
    public static func convert(_ gguf: TensorGraph, dtype: DType? = nil) throws -> TensorGraph {
        let spec = try ArchitectureRegistry.spec(gguf: gguf.architecture)
        let h = gguf.hyperparameters
        let headDim = h.ropeDimensionCount ?? ((h.embeddingLength ?? 0) / max(h.headCount ?? 1, 1))
        let hasOutput = gguf["output.weight"] != nil
        let tied = spec.tiedOutput == .duplicate ? true : !hasOutput

        var out = try TensorGraph()
        out.architecture = spec.hfModelTypes.first
        out.hyperparameters = h
        for source in gguf.tensors {
            if source.name == "output.weight" && spec.tiedOutput == .duplicate { continue }
            guard let (hfName, transform) = spec.hfName(forGGUF: source.name) else {
                throw ArchitectureError.unmappedTensor(name: source.name, architecture: spec.architecture)
            }
            var t = source
            if t.dtype.isQuantized {
                t = try t.dequantized(to: dtype ?? .f32)
            } else if let dtype, Tensor.castableTypes.contains(t.dtype) {
                t = try t.cast(to: dtype)
            }
            switch transform {
            case .ropePermuteQ?, .ropePermuteK?:
                let n = transform == .ropePermuteQ ? (h.headCount ?? 0) : (h.headCountKV ?? h.headCount ?? 0)
                guard n > 0, headDim > 0, headDim % 2 == 0, t.shape.first == n * headDim else {
                    throw ArchitectureError.badShape(
                        tensor: source.name, shape: t.shape, reason: "expected \(n) heads × \(headDim) rows for the RoPE permutation")
                }
                let d = headDim
                t = try t.permutingRows { RopePermutation.ggufRow(forHFRow: $0, headDim: d) }
            case .transpose?:
                t = try t.transposed2D()
            case nil:
                break
            }
            t.name = (spec.hfWritePrefix.map { hfName.hasPrefix("lm_head") ? "" : $0 } ?? "") + hfName
            try out.append(t)
        }

        var config: [(String, JSONValue)] = [
            ("architectures", .array([.string(spec.hfClass)])),
            ("model_type", .string(spec.hfModelTypes.first!)),
        ]
        for rule in spec.config {
            let key = GGUFKeys.key(spec.architecture, rule.ggufKey)
            guard let v = gguf.metadata[key] else { continue }
            if rule.type == "u32", let i = v.intValue {
                config.append((rule.hfKey, .int(i)))
            } else if let d = v.doubleValue {
                // float32 in GGUF: print the shortest decimal that reads back as the same float32.
                config.append((rule.hfKey, .number("\(Float(d))")))
            }
        }
        if spec.architecture == "gpt2" {
            if let n = gguf.metadata[GGUFKeys.key("gpt2", "context_length")]?.intValue { config.append(("n_ctx", .int(n))) }
            config.append(("activation_function", .string(spec.hfActivation)))
        } else {
            config.append(("hidden_act", .string(spec.hfActivation)))
        }
        if config.first(where: { $0.0 == "vocab_size" }) == nil, !gguf.tokenizer.tokens.isEmpty {
            config.append(("vocab_size", .int(gguf.tokenizer.tokens.count)))
        }
        if spec.architecture == "qwen2" || spec.architecture == "llama" {
            config.append(("attention_bias", .bool(gguf.tensors.contains { $0.name.hasSuffix("attn_q.bias") })))
        }
        config.append(("tie_word_embeddings", .bool(tied)))
        if let b = gguf.tokenizer.bosTokenID { config.append(("bos_token_id", .int(b))) }
        if let e = gguf.tokenizer.eosTokenID { config.append(("eos_token_id", .int(e))) }
        let mainType = out.tensors.filter { $0.shape.count >= 2 }.first?.dtype ?? .f32
        config.append(("torch_dtype", .string(["f16": "float16", "bf16": "bfloat16"][mainType.rawValue] ?? "float32")))

        var m = Metadata()
        m[SafetensorsGraph.metadataPrefix + "format"] = .string("pt")
        m[HFFolder.metadataPrefix + "config.json"] = .string(JSONWriter.write(.object(config), indent: 2) + "\n")
        if !gguf.tokenizer.isEmpty {
            let (tj, tc) = try TokenizerJSON.render(gguf.tokenizer, maxLength: h.contextLength)
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
