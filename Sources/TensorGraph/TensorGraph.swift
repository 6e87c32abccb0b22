/// The intermediate representation every reader produces and every writer consumes: one model as
/// architecture, typed hyperparameters, free-form metadata, tokenizer and ordered tensors.
public struct TensorGraph: Sendable {
    /// `llama`, `gpt2`, `qwen2`, `bert`, … or `nil` when the source does not say.
    public var architecture: String?
    public var hyperparameters: Hyperparameters
    /// Every key of the source preserved (GGUF key/values, safetensors `__metadata__`, and for a
    /// Hugging Face folder `hf.config.json` / `hf.tokenizer.json` / … holding those files' text).
    public var metadata: Metadata
    public var tokenizer: Tokenizer
    public private(set) var tensors: [Tensor]
    private var index: [String: Int]

    public init(
        architecture: String? = nil, hyperparameters: Hyperparameters = .init(), metadata: Metadata = .init(),
        tokenizer: Tokenizer = .init(), tensors: [Tensor] = []
    ) throws {
        self.architecture = architecture
        self.hyperparameters = hyperparameters
        self.metadata = metadata
        self.tokenizer = tokenizer
        self.tensors = []
        self.index = [:]
        for t in tensors { try append(t) }
    }

    public mutating func append(_ tensor: Tensor) throws {
        guard index[tensor.name] == nil else { throw GraphError.duplicateTensor(name: tensor.name) }
        index[tensor.name] = tensors.count
        tensors.append(tensor)
    }

    public subscript(name: String) -> Tensor? { index[name].map { tensors[$0] } }

    /// Replaces every tensor by `transform(tensor)` keeping the order (names may change).
    public mutating func mapTensors(_ transform: (Tensor) throws -> Tensor) throws {
        let old = tensors
        tensors = []
        index = [:]
        for t in old { try append(transform(t)) }
    }

    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Bytes per dtype, largest first.
    public var bytesByDType: [(dtype: DType, tensors: Int, bytes: Int)] {
        var acc: [DType: (Int, Int)] = [:]
        for t in tensors {
            let cur = acc[t.dtype] ?? (0, 0)
            acc[t.dtype] = (cur.0 + 1, cur.1 + t.byteCount)
        }
        return acc.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.bytes > $1.bytes }
    }
}

/// The hyperparameters every architecture here is described by; `nil` where the source lacks it.
public struct Hyperparameters: Sendable, Equatable, Codable {
    public var contextLength: Int?
    public var embeddingLength: Int?
    public var blockCount: Int?
    public var feedForwardLength: Int?
    public var headCount: Int?
    public var headCountKV: Int?
    public var ropeFreqBase: Double?
    public var ropeDimensionCount: Int?
    public var layerNormEpsilon: Double?
    public var rmsNormEpsilon: Double?
    public var vocabSize: Int?

    public init() {}

    /// Name/value pairs of the fields that are set, in a fixed order (for printing).
    public var fields: [(name: String, value: String)] {
        var out: [(String, String)] = []
        func add(_ n: String, _ v: CustomStringConvertible?) { if let v { out.append((n, v.description)) } }
        add("context_length", contextLength)
        add("embedding_length", embeddingLength)
        add("block_count", blockCount)
        add("feed_forward_length", feedForwardLength)
        add("head_count", headCount)
        add("head_count_kv", headCountKV)
        add("rope_freq_base", ropeFreqBase)
        add("rope_dimension_count", ropeDimensionCount)
        add("layer_norm_epsilon", layerNormEpsilon)
        add("rms_norm_epsilon", rmsNormEpsilon)
        add("vocab_size", vocabSize)
        return out
    }
}

/// A byte-level BPE tokenizer's data, as GGUF's `tokenizer.ggml.*` keys hold it. Empty for sources
/// that carry no tokenizer.
public struct Tokenizer: Sendable, Equatable {
    public var model: String?
    public var preTokenizer: String?
    public var tokens: [String] = []
    public var tokenTypes: [Int32] = []
    public var merges: [String] = []
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var paddingTokenID: Int?
    public var addBOS: Bool?
    public var chatTemplate: String?

    public init() {}
    public var isEmpty: Bool { model == nil && tokens.isEmpty }
}
