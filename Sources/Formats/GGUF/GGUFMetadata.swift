import TensorGraph

/// The typed views of GGUF metadata (architecture, hyperparameters, tokenizer) and the way back:
/// writing a graph's typed fields into GGUF keys, with the types llama.cpp's converter uses. The
/// key names and types are the tables in `GGUFKeys`.
public enum GGUFMetadata {
    /// The architecture, hyperparameters and tokenizer `metadata` describes. Tolerant of types
    /// (any integer type for counts, either float type for floats); keys that are missing or of an
    /// unusable type (say, a per-layer array for `feed_forward_length`) leave the field `nil`.
    public static func view(_ metadata: Metadata) -> (
        architecture: String?, hyperparameters: Hyperparameters, tokenizer: Tokenizer
    ) {
        let arch = metadata[GGUFKeys.architecture]?.stringValue
        var h = Hyperparameters()
        if let arch {
            for f in GGUFKeys.hyperparameterInts {
                if let v = metadata[GGUFKeys.key(arch, f.suffix)]?.intValue { h[keyPath: f.field] = v }
            }
            for f in GGUFKeys.hyperparameterFloats {
                if let v = metadata[GGUFKeys.key(arch, f.suffix)]?.doubleValue { h[keyPath: f.field] = v }
            }
        }
        var t = Tokenizer()
        t.model = metadata[GGUFKeys.tokenizerModel.name]?.stringValue
        t.preTokenizer = metadata[GGUFKeys.tokenizerPre.name]?.stringValue
        t.tokens = strings(metadata[GGUFKeys.tokenizerTokens.name]) ?? []
        t.tokenTypes = int32s(metadata[GGUFKeys.tokenizerTokenType.name]) ?? []
        t.merges = strings(metadata[GGUFKeys.tokenizerMerges.name]) ?? []
        t.bosTokenID = metadata[GGUFKeys.tokenizerBOS.name]?.intValue
        t.eosTokenID = metadata[GGUFKeys.tokenizerEOS.name]?.intValue
        t.paddingTokenID = metadata[GGUFKeys.tokenizerPadding.name]?.intValue
        if case let .bool(b)? = metadata[GGUFKeys.tokenizerAddBOS.name] { t.addBOS = b }
        t.chatTemplate = metadata[GGUFKeys.chatTemplate.name]?.stringValue
        return (arch, h, t)
    }

    /// Writes `graph`'s typed fields into its metadata under the GGUF keys, so that a graph read
    /// from another format is written as a proper GGUF: `general.architecture` (string, made the
    /// first key), `{arch}.*` counts as uint32 and eps/freq_base as float32, tokenizer tokens and
    /// merges as arrays of strings, token types as an array of int32, token ids as uint32,
    /// `add_bos_token` as bool, the chat template as a string. A key whose current value already
    /// says the same (in any numeric type) is left alone; other keys keep their place and values.
    /// Hyperparameters need an architecture to be named; without one they are not written.
    public static func apply(to graph: inout TensorGraph) {
        var typed: [(String, MetadataValue)] = []
        if let arch = graph.architecture {
            typed.append((GGUFKeys.architecture, .string(arch)))
            for f in GGUFKeys.hyperparameterInts {
                guard let v = graph.hyperparameters[keyPath: f.field] else { continue }
                typed.append((GGUFKeys.key(arch, f.suffix), count(v)))
            }
            for f in GGUFKeys.hyperparameterFloats {
                guard let v = graph.hyperparameters[keyPath: f.field] else { continue }
                typed.append((GGUFKeys.key(arch, f.suffix), .float32(Float(v))))
            }
        }
        let t = graph.tokenizer
        if let m = t.model { typed.append((GGUFKeys.tokenizerModel.name, .string(m))) }
        if let p = t.preTokenizer { typed.append((GGUFKeys.tokenizerPre.name, .string(p))) }
        if !t.tokens.isEmpty {
            typed.append((GGUFKeys.tokenizerTokens.name, .array(elementType: .string, values: t.tokens.map { .string($0) })))
        }
        if !t.tokenTypes.isEmpty {
            typed.append((
                GGUFKeys.tokenizerTokenType.name, .array(elementType: .int32, values: t.tokenTypes.map { .int32($0) })
            ))
        }
        if !t.merges.isEmpty {
            typed.append((GGUFKeys.tokenizerMerges.name, .array(elementType: .string, values: t.merges.map { .string($0) })))
        }
        if let v = t.bosTokenID { typed.append((GGUFKeys.tokenizerBOS.name, count(v))) }
        if let v = t.eosTokenID { typed.append((GGUFKeys.tokenizerEOS.name, count(v))) }
        if let v = t.paddingTokenID { typed.append((GGUFKeys.tokenizerPadding.name, count(v))) }
        if let v = t.addBOS { typed.append((GGUFKeys.tokenizerAddBOS.name, .bool(v))) }
        if let v = t.chatTemplate { typed.append((GGUFKeys.chatTemplate.name, .string(v))) }

        var out = Metadata()
        if let arch = graph.architecture { out[GGUFKeys.architecture] = .string(arch) }
        for (k, v) in graph.metadata.entries where !(graph.architecture != nil && k == GGUFKeys.architecture) {
            out[k] = v
        }
        for (k, v) in typed {
            if let existing = out[k], sameMeaning(existing, v) { continue }
            out[k] = v
        }
        graph.metadata = out
    }

    /// `apply(to:)` on a copy.
    public static func applying(to graph: TensorGraph) -> TensorGraph {
        var g = graph
        apply(to: &g)
        return g
    }

    /// A count or token id: uint32 as llama.cpp expects, a wider type only if it does not fit.
    static func count(_ v: Int) -> MetadataValue {
        if let u = UInt32(exactly: v) { return .uint32(u) }
        return v >= 0 ? .uint64(UInt64(v)) : .int64(Int64(v))
    }

    /// Whether an existing value already carries what the typed field says.
    static func sameMeaning(_ a: MetadataValue, _ b: MetadataValue) -> Bool {
        switch (a, b) {
        case (.float32, _), (.float64, _):
            guard case let .float32(y) = b, let x = a.doubleValue else { return a == b }
            return Float(x) == y
        default:
            if let x = a.intValue, let y = b.intValue { return x == y }
            return a == b
        }
    }

    static func strings(_ v: MetadataValue?) -> [String]? {
        guard case let .array(_, values)? = v else { return nil }
        var out: [String] = []
        out.reserveCapacity(values.count)
        for e in values {
            guard case let .string(s) = e else { return nil }
            out.append(s)
        }
        return out
    }

    static func int32s(_ v: MetadataValue?) -> [Int32]? {
        guard case let .array(_, values)? = v else { return nil }
        var out: [Int32] = []
        out.reserveCapacity(values.count)
        for e in values {
            guard let i = e.intValue, let x = Int32(exactly: i) else { return nil }
            out.append(x)
        }
        return out
    }
}
