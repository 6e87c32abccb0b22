import Formats
import TensorGraph

/// Byte-level BPE tokenizers between Hugging Face's `tokenizer.json` (+ `tokenizer_config.json`)
/// and the tensor graph's `Tokenizer` (GGUF's `tokenizer.ggml.*`).
public enum TokenizerJSON {
    /// GGUF token types.
    public enum TokenType: Int32 {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// One pre-tokenizer kind from `formats/tokenizer-pre.json`.
    public struct PreKind: Sendable {
        public let pre: String
        public let aliases: [String]
        public let preTokenizer: JSONValue
        public let regexes: [String]
        public let ignoreMerges: Bool
    }

    public static let preKinds: [PreKind] = {
        let json = try! JSONParser.parse(EmbeddedTables.files["tokenizer-pre.json"]!)
        return json["kinds"]!.arrayValue!.map { k in
            PreKind(
                pre: k["pre"]!.stringValue!, aliases: k["aliases"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                preTokenizer: k["pre_tokenizer"]!, regexes: k["regexes"]!.arrayValue!.compactMap(\.stringValue),
                ignoreMerges: k["ignore_merges"]?.boolValue ?? false)
        }
    }()

    public static func preKind(named name: String) -> PreKind? {
        preKinds.first { $0.pre == name || $0.aliases.contains(name) }
    }

    /// The kind whose pre_tokenizer equals `value` (object key order and `trim_offsets`, which
    /// changes offsets but not ids, ignored).
    public static func preKind(matching value: JSONValue) -> PreKind? {
        let want = canonical(value)
        return preKinds.first { canonical($0.preTokenizer) == want }
    }

    static func canonical(_ v: JSONValue) -> JSONValue {
        switch v {
        case let .object(entries):
            return .object(entries.filter { $0.0 != "trim_offsets" }.map { ($0.0, canonical($0.1)) }.sorted { $0.0 < $1.0 })
        case let .array(items): return .array(items.map(canonical))
        default: return v
        }
    }

    // MARK: tokenizer.json → Tokenizer

    /// Reads a byte-level BPE `tokenizer.json`, with `tokenizer_config.json` (BOS/EOS, chat template,
    /// add_bos_token) and `config.json` (token ids, vocab_size padding) when present.
    public static func parse(tokenizerJSON text: String, tokenizerConfig: String?, config: JSONValue?) throws -> Tokenizer {
        let json: JSONValue
        do { json = try JSONParser.parse(text) } catch { throw ArchitectureError.badTokenizer(reason: error.description) }
        guard let model = json["model"], model["type"]?.stringValue == "BPE" else {
            throw ArchitectureError.badTokenizer(reason: "model type \(Echo.json(json["model"]?["type"] ?? .null)) is not \"BPE\" (only byte-level BPE converts)")
        }
        guard let vocab = model["vocab"]?.objectEntries else { throw ArchitectureError.badTokenizer(reason: "model.vocab missing") }
        var byID: [Int: String] = [:]
        for (token, idValue) in vocab {
            guard let id = idValue.intValue, id >= 0, id < 10_000_000 else {
                throw ArchitectureError.badTokenizer(reason: "vocab id \(Echo.json(idValue)) of '\(Echo.value(token))' is not an integer in 0..<10000000")
            }
            byID[id] = token
        }
        var types: [Int: TokenType] = [:]
        for added in json["added_tokens"]?.arrayValue ?? [] {
            guard let id = added["id"]?.intValue, let content = added["content"]?.stringValue, id >= 0, id < 10_000_000 else {
                throw ArchitectureError.badTokenizer(reason: "added token \(Echo.json(added)) lacks an id in 0..<10000000 or a string content")
            }
            byID[id] = content
            types[id] = added["special"]?.boolValue == true ? .control : .userDefined
        }
        let configVocab = config?["vocab_size"]?.intValue ?? 0
        let count = max((byID.keys.max() ?? -1) + 1, configVocab)
        var tok = Tokenizer()
        tok.model = "gpt2"
        tok.tokens.reserveCapacity(count)
        for id in 0..<count {
            if let s = byID[id] {
                tok.tokens.append(s)
                tok.tokenTypes.append((types[id] ?? .normal).rawValue)
            } else {
                tok.tokens.append("[PAD\(id)]")
                tok.tokenTypes.append(TokenType.unused.rawValue)
            }
        }
        for m in model["merges"]?.arrayValue ?? [] {
            if let s = m.stringValue {
                tok.merges.append(s)
            } else if let pair = m.arrayValue?.compactMap(\.stringValue), pair.count == 2 {
                tok.merges.append(pair[0] + " " + pair[1])
            } else {
                throw ArchitectureError.badTokenizer(reason: "merge \(Echo.json(m)) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        if let pre = json["pre_tokenizer"], let kind = preKind(matching: pre) {
            tok.preTokenizer = kind.pre
        } else {
            throw ArchitectureError.badTokenizer(
                reason: "pre_tokenizer \(Echo.json(json["pre_tokenizer"] ?? .null, limit: 200)) matches none of the kinds in formats/tokenizer-pre.json (\(preKinds.map(\.pre).joined(separator: ", ")))")
        }

        let tc = try tokenizerConfig.map { text -> JSONValue in
            do { return try JSONParser.parse(text) } catch {
                throw ArchitectureError.badTokenizer(file: "tokenizer_config.json", reason: "\(error)")
            }
        }
        func tokenID(_ key: String) -> Int? {
            // tokenizer_config.json names tokens ("<s>" or {"content": "<s>"}); config.json has ids.
            if let v = tc?[key] {
                let content = v.stringValue ?? v["content"]?.stringValue
                if let content, let id = tok.tokens.firstIndex(of: content) { return id }
            }
            return config?[key + "_id"]?.intValue
        }
        tok.bosTokenID = tokenID("bos_token")
        tok.eosTokenID = tokenID("eos_token")
        tok.paddingTokenID = tokenID("pad_token")
        if let add = tc?["add_bos_token"]?.boolValue {
            tok.addBOS = add
        } else if let post = json["post_processor"] {
            tok.addBOS = postProcessorAddsBOS(post, bos: tok.bosTokenID)
        } else {
            tok.addBOS = false
        }
        tok.chatTemplate = tc?["chat_template"]?.stringValue
        return tok
    }

    /// Whether a TemplateProcessing post-processor puts BOS before the sequence.
    static func postProcessorAddsBOS(_ post: JSONValue, bos: Int?) -> Bool {
        if post["type"]?.stringValue == "Sequence" {
            return (post["processors"]?.arrayValue ?? []).contains { postProcessorAddsBOS($0, bos: bos) }
        }
        guard post["type"]?.stringValue == "TemplateProcessing", let first = post["single"]?.arrayValue?.first else { return false }
        return first["SpecialToken"] != nil
    }

    // MARK: Tokenizer → tokenizer.json

    /// Writes `tokenizer.json` and `tokenizer_config.json` texts that the Python `tokenizers` and
    /// `transformers` packages load.
    public static func render(_ tok: Tokenizer, maxLength: Int?) throws -> (tokenizerJSON: String, tokenizerConfig: String) {
        guard tok.model == "gpt2" else {
            throw ArchitectureError.badTokenizer(reason: "tokenizer model '\(tok.model ?? "none")' is not byte-level BPE ('gpt2')")
        }
        guard let kind = preKind(named: tok.preTokenizer ?? "gpt-2") else {
            throw ArchitectureError.badTokenizer(reason: "pre-tokenizer '\(tok.preTokenizer ?? "")' is not in formats/tokenizer-pre.json")
        }
        var vocab: [(String, JSONValue)] = []
        var seen = Set<String>()
        var added: [JSONValue] = []
        for (id, token) in tok.tokens.enumerated() {
            let type = id < tok.tokenTypes.count ? TokenType(rawValue: tok.tokenTypes[id]) ?? .normal : .normal
            if type == .unused { continue }
            if seen.insert(token).inserted { vocab.append((token, .int(id))) }
            if type == .control || type == .userDefined {
                added.append(.object([
                    ("id", .int(id)), ("content", .string(token)), ("single_word", .bool(false)),
                    ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(type == .userDefined)),
                    ("special", .bool(type == .control)),
                ]))
            }
        }
        let byteLevel: JSONValue = .object([
            ("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)),
            ("use_regex", .bool(true)),
        ])
        let post: JSONValue
        if tok.addBOS == true, let bos = tok.bosTokenID, bos < tok.tokens.count {
            let name = tok.tokens[bos]
            func special(_ typeID: Int) -> JSONValue { .object([("SpecialToken", .object([("id", .string(name)), ("type_id", .int(typeID))]))]) }
            func seq(_ id: String, _ typeID: Int) -> JSONValue { .object([("Sequence", .object([("id", .string(id)), ("type_id", .int(typeID))]))]) }
            post = .object([
                ("type", .string("TemplateProcessing")),
                ("single", .array([special(0), seq("A", 0)])),
                ("pair", .array([special(0), seq("A", 0), special(1), seq("B", 1)])),
                ("special_tokens", .object([(name, .object([
                    ("id", .string(name)), ("ids", .array([.int(bos)])), ("tokens", .array([.string(name)])),
                ]))])),
            ])
        } else {
            post = byteLevel
        }
        let json: JSONValue = .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(added)), ("normalizer", .null), ("pre_tokenizer", kind.preTokenizer),
            ("post_processor", post), ("decoder", byteLevel),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)),
                ("byte_fallback", .bool(false)), ("ignore_merges", .bool(kind.ignoreMerges)),
                ("vocab", .object(vocab)), ("merges", .array(tok.merges.map(JSONValue.string))),
            ])),
        ])
        var config: [(String, JSONValue)] = [
            ("tokenizer_class", .string("PreTrainedTokenizerFast")),
            ("add_bos_token", .bool(tok.addBOS ?? false)),
            ("clean_up_tokenization_spaces", .bool(false)),
        ]
        func name(_ id: Int?) -> JSONValue { id.flatMap { $0 < tok.tokens.count ? .string(tok.tokens[$0]) : nil } ?? .null }
        if let id = tok.bosTokenID { config.append(("bos_token", name(id))) }
        if let id = tok.eosTokenID { config.append(("eos_token", name(id))) }
        if let id = tok.paddingTokenID { config.append(("pad_token", name(id))) }
        if let max = maxLength { config.append(("model_max_length", .int(max))) }
        if let t = tok.chatTemplate { config.append(("chat_template", .string(t))) }
        return (JSONWriter.write(json, indent: 2) + "\n", JSONWriter.write(.object(config), indent: 2) + "\n")
    }
}

extension TokenizerJSON {
    /// The tokenizer a graph carries: GGUF's `tokenizer.ggml.*`, or for a Hugging Face folder its
    /// `tokenizer.model` or `tokenizer.json` (with `tokenizer_config.json` and `config.json`).
    public static func tokenizer(of graph: TensorGraph) throws -> Tokenizer { try tokenizerAndMetadata(of: graph).tokenizer }

    /// The tokenizer and the metadata its encoder reads (a SentencePiece vocabulary's scores and
    /// `add_space_prefix`): a GGUF's own keys, or those HF → GGUF would write for a folder.
    public static func tokenizerAndMetadata(of graph: TensorGraph) throws -> (tokenizer: Tokenizer, metadata: Metadata) {
        if !graph.tokenizer.isEmpty { return (graph.tokenizer, graph.metadata) }
        let config = try graph.metadata[HFFolder.metadataPrefix + "config.json"]?.stringValue.map { try JSONParser.parse($0) }
        let unit = try? ArchitectureRegistry.unit(hfModelType: graph.architecture)
        guard let (tok, extras) = try HFTokenizer.read(
            graph, config: config, spacePrefix: unit?.sentencePieceSpacePrefix, addedTokens: unit?.sentencePieceAddedTokens ?? .decoderLooksSpecial)
        else {
            throw ArchitectureError.missingTokenizer(reason: "the model carries no tokenizer (no tokenizer.ggml.* keys, no tokenizer.model or tokenizer.json)")
        }
        var m = Metadata()
        for (k, v) in extras?.ggufKeys ?? [] { m[k] = v }
        return (tok, m)
    }
}
