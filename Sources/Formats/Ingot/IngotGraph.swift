import TensorGraph

/// The graph's typed fields (architecture, hyperparameters, tokenizer, where it came from) as the
/// key/values of the header's `GRPH` section, and back.
enum IngotGraphFields {
    static let architecture = "architecture"
    static let sourceKey = "source.format"
    static let hyperparameterPrefix = "hyperparameters."
    static let tokenizerPrefix = "tokenizer."
    /// A tokenizer list stored by reference: the key names the metadata key holding the same list.
    static let referenceSuffix = "@"

    static func encode(_ graph: TensorGraph, sourceFormat: String?) -> [(key: String, value: MetadataValue)] {
        var out: [(key: String, value: MetadataValue)] = []
        if let a = graph.architecture { out.append((architecture, .string(a))) }
        if let s = sourceFormat { out.append((sourceKey, .string(s))) }
        let h = graph.hyperparameters
        func int(_ name: String, _ v: Int?) {
            if let v { out.append((hyperparameterPrefix + name, .int64(Int64(v)))) }
        }
        func double(_ name: String, _ v: Double?) {
            if let v { out.append((hyperparameterPrefix + name, .float64(v))) }
        }
        int("context_length", h.contextLength)
        int("embedding_length", h.embeddingLength)
        int("block_count", h.blockCount)
        int("feed_forward_length", h.feedForwardLength)
        int("head_count", h.headCount)
        int("head_count_kv", h.headCountKV)
        double("rope_freq_base", h.ropeFreqBase)
        int("rope_dimension_count", h.ropeDimensionCount)
        double("layer_norm_epsilon", h.layerNormEpsilon)
        double("rms_norm_epsilon", h.rmsNormEpsilon)
        int("vocab_size", h.vocabSize)

        let t = graph.tokenizer
        let m = graph.metadata
        func tok(_ name: String, _ v: MetadataValue?) {
            if let v { out.append((tokenizerPrefix + name, v)) }
        }
        /// A list the metadata already holds under a GGUF key is stored as a reference to it.
        func list(_ name: String, _ values: [MetadataValue], element: MetadataType, sameAs key: String, equal: Bool) {
            guard !values.isEmpty else { return }
            if equal {
                out.append((tokenizerPrefix + name + referenceSuffix, .string(key)))
            } else {
                out.append((tokenizerPrefix + name, .array(elementType: element, values: values)))
            }
        }
        tok("model", t.model.map(MetadataValue.string))
        tok("pre", t.preTokenizer.map(MetadataValue.string))
        let tokensKey = GGUFKeys.tokenizerTokens.name
        list("tokens", t.tokens.map(MetadataValue.string), element: .string, sameAs: tokensKey,
             equal: !t.tokens.isEmpty && GGUFMetadata.strings(m[tokensKey]) == t.tokens)
        let typesKey = GGUFKeys.tokenizerTokenType.name
        list("token_types", t.tokenTypes.map(MetadataValue.int32), element: .int32, sameAs: typesKey,
             equal: !t.tokenTypes.isEmpty && GGUFMetadata.int32s(m[typesKey]) == t.tokenTypes)
        let mergesKey = GGUFKeys.tokenizerMerges.name
        list("merges", t.merges.map(MetadataValue.string), element: .string, sameAs: mergesKey,
             equal: !t.merges.isEmpty && GGUFMetadata.strings(m[mergesKey]) == t.merges)
        tok("bos_id", t.bosTokenID.map { .int64(Int64($0)) })
        tok("eos_id", t.eosTokenID.map { .int64(Int64($0)) })
        tok("padding_id", t.paddingTokenID.map { .int64(Int64($0)) })
        tok("add_bos", t.addBOS.map(MetadataValue.bool))
        let templateKey = GGUFKeys.chatTemplate.name
        if let c = t.chatTemplate {
            if m[templateKey]?.stringValue == c {
                out.append((tokenizerPrefix + "chat_template" + referenceSuffix, .string(templateKey)))
            } else {
                tok("chat_template", .string(c))
            }
        }
        return out
    }

    /// The typed fields from the `GRPH` key/values. Unknown keys are ignored (a newer writer's
    /// additions); known keys of the wrong type are errors.
    static func decode(
        _ fields: [(key: String, value: MetadataValue)], metadata: Metadata, file: String
    ) throws(IngotError) -> (architecture: String?, hyperparameters: Hyperparameters, tokenizer: Tokenizer, source: String?) {
        var arch: String?
        var source: String?
        var h = Hyperparameters()
        var t = Tokenizer()
        func bad(_ key: String, _ v: MetadataValue) -> IngotError {
            .badHeader(file: file, reason: "graph field '\(Echo.value(key))' has an unusable \(v.type.name) value")
        }
        func int(_ key: String, _ v: MetadataValue) throws(IngotError) -> Int {
            guard case let .int64(x) = v, let i = Int(exactly: x) else { throw bad(key, v) }
            return i
        }
        func double(_ key: String, _ v: MetadataValue) throws(IngotError) -> Double {
            guard case let .float64(x) = v else { throw bad(key, v) }
            return x
        }
        func string(_ key: String, _ v: MetadataValue) throws(IngotError) -> String {
            guard case let .string(s) = v else { throw bad(key, v) }
            return s
        }
        /// A referenced metadata value (the key must exist).
        func referenced(_ key: String, _ v: MetadataValue) throws(IngotError) -> MetadataValue {
            let target = try string(key, v)
            guard let value = metadata[target] else {
                throw .badHeader(file: file, reason: "graph field '\(Echo.value(key))' refers to metadata key '\(Echo.value(target))', which is absent")
            }
            return value
        }
        func strings(_ key: String, _ v: MetadataValue) throws(IngotError) -> [String] {
            guard let s = GGUFMetadata.strings(v) else { throw bad(key, v) }
            return s
        }
        func int32s(_ key: String, _ v: MetadataValue) throws(IngotError) -> [Int32] {
            guard let s = GGUFMetadata.int32s(v) else { throw bad(key, v) }
            return s
        }
        for (key, v) in fields {
            switch key {
            case architecture: arch = try string(key, v)
            case sourceKey: source = try string(key, v)
            case hyperparameterPrefix + "context_length": h.contextLength = try int(key, v)
            case hyperparameterPrefix + "embedding_length": h.embeddingLength = try int(key, v)
            case hyperparameterPrefix + "block_count": h.blockCount = try int(key, v)
            case hyperparameterPrefix + "feed_forward_length": h.feedForwardLength = try int(key, v)
            case hyperparameterPrefix + "head_count": h.headCount = try int(key, v)
            case hyperparameterPrefix + "head_count_kv": h.headCountKV = try int(key, v)
            case hyperparameterPrefix + "rope_freq_base": h.ropeFreqBase = try double(key, v)
            case hyperparameterPrefix + "rope_dimension_count": h.ropeDimensionCount = try int(key, v)
            case hyperparameterPrefix + "layer_norm_epsilon": h.layerNormEpsilon = try double(key, v)
            case hyperparameterPrefix + "rms_norm_epsilon": h.rmsNormEpsilon = try double(key, v)
            case hyperparameterPrefix + "vocab_size": h.vocabSize = try int(key, v)
            case tokenizerPrefix + "model": t.model = try string(key, v)
            case tokenizerPrefix + "pre": t.preTokenizer = try string(key, v)
            case tokenizerPrefix + "tokens": t.tokens = try strings(key, v)
            case tokenizerPrefix + "tokens" + referenceSuffix: t.tokens = try strings(key, try referenced(key, v))
            case tokenizerPrefix + "token_types": t.tokenTypes = try int32s(key, v)
            case tokenizerPrefix + "token_types" + referenceSuffix: t.tokenTypes = try int32s(key, try referenced(key, v))
            case tokenizerPrefix + "merges": t.merges = try strings(key, v)
            case tokenizerPrefix + "merges" + referenceSuffix: t.merges = try strings(key, try referenced(key, v))
            case tokenizerPrefix + "bos_id": t.bosTokenID = try int(key, v)
            case tokenizerPrefix + "eos_id": t.eosTokenID = try int(key, v)
            case tokenizerPrefix + "padding_id": t.paddingTokenID = try int(key, v)
            case tokenizerPrefix + "add_bos":
                guard case let .bool(b) = v else { throw bad(key, v) }
                t.addBOS = b
            case tokenizerPrefix + "chat_template": t.chatTemplate = try string(key, v)
            case tokenizerPrefix + "chat_template" + referenceSuffix:
                t.chatTemplate = try string(key, try referenced(key, v))
            default: continue
            }
        }
        return (arch, h, t, source)
    }
}
