/// The pre-tokenizer kinds, by GGUF `tokenizer.ggml.pre` name: for each, the split patterns
/// applied in order before byte-level BPE and the flags llama.cpp's `llama_vocab::load` sets for
/// that name. This table is the one place kinds are defined; names and flags follow llama.cpp
/// (`src/llama-vocab.cpp`), and each pattern's regex text is the one llama.cpp and `tokenizer.json`
/// files carry.
public struct PreTokenizerKind: Sendable, Equatable {
    /// The canonical `tokenizer.ggml.pre` name.
    public let name: String
    /// Other names that select the same behaviour.
    public let aliases: [String]
    /// Split patterns, applied in order: the first to the text, each next to every piece of the one
    /// before.
    public let patterns: [SplitPattern]
    /// A pre-token found whole in the vocabulary is emitted as that token without merging.
    public let ignoreMerges: Bool
    /// Whether BOS is prepended when the model's metadata does not say (`add_bos_token` absent).
    public let defaultAddBOS: Bool

    public static let all: [PreTokenizerKind] = [
        PreTokenizerKind(
            name: "gpt-2", aliases: ["gpt2", "phi-2", "mpt", "olmo", "jais"],
            patterns: [.gpt2], ignoreMerges: false, defaultAddBOS: false),
        PreTokenizerKind(
            name: "llama-bpe",
            aliases: ["llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"],
            patterns: [.llama3], ignoreMerges: true, defaultAddBOS: true),
        // Same pattern as llama-bpe but merges applied to every pre-token.
        PreTokenizerKind(
            name: "dbrx", aliases: ["smaug-bpe"], patterns: [.llama3], ignoreMerges: false, defaultAddBOS: false),
        PreTokenizerKind(
            name: "qwen2", aliases: ["deepseek-r1-qwen", "stablelm2", "megrez"],
            patterns: [.qwen2], ignoreMerges: false, defaultAddBOS: false),
        PreTokenizerKind(
            name: "smollm", aliases: ["starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"],
            patterns: [.numbers, .gpt2], ignoreMerges: false, defaultAddBOS: false),
        // o200k (GPT-4o, gpt-oss). llama.cpp splits it with an ASCII approximation of the case
        // classes (`[^a-z]` / `[^A-Z]` among letters, marks not attached): this follows the
        // pattern as Hugging Face `tokenizers` runs it, which differs for non-ASCII cased letters
        // and combining marks.
        PreTokenizerKind(
            name: "gpt-4o", aliases: ["minimax-m2"], patterns: [.o200k], ignoreMerges: false, defaultAddBOS: false),
        // llama.cpp's fallback for a BPE model without (or with `default` as) its pre-tokenizer name.
        PreTokenizerKind(
            name: "default", aliases: [],
            patterns: [.punctuationRuns, .gpt2, .numberRuns, .asciiDigitTriples], ignoreMerges: false,
            defaultAddBOS: false),
    ]

    /// The kind a `tokenizer.ggml.pre` value selects; a missing name selects `default` as in
    /// llama.cpp.
    public static func named(_ name: String?) -> PreTokenizerKind? {
        let n = name ?? "default"
        return all.first { $0.name == n || $0.aliases.contains(n) }
    }

    /// Every accepted name.
    public static var names: [String] { all.flatMap { [$0.name] + $0.aliases } }

    /// Splits `text` into pre-tokens (no special-token handling).
    public func split(_ text: String) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        var out: [String] = []
        scalars.withUnsafeBufferPointer { s in
            var ends = [Int32(s.count)]
            var next: [Int32] = []
            for p in patterns {
                p.split(s, from: 0, ends: ends, into: &next)
                swap(&ends, &next)
            }
            var start = 0
            for e in ends {
                var piece = String.UnicodeScalarView()
                for i in start..<Int(e) { piece.append(Unicode.Scalar(s[i])!) }
                out.append(String(piece))
                start = Int(e)
            }
        }
        return out.filter { !$0.isEmpty }
    }
}
