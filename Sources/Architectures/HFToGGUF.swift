import Formats
import TensorGraph

/// A Hugging Face model folder's graph → a graph ready for the GGUF writer: llama.cpp tensor names,
/// Q/K rows permuted and Conv1D weights transposed as llama.cpp's converter does, `{arch}.*`
/// hyperparameters, `general.*` keys and the tokenizer as `tokenizer.ggml.*`. Lazy: tensors are
/// transformed as the writer streams them.
public enum HFToGGUF {
    /// `dtype` (f32, f16 or bf16) applies to tensors of two or more dimensions; 1-D tensors
    /// (norms, biases) become f32 as llama.cpp keeps them. `nil` keeps each tensor's own type.
    public static func convert(_ hf: TensorGraph, dtype: DType? = nil, name: String? = nil) throws -> TensorGraph {
        let spec = try ArchitectureRegistry.spec(hfModelType: hf.architecture)
        guard let configText = hf.metadata[HFFolder.metadataPrefix + "config.json"]?.stringValue else {
            throw ArchitectureError.missingConfig(key: "config.json", architecture: spec.architecture)
        }
        let config = try JSONParser.parse(configText)
        let hp = try hyperparameters(spec: spec, config: config)

        var out = try TensorGraph()
        out.architecture = spec.architecture
        out.hyperparameters = hp
        let heads = hp.headCount ?? 0
        let kvHeads = hp.headCountKV ?? heads
        let headDim = hp.ropeDimensionCount ?? 0
        let tied = config["tie_word_embeddings"]?.boolValue ?? (spec.tiedOutput == .duplicate)

        var types: [DType: Int] = [:]
        for source in hf.tensors {
            var hfName = source.name
            if let p = spec.hfStripPrefix, hfName.hasPrefix(p) { hfName.removeFirst(p.count) }
            if spec.isSkippedHF(hfName) { continue }
            guard let (ggufName, transform) = spec.ggufName(forHF: hfName) else {
                throw ArchitectureError.unmappedTensor(name: source.name, architecture: spec.architecture)
            }
            var t = source
            t.name = ggufName
            switch transform {
            case .ropePermuteQ?, .ropePermuteK?:
                let n = transform == .ropePermuteQ ? heads : kvHeads
                guard t.shape.count >= 1, n > 0, headDim > 0, headDim % 2 == 0, t.shape[0] == n * headDim else {
                    throw ArchitectureError.badShape(
                        tensor: source.name, shape: t.shape, reason: "expected \(n) heads × \(headDim) rows for the RoPE permutation")
                }
                let d = headDim
                t = try t.permutingRows { RopePermutation.hfRow(forGGUFRow: $0, headDim: d) }
            case .transpose?:
                t = try t.transposed2D()
            case nil:
                break
            }
            t = try cast(t, to: dtype)
            types[t.dtype, default: 0] += t.shape.count >= 2 ? 1 : 0
            try out.append(t)
            if ggufName == "token_embd.weight", tied, spec.tiedOutput == .duplicate, hf["lm_head.weight"] == nil {
                var copy = t
                copy.name = "output.weight"
                try out.append(copy)
            }
        }

        // Tokenizer.
        if let tj = hf.metadata[HFFolder.metadataPrefix + "tokenizer.json"]?.stringValue {
            out.tokenizer = try TokenizerJSON.parse(
                tokenizerJSON: tj, tokenizerConfig: hf.metadata[HFFolder.metadataPrefix + "tokenizer_config.json"]?.stringValue,
                config: config)
        }

        var m = Metadata()
        m["general.architecture"] = .string(spec.architecture)
        m["general.type"] = .string("model")
        m["general.name"] = .string(name ?? config["_name_or_path"]?.stringValue.map(Paths.fileName) ?? spec.architecture)
        m["general.file_type"] = .uint32(fileType(types))
        out.metadata = m
        GGUFMetadata.apply(to: &out)
        return out
    }

    /// Hyperparameters from `config.json` through the architecture's table.
    static func hyperparameters(spec: ArchitectureSpec, config: JSONValue) throws -> Hyperparameters {
        var h = Hyperparameters()
        for rule in spec.config {
            let ints = GGUFKeys.hyperparameterInts.first { $0.suffix == rule.ggufKey }
            let floats = GGUFKeys.hyperparameterFloats.first { $0.suffix == rule.ggufKey }
            // transformers 5 moves rope_theta under rope_parameters.
            guard let value = config[rule.hfKey] ?? config["rope_parameters"]?[rule.hfKey], !value.isNull else { continue }
            if let f = ints, let v = value.intValue {
                h[keyPath: f.field] = v
            } else if let f = floats, let v = value.doubleValue {
                h[keyPath: f.field] = v
            }
        }
        // Derived values, as llama.cpp's converter derives them.
        if h.headCountKV == nil, spec.config.contains(where: { $0.ggufKey == "attention.head_count_kv" }) {
            h.headCountKV = h.headCount
        }
        if h.ropeDimensionCount == nil, spec.config.contains(where: { $0.ggufKey == "rope.dimension_count" }),
            let e = h.embeddingLength, let n = h.headCount, n > 0
        {
            h.ropeDimensionCount = e / n
        }
        if h.feedForwardLength == nil, spec.architecture == "gpt2", let e = h.embeddingLength {
            h.feedForwardLength = 4 * e  // GPT-2's n_inner: null means 4 × n_embd
        }
        for key in ["embedding_length", "block_count", "attention.head_count"] {
            let field = GGUFKeys.hyperparameterInts.first { $0.suffix == key }!.field
            if h[keyPath: field] == nil {
                let hfKey = spec.config.first { $0.ggufKey == key }?.hfKey ?? key
                throw ArchitectureError.missingConfig(key: hfKey, architecture: spec.architecture)
            }
        }
        return h
    }

    static func cast(_ t: Tensor, to dtype: DType?) throws -> Tensor {
        guard Tensor.castableTypes.contains(t.dtype) else { return t }
        if t.shape.count <= 1 { return try t.cast(to: .f32) }
        if let dtype { return try t.cast(to: dtype) }
        return t.dtype == .f64 ? try t.cast(to: .f32) : t
    }

    /// `general.file_type` (llama_ftype) from the types of the matrices: ALL_F32 0, MOSTLY_F16 1,
    /// MOSTLY_BF16 32.
    static func fileType(_ counts: [DType: Int]) -> UInt32 {
        let main = counts.max { $0.value < $1.value }?.key ?? .f32
        switch main {
        case .f16: return 1
        case .bf16: return 32
        default: return 0
        }
    }
}
