import TensorGraph

/// GGUF's fixed numbers and the metadata key names Smelt maps to typed graph fields, kept as data.
/// Mirrored in `formats/gguf.md`; names and types follow gguf-py's `constants.py` / `GGUFWriter`
/// (what llama.cpp's `convert_hf_to_gguf.py` writes).
public enum GGUFKeys {
    /// `general.architecture` (string): `llama`, `qwen2`, … — the `{arch}` prefix of the model keys.
    public static let architecture = "general.architecture"
    /// `general.alignment` (uint32): data alignment in bytes, a nonzero power of two; 32 when absent.
    public static let alignment = "general.alignment"
    /// `split.no` (uint16): the 0-based index of this file in a split set.
    public static let splitNo = "split.no"
    /// `split.count` (uint16): the number of files in a split set.
    public static let splitCount = "split.count"
    /// `split.tensors.count` (int32): the number of tensors in the whole split set.
    public static let splitTensorsCount = "split.tensors.count"
    /// The prefix every split key starts with; such keys describe the files, not the model.
    public static let splitPrefix = "split."

    /// An integer hyperparameter: key `{arch}.<suffix>`, the type convert_hf_to_gguf.py writes.
    public struct IntField: @unchecked Sendable {
        public let suffix: String
        public let type: MetadataType
        public let field: WritableKeyPath<Hyperparameters, Int?>
    }

    /// A floating-point hyperparameter: key `{arch}.<suffix>`.
    public struct FloatField: @unchecked Sendable {
        public let suffix: String
        public let type: MetadataType
        public let field: WritableKeyPath<Hyperparameters, Double?>
    }

    /// Integer hyperparameters, in the order `GGUFMetadata.apply` adds missing keys.
    public static let hyperparameterInts: [IntField] = [
        IntField(suffix: "context_length", type: .uint32, field: \.contextLength),
        IntField(suffix: "embedding_length", type: .uint32, field: \.embeddingLength),
        IntField(suffix: "block_count", type: .uint32, field: \.blockCount),
        IntField(suffix: "feed_forward_length", type: .uint32, field: \.feedForwardLength),
        IntField(suffix: "attention.head_count", type: .uint32, field: \.headCount),
        IntField(suffix: "attention.head_count_kv", type: .uint32, field: \.headCountKV),
        IntField(suffix: "rope.dimension_count", type: .uint32, field: \.ropeDimensionCount),
        IntField(suffix: "vocab_size", type: .uint32, field: \.vocabSize),
    ]

    /// Floating-point hyperparameters (all float32 in files convert_hf_to_gguf.py writes).
    public static let hyperparameterFloats: [FloatField] = [
        FloatField(suffix: "rope.freq_base", type: .float32, field: \.ropeFreqBase),
        FloatField(suffix: "attention.layer_norm_epsilon", type: .float32, field: \.layerNormEpsilon),
        FloatField(suffix: "attention.layer_norm_rms_epsilon", type: .float32, field: \.rmsNormEpsilon),
    ]

    /// The full key of a hyperparameter for an architecture: `llama` + `context_length` →
    /// `llama.context_length`.
    public static func key(_ architecture: String, _ suffix: String) -> String { architecture + "." + suffix }

    /// A tokenizer key and the GGUF type written for it (`elementType` for arrays).
    public struct TokenizerKey: Sendable, Equatable {
        public let name: String
        public let type: MetadataType
        public let elementType: MetadataType?
    }

    /// `tokenizer.ggml.model` (string): `gpt2` (byte-level BPE), `llama` (SentencePiece), …
    public static let tokenizerModel = TokenizerKey(name: "tokenizer.ggml.model", type: .string, elementType: nil)
    /// `tokenizer.ggml.pre` (string): the pre-tokenizer name (`smollm`, `llama-bpe`, …).
    public static let tokenizerPre = TokenizerKey(name: "tokenizer.ggml.pre", type: .string, elementType: nil)
    /// `tokenizer.ggml.tokens` (array of string): the vocabulary by id.
    public static let tokenizerTokens = TokenizerKey(name: "tokenizer.ggml.tokens", type: .array, elementType: .string)
    /// `tokenizer.ggml.token_type` (array of int32): llama.cpp token types by id.
    public static let tokenizerTokenType = TokenizerKey(
        name: "tokenizer.ggml.token_type", type: .array, elementType: .int32)
    /// `tokenizer.ggml.merges` (array of string): BPE merges, `"a b"`, by rank.
    public static let tokenizerMerges = TokenizerKey(name: "tokenizer.ggml.merges", type: .array, elementType: .string)
    /// `tokenizer.ggml.bos_token_id` (uint32).
    public static let tokenizerBOS = TokenizerKey(name: "tokenizer.ggml.bos_token_id", type: .uint32, elementType: nil)
    /// `tokenizer.ggml.eos_token_id` (uint32).
    public static let tokenizerEOS = TokenizerKey(name: "tokenizer.ggml.eos_token_id", type: .uint32, elementType: nil)
    /// `tokenizer.ggml.padding_token_id` (uint32).
    public static let tokenizerPadding = TokenizerKey(
        name: "tokenizer.ggml.padding_token_id", type: .uint32, elementType: nil)
    /// `tokenizer.ggml.add_bos_token` (bool).
    public static let tokenizerAddBOS = TokenizerKey(name: "tokenizer.ggml.add_bos_token", type: .bool, elementType: nil)
    /// `tokenizer.chat_template` (string): the Jinja chat template.
    public static let chatTemplate = TokenizerKey(name: "tokenizer.chat_template", type: .string, elementType: nil)

    /// Every tokenizer key, in the order `GGUFMetadata.apply` adds missing ones.
    public static let tokenizerKeys: [TokenizerKey] = [
        tokenizerModel, tokenizerPre, tokenizerTokens, tokenizerTokenType, tokenizerMerges, tokenizerBOS,
        tokenizerEOS, tokenizerPadding, tokenizerAddBOS, chatTemplate,
    ]
}

/// The format's fixed numbers.
public enum GGUF {
    /// The four bytes every GGUF file starts with: `GGUF`.
    public static let magic: [UInt8] = [0x47, 0x47, 0x55, 0x46]
    /// The version written.
    public static let version: UInt32 = 3
    /// The versions read: 2 and 3 share one layout (64-bit counts); 1 had 32-bit counts.
    public static let readableVersions: ClosedRange<UInt32> = 2...3
    /// Data alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// ggml tensors have at most four dimensions.
    public static let maxDimensions = 4
    /// Arrays nest at most this deep (an array of scalars has depth 1).
    public static let maxArrayDepth = 8
    /// Files of a split set are named `STEM-00001-of-0000N.gguf`; at most this many files.
    public static let maxSplitCount = 99_999

    /// `STEM-0000i-of-0000N.gguf` (1-based `index`), the name llama.cpp's `llama_split_path` makes.
    public static func splitFileName(stem: String, index: Int, count: Int) -> String {
        "\(stem)-\(pad5(index))-of-\(pad5(count)).gguf"
    }

    /// The stem, 1-based index and count of a split file name, or `nil` if `name` is not one.
    public static func parseSplitFileName(_ name: String) -> (stem: String, index: Int, count: Int)? {
        let suffix = ".gguf"
        guard name.hasSuffix(suffix) else { return nil }
        let body = Array(name.utf8.dropLast(suffix.utf8.count))
        // "-NNNNN-of-NNNNN" is 15 bytes.
        guard body.count > 15 else { return nil }
        let tail = Array(body[(body.count - 15)...])
        guard tail[0] == UInt8(ascii: "-"), tail[6] == UInt8(ascii: "-"), tail[7] == UInt8(ascii: "o"),
            tail[8] == UInt8(ascii: "f"), tail[9] == UInt8(ascii: "-")
        else { return nil }
        func number(_ bytes: ArraySlice<UInt8>) -> Int? {
            var n = 0
            for b in bytes {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                n = n * 10 + Int(b - 0x30)
            }
            return n
        }
        guard let index = number(tail[1..<6]), let count = number(tail[10..<15]) else { return nil }
        let stem = String(decoding: body[..<(body.count - 15)], as: UTF8.self)
        return (stem, index, count)
    }

    static func pad5(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }
}
