import Formats
import TensorGraph

/// A Hugging Face model folder's graph → a graph ready for the GGUF writer: llama.cpp tensor names,
/// Q/K rows permuted and Conv1D weights transposed as llama.cpp's converter does, `{arch}.*`
/// hyperparameters, `general.*` keys and the tokenizer as `tokenizer.ggml.*`. Lazy: tensors are
/// transformed as the writer streams them.
public enum HFToGGUF {
    /// `dtype` (f32, f16 or bf16) applies to tensors of two or more dimensions; 1-D tensors,
    /// norms, biases and the MoE router become f32 as llama.cpp's converter keeps them. `nil` keeps each tensor's own type.
    public static func convert(_ hf: TensorGraph, dtype: DType? = nil, name: String? = nil) throws -> TensorGraph {
        let unit = try ArchitectureRegistry.unit(hfModelType: hf.architecture)
        let spec = unit.table
        guard let configText = hf.metadata[HFFolder.metadataPrefix + "config.json"]?.stringValue else {
            throw ArchitectureError.missingConfig(key: "config.json", architecture: spec.architecture)
        }
        let arch = try unit.configuration(hfConfig: configText)
        let plan = try arch.forwardPlan()
        let config = try JSONParser.parse(configText)

        var out = try TensorGraph()
        out.architecture = spec.architecture
        let tied = config["tie_word_embeddings"]?.boolValue ?? (spec.tiedOutput == .duplicate)

        var types: [DType: Int] = [:]
        func add(_ t: Tensor) throws {
            let t = try cast(t, to: dtype)
            types[t.dtype, default: 0] += keepsF32(t) ? 0 : 1
            try out.append(t)
        }
        for source in hf.tensors {
            var hfName = source.name
            if let p = spec.hfStripPrefix, hfName.hasPrefix(p) { hfName.removeFirst(p.count) }
            if spec.isSkippedHF(hfName) { continue }
            if let (rule, bid, xid) = spec.expertStack(forHF: hfName) {
                // One tensor per expert → one stacked tensor, made where expert 0 sits.
                let prefix = String(source.name.dropLast(hfName.count))
                guard xid == 0 else {
                    let first = prefix + rule.hf.fill(bid, 0)
                    guard hf[first] != nil else { throw ExpertStacks.StackError.missingExpert(tensor: source.name, missing: first) }
                    continue
                }
                let t = try ExpertStacks.stacked(hf, rule: rule, bid: bid, prefix: prefix, expected: plan.experts?.experts)
                try add(try arch.transformToGGUF(t, ggufName: t.name))
                continue
            }
            if let (rule, bid, index) = spec.group(forHF: hfName) {
                // Tensors that map several to one or one to several (tensor_groups): made where
                // the group's first tensor sits; the others are consumed by it.
                let prefix = String(source.name.dropLast(hfName.count))
                let names = rule.hf.map { prefix + $0.fill(bid) }
                guard index == 0 else {
                    guard hf[names[0]] != nil else { throw TensorGroups.GroupError.missingPartner(tensor: source.name, partner: names[0]) }
                    continue
                }
                let sources = try names.map { n -> Tensor in
                    guard let t = hf[n] else { throw TensorGroups.GroupError.missingPartner(tensor: source.name, partner: n) }
                    return t
                }
                for t in try TensorGroups.toGGUF(rule.transform, sources: sources, ggufNames: rule.gguf.map { $0.fill(bid) }) {
                    try add(try arch.transformToGGUF(t, ggufName: t.name))
                }
                continue
            }
            guard let (ggufName, transform) = spec.ggufName(forHF: hfName) else {
                throw ArchitectureError.unmappedTensor(name: source.name, architecture: spec.architecture)
            }
            var t = source
            t.name = ggufName
            switch transform {
            case .ropePermuteQ?, .ropePermuteK?:
                let n = transform == .ropePermuteQ ? plan.heads : plan.kvHeads
                let headDim = plan.headDim
                guard t.shape.count >= 1, headDim % 2 == 0, t.shape[0] == n * headDim else {
                    throw ArchitectureError.badShape(
                        tensor: source.name, shape: t.shape, reason: "expected \(n) heads × \(headDim) rows for the RoPE permutation")
                }
                t = try t.permutingRows { RopePermutation.hfRow(forGGUFRow: $0, headDim: headDim) }
            case .transpose?:
                t = try t.transposed2D()
            case nil:
                break
            }
            if ggufName == "token_embd.weight", let n = try arch.vocabularyRows(hf: hf), n > 0, n < t.shape[0] {
                t = try t.leadingRows(n)
            }
            try add(try arch.transformToGGUF(t, ggufName: ggufName))
            if ggufName == "token_embd.weight", tied, spec.tiedOutput == .duplicate, hf["lm_head.weight"] == nil {
                var copy = out.tensors.last!
                copy.name = "output.weight"
                try out.append(copy)
            }
        }
        for t in try arch.generatedTensors(hf: hf) { try add(t) }

        // Tokenizer.
        var tokenizerKeys: [(String, MetadataValue)] = []
        if let (tok, extras) = try HFTokenizer.read(hf, config: config, spacePrefix: unit.sentencePieceSpacePrefix, addedTokens: unit.sentencePieceAddedTokens) {
            out.tokenizer = tok
            tokenizerKeys = extras?.ggufKeys ?? []
        }

        var m = Metadata()
        m["general.architecture"] = .string(spec.architecture)
        m["general.type"] = .string("model")
        m["general.name"] = .string(name ?? config["_name_or_path"]?.stringValue.map(Paths.fileName) ?? spec.architecture)
        m["general.file_type"] = .uint32(fileType(types))
        for (k, v) in try arch.ggufKeys() { m[k] = v }
        for (k, v) in tokenizerKeys { m[k] = v }
        out.metadata = m
        // The typed summary (inspect, Ingot) is the generic view of the keys just written.
        out.hyperparameters = GGUFMetadata.view(m).hyperparameters
        GGUFMetadata.apply(to: &out)
        return out
    }

    static func cast(_ t: Tensor, to dtype: DType?) throws -> Tensor {
        guard Tensor.castableTypes.contains(t.dtype) else { return t }
        if keepsF32(t) { return try t.cast(to: .f32) }
        if let dtype { return try t.cast(to: dtype) }
        return t.dtype == .f64 ? try t.cast(to: .f32) : t
    }

    /// Tensors llama.cpp's converter always writes as f32: vectors, norms, biases of any rank
    /// (a MoE's 2-D expert biases) and the MoE router (`ffn_gate_inp`).
    static func keepsF32(_ t: Tensor) -> Bool {
        t.shape.count <= 1 || !t.name.hasSuffix(".weight") || t.name.hasSuffix("_norm.weight") || t.name.contains(".ffn_gate_inp")
    }

    /// `general.file_type` (llama_ftype) from the types of the matrices: ALL_F32 0, MOSTLY_F16 1,
    /// MOSTLY_BF16 32, MOSTLY_MXFP4_MOE 38.
    static func fileType(_ counts: [DType: Int]) -> UInt32 {
        // MXFP4 experts (gpt-oss): llama.cpp's converter calls the file MOSTLY_MXFP4_MOE.
        if counts[.mxfp4, default: 0] > 0 { return 38 }
        let main = counts.max { $0.value < $1.value }?.key ?? .f32
        switch main {
        case .f16: return 1
        case .bf16: return 32
        // Quantized folders moved exactly (Formats/Flavours): MOSTLY_Q4_0, Q4_1, Q8_0, MXFP4_MOE.
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .mxfp4: return 38
        default: return 0
        }
    }
}

extension Tensor {
    /// The first `n` rows (outermost dimension), read lazily from the tensor's storage.
    func leadingRows(_ n: Int) throws -> Tensor {
        guard let rows = shape.first, rows > 0, n <= rows else { return self }
        let rowBytes = byteCount / rows
        let src = storage
        let produced = ProducedStorage(byteCount: n * rowBytes) { offset, buffer in try src.read(offset: offset, into: buffer) }
        return try Tensor(name: name, dtype: dtype, shape: [n] + shape.dropFirst(), storage: produced)
    }
}
