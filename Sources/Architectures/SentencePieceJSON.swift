import Formats
import TensorGraph

/// SentencePiece BPE vocabularies (`tokenizer.ggml.model = "llama"`: Llama 2, Mistral, Gemma)
/// between GGUF's `tokenizer.ggml.*` keys and Hugging Face's `tokenizer.json`.
///
/// llama.cpp merges the adjacent pair whose concatenation is the token with the highest score
/// (leftmost on ties); a `tokenizer.json` BPE model merges the pair with the lowest merge rank. So
/// the merges written are every split of every token into two tokens, ranked by the token's score
/// (highest first; for one token, longer left parts first), which makes the two agree wherever
/// scores differ. Spaces become `▁` in the normalizer (with one prepended when
/// `add_space_prefix`), characters outside the vocabulary fall back to `<0xXX>` byte tokens,
/// control tokens are special added tokens, user-defined ones plain added tokens (both cut out
/// of the text before anything else, as llama.cpp does).
public enum SentencePieceJSON {
    /// What a SentencePiece vocabulary has beyond `Tokenizer`: per-token scores and the keys
    /// llama.cpp reads them with.
    public struct Extras: Sendable, Equatable {
        public var scores: [Float]
        public var addSpacePrefix: Bool
        /// `add_space_prefix` as the source states it (nil: unstated, llama.cpp's default true
        /// applies and no key is written).
        public var statedSpacePrefix: Bool?
        public var unknownTokenID: Int?
        public var addEOS: Bool?
        /// `tokenizer.ggml.add_sep_token`, when the folder's post-processor says.
        public var addSEP: Bool?

        public init(scores: [Float], addSpacePrefix: Bool, unknownTokenID: Int?, addEOS: Bool?) {
            self.scores = scores
            self.addSpacePrefix = addSpacePrefix
            self.unknownTokenID = unknownTokenID
            self.addEOS = addEOS
        }

        /// The extras a GGUF's metadata states (llama.cpp's defaults where a key is absent:
        /// scores 0, a space prefix).
        public init(metadata m: Metadata, count: Int) {
            if case let .array(_, values)? = m["tokenizer.ggml.scores"], values.count == count {
                scores = values.map { Float($0.doubleValue ?? 0) }
            } else {
                scores = [Float](repeating: 0, count: count)
            }
            if case let .bool(b)? = m["tokenizer.ggml.add_space_prefix"] { addSpacePrefix = b; statedSpacePrefix = b } else { addSpacePrefix = true }
            unknownTokenID = m["tokenizer.ggml.unknown_token_id"]?.intValue
            if case let .bool(b)? = m["tokenizer.ggml.add_eos_token"] { addEOS = b } else { addEOS = nil }
        }

        /// The GGUF keys for them (beside the ones `GGUFMetadata.apply` writes from `Tokenizer`).
        public var ggufKeys: [(String, MetadataValue)] {
            var out: [(String, MetadataValue)] = [
                ("tokenizer.ggml.scores", .array(elementType: .float32, values: scores.map { .float32($0) })),
            ]
            if let u = unknownTokenID { out.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(u)))) }
            if let e = addEOS { out.append(("tokenizer.ggml.add_eos_token", .bool(e))) }
            if let e = addSEP { out.append(("tokenizer.ggml.add_sep_token", .bool(e))) }
            if let s = statedSpacePrefix { out.append(("tokenizer.ggml.add_space_prefix", .bool(s))) }
            return out
        }
    }

    static let space = "\u{2581}"

    /// Every split of a token into two tokens, ranked as described above.
    /// Tokens whose `types` entry is unused (GGUF type 5) take no part.
    public static func merges(tokens: [String], scores: [Float], types: [Int32] = []) -> [(String, String)] {
        // Keyed by bytes: Swift's String equality is canonical equivalence, which would take
        // "য়" (U+09DF) for "য়" (U+09AF U+09BC), two different tokens.
        var ids: [[UInt8]: Int] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[Array(t.utf8)] == nil && !(i < types.count && types[i] == TokenizerJSON.TokenType.unused.rawValue) {
            ids[Array(t.utf8)] = i
        }
        struct Merge { var left: String, right: String, score: Float, leftLength: Int, rightLength: Int, order: Int }
        var all: [Merge] = []
        for (i, t) in tokens.enumerated() where ids[Array(t.utf8)] == i {
            let scalars = Array(t.unicodeScalars)
            guard scalars.count > 1 else { continue }
            var local: [(Int, Int, Merge)] = []
            for cut in 1..<scalars.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: scalars[..<cut])
                r.append(contentsOf: scalars[cut...])
                let left = String(l), right = String(r)
                guard let li = ids[Array(left.utf8)], let ri = ids[Array(right.utf8)] else { continue }
                local.append((li, ri, Merge(left: left, right: right, score: scores[i], leftLength: cut, rightLength: scalars.count - cut, order: 0)))
            }
            local.sort { ($0.0, $0.1) < ($1.0, $1.1) }
            for (_, _, m) in local {
                var m = m
                m.order = all.count
                all.append(m)
            }
        }
        all.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.leftLength != b.leftLength { return a.leftLength > b.leftLength }
            if a.rightLength != b.rightLength { return a.rightLength > b.rightLength }
            return a.order < b.order
        }
        return all.map { ($0.left, $0.right) }
    }

    // MARK: Tokenizer → tokenizer.json

    /// `tokenizer.json` and `tokenizer_config.json` texts for a SentencePiece vocabulary.
    public static func render(_ tok: Tokenizer, extras: Extras, maxLength: Int?) throws -> (tokenizerJSON: String, tokenizerConfig: String) {
        guard extras.scores.count == tok.tokens.count else {
            throw ArchitectureError.badTokenizer(reason: "\(extras.scores.count) scores for \(tok.tokens.count) tokens")
        }
        typealias T = TokenizerJSON.TokenType
        func type(_ id: Int) -> T { id < tok.tokenTypes.count ? T(rawValue: tok.tokenTypes[id]) ?? .normal : .normal }
        var vocab: [(String, JSONValue)] = []
        var seen = Set<[UInt8]>()  // bytes, not String (canonical equivalence)
        var added: [JSONValue] = []
        for (id, token) in tok.tokens.enumerated() {
            // Unused tokens ([PADn] beyond the model's pieces) stay out, as the byte-level writer
            // leaves them out: reading the file back makes them [PADn] unused tokens again.
            let t = type(id)
            if t == .unused { continue }
            if seen.insert(Array(token.utf8)).inserted { vocab.append((token, .int(id))) }
            if t == .control || t == .userDefined || t == .unknown {
                added.append(.object([
                    ("id", .int(id)), ("content", .string(token)), ("single_word", .bool(false)),
                    ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
                    ("special", .bool(t != .userDefined)),
                ]))
            }
        }
        let merges = merges(tokens: tok.tokens, scores: extras.scores, types: tok.tokenTypes)
        func replace(_ a: String, _ b: String) -> JSONValue {
            .object([("type", .string("Replace")), ("pattern", .object([("String", .string(a))])), ("content", .string(b))])
        }
        let normalizer: JSONValue = extras.addSpacePrefix
            ? .object([("type", .string("Sequence")), ("normalizers", .array([
                .object([("type", .string("Prepend")), ("prepend", .string(space))]), replace(" ", space),
            ]))])
            : replace(" ", space)
        var decoders: [JSONValue] = [
            replace(space, " "), .object([("type", .string("ByteFallback"))]), .object([("type", .string("Fuse"))]),
        ]
        if extras.addSpacePrefix {
            decoders.append(.object([("type", .string("Strip")), ("content", .string(" ")), ("start", .int(1)), ("stop", .int(0))]))
        }
        let unk = extras.unknownTokenID.flatMap { $0 < tok.tokens.count ? tok.tokens[$0] : nil }
        let json: JSONValue = .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(added)), ("normalizer", normalizer), ("pre_tokenizer", .null),
            ("post_processor", postProcessor(tok, addEOS: extras.addEOS ?? false)),
            ("decoder", .object([("type", .string("Sequence")), ("decoders", .array(decoders))])),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", unk.map(JSONValue.string) ?? .null),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("fuse_unk", .bool(true)),
                ("byte_fallback", .bool(true)), ("ignore_merges", .bool(false)),
                ("vocab", .object(vocab)), ("merges", .array(merges.map { .array([.string($0.0), .string($0.1)]) })),
            ])),
        ])
        var config: [(String, JSONValue)] = [
            ("tokenizer_class", .string("PreTrainedTokenizerFast")),
            ("add_bos_token", .bool(tok.addBOS ?? false)),
            ("add_eos_token", .bool(extras.addEOS ?? false)),
            ("clean_up_tokenization_spaces", .bool(false)),
        ]
        func name(_ id: Int?) -> JSONValue { id.flatMap { $0 < tok.tokens.count ? .string(tok.tokens[$0]) : nil } ?? .null }
        if let id = tok.bosTokenID { config.append(("bos_token", name(id))) }
        if let id = tok.eosTokenID { config.append(("eos_token", name(id))) }
        if let id = extras.unknownTokenID { config.append(("unk_token", name(id))) }
        if let id = tok.paddingTokenID { config.append(("pad_token", name(id))) }
        if let max = maxLength { config.append(("model_max_length", .int(max))) }
        if let t = tok.chatTemplate { config.append(("chat_template", .string(t))) }
        return (JSONWriter.write(json, indent: 2) + "\n", JSONWriter.write(.object(config), indent: 2) + "\n")
    }

    /// BOS before (and EOS after) the sequence, as the GGUF's add_bos/add_eos say.
    static func postProcessor(_ tok: Tokenizer, addEOS: Bool) -> JSONValue {
        var specials: [(String, Int)] = []
        func special(_ name: String, _ typeID: Int) -> JSONValue { .object([("SpecialToken", .object([("id", .string(name)), ("type_id", .int(typeID))]))]) }
        func seq(_ id: String, _ typeID: Int) -> JSONValue { .object([("Sequence", .object([("id", .string(id)), ("type_id", .int(typeID))]))]) }
        var single: [JSONValue] = [], pair: [JSONValue] = []
        var bos: String?, eos: String?
        if tok.addBOS == true, let b = tok.bosTokenID, b < tok.tokens.count { bos = tok.tokens[b]; specials.append((tok.tokens[b], b)) }
        if addEOS, let e = tok.eosTokenID, e < tok.tokens.count {
            eos = tok.tokens[e]
            if !specials.contains(where: { $0.1 == e }) { specials.append((tok.tokens[e], e)) }
        }
        if let bos { single.append(special(bos, 0)); pair.append(special(bos, 0)) }
        single.append(seq("A", 0)); pair.append(seq("A", 0))
        if let eos { single.append(special(eos, 0)); pair.append(special(eos, 0)) }
        if let bos { pair.append(special(bos, 1)) }
        pair.append(seq("B", 1))
        if let eos { pair.append(special(eos, 1)) }
        return .object([
            ("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)),
            ("special_tokens", .object(specials.map { name, id in
                (name, .object([("id", .string(name)), ("ids", .array([.int(id)])), ("tokens", .array([.string(name)]))]))
            })),
        ])
    }
}
