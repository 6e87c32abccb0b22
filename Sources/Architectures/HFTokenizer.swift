import Formats
import TensorGraph

/// A Hugging Face folder's tokenizer as GGUF holds it, chosen as llama.cpp's converter chooses: a
/// bare SentencePiece `tokenizer.model` first, then `tokenizer.json` — SentencePiece-style (BPE
/// with byte fallback) or byte-level BPE.
public enum HFTokenizer {
    /// How a `tokenizer.model`'s vocabulary takes the folder's added tokens (llama.cpp's
    /// converters differ by architecture).
    public enum AddedTokens: Sendable {
        /// tokenizer_config.json's `added_tokens_decoder`: control when special or special-looking,
        /// else user-defined with `▁` as spaces (`_create_vocab_sentencepiece`).
        case decoderLooksSpecial
        /// `added_tokens_decoder`, then tokenizer.json's `added_tokens`: control when special,
        /// else user-defined as written (Phi-3's converter).
        case decoderThenTokenizerJSON
    }

    /// The tokenizer and the SentencePiece extras (nil for byte-level BPE), or nil when the folder
    /// has no tokenizer. `spacePrefix`: the architecture's `add_space_prefix` for a
    /// `tokenizer.model` (Gemma 3: false), when it states one.
    public static func read(
        _ hf: TensorGraph, config: JSONValue?, spacePrefix: Bool? = nil, addedTokens: AddedTokens = .decoderLooksSpecial
    ) throws -> (Tokenizer, SentencePieceJSON.Extras?)? {
        let p = HFFolder.metadataPrefix
        let tokenizerConfig: JSONValue? = try hf.metadata[p + "tokenizer_config.json"]?.stringValue.map { text in
            do { return try JSONParser.parse(text) } catch {
                throw ArchitectureError.badTokenizer(file: "tokenizer_config.json", reason: "\(error)")
            }
        }
        let tokenizerJSON: JSONValue? = try hf.metadata[p + "tokenizer.json"]?.stringValue.map { text in
            do { return try JSONParser.parse(text) } catch { throw ArchitectureError.badTokenizer(reason: "\(error)") }
        }
        if let bytes = HFFolder.binarySideFile(hf, "tokenizer.model") {
            let model = try SentencePieceModelFile(bytes: bytes)
            return withChatTemplateFile(try fromModelFile(
                model, config: config, tokenizerConfig: tokenizerConfig, tokenizerJSON: tokenizerJSON, spacePrefix: spacePrefix,
                addedTokens: addedTokens), hf)
        }
        guard let json = tokenizerJSON, let text = hf.metadata[p + "tokenizer.json"]?.stringValue else { return nil }
        if json["model"]?["type"]?.stringValue == "BPE", json["model"]?["byte_fallback"]?.boolValue == true {
            return withChatTemplateFile(try fromSentencePieceJSON(json, config: config, tokenizerConfig: tokenizerConfig), hf)
        }
        return withChatTemplateFile(
            (try TokenizerJSON.parse(tokenizerJSON: text, tokenizerConfig: hf.metadata[p + "tokenizer_config.json"]?.stringValue, config: config), nil), hf)
    }

    /// `chat_template.jinja` (transformers 5 saves the template there) when tokenizer_config.json
    /// has none, as gguf-py's `SpecialVocab` reads it.
    static func withChatTemplateFile(_ r: (Tokenizer, SentencePieceJSON.Extras?), _ hf: TensorGraph) -> (Tokenizer, SentencePieceJSON.Extras?) {
        var (tok, extras) = r
        if tok.chatTemplate == nil { tok.chatTemplate = hf.metadata[HFFolder.metadataPrefix + "chat_template.jinja"]?.stringValue }
        return (tok, extras)
    }

    /// `tokenizer.model` as llama.cpp's `_create_vocab_sentencepiece` reads it: `vocab_size` from
    /// config.json ([PADn] unused tokens, score −10000, beyond the model's pieces), piece types
    /// (user-defined pieces count as normal), then `added_tokens_decoder` of tokenizer_config.json
    /// (control when special or special-looking, else user-defined with `▁` as spaces; score −1000).
    static func fromModelFile(
        _ model: SentencePieceModelFile, config: JSONValue?, tokenizerConfig: JSONValue?, tokenizerJSON: JSONValue?, spacePrefix: Bool?,
        addedTokens: AddedTokens = .decoderLooksSpecial
    ) throws -> (Tokenizer, SentencePieceJSON.Extras?) {
        guard model.modelType == 2 else {
            throw ArchitectureError.badTokenizer(
                file: "tokenizer.model", reason: "model type \(model.modelType) is not BPE (2): llama.cpp runs SentencePiece Unigram models under 't5', which smelt does not convert")
        }
        let count = config?["vocab_size"]?.intValue ?? model.pieces.count
        typealias T = TokenizerJSON.TokenType
        var tok = Tokenizer()
        tok.model = "llama"
        tok.preTokenizer = "default"
        tok.tokens = (0..<count).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: count)
        tok.tokenTypes = [Int32](repeating: T.unused.rawValue, count: count)
        for (id, piece) in model.pieces.enumerated() where id < count {
            tok.tokens[id] = piece.text
            scores[id] = piece.score
            let type: T
            switch piece.type {
            case .unknown: type = .unknown
            case .control: type = .control
            case .unused: type = .unused
            case .byte: type = .byte
            case .normal, .userDefined: type = .normal
            }
            tok.tokenTypes[id] = type.rawValue
        }
        var added: [(Int, JSONValue)] = (tokenizerConfig?["added_tokens_decoder"]?.objectEntries ?? []).compactMap { k, v in Int(k).map { ($0, v) } }
        if addedTokens == .decoderThenTokenizerJSON {
            added += (tokenizerJSON?["added_tokens"]?.arrayValue ?? []).compactMap { v in v["id"]?.intValue.map { ($0, v) } }
        }
        for (id, data) in added {
            guard id >= 0, id < count, let content = data["content"]?.stringValue else { continue }
            if addedTokens == .decoderThenTokenizerJSON {
                tok.tokenTypes[id] = (data["special"]?.boolValue == true ? T.control : T.userDefined).rawValue
                tok.tokens[id] = content
            } else if data["special"]?.boolValue == true || looksSpecial(content) {
                tok.tokenTypes[id] = T.control.rawValue
                tok.tokens[id] = content
            } else {
                tok.tokenTypes[id] = T.userDefined.rawValue
                tok.tokens[id] = content.replacingOccurrences(of: SentencePieceJSON.space, with: " ")
            }
            scores[id] = -1000
        }
        var extras = SentencePieceJSON.Extras(scores: scores, addSpacePrefix: true, unknownTokenID: nil, addEOS: nil)
        extras.statedSpacePrefix = spacePrefix ?? tokenizerConfig?["add_prefix_space"]?.boolValue
        if let s = extras.statedSpacePrefix { extras.addSpacePrefix = s }
        specialTokens(&tok, &extras, count: count, config: config, tokenizerConfig: tokenizerConfig, tokenizerJSON: tokenizerJSON)
        return (tok, extras)
    }

    /// The converter's `does_token_look_special`.
    static func looksSpecial(_ t: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t)
            || (t.hasPrefix("<|") && t.hasSuffix("|>")) || (t.hasPrefix("<｜") && t.hasSuffix("｜>"))
            || (t.hasPrefix("<unused") && t.hasSuffix(">"))
    }

    /// gguf-py's `SpecialVocab` for bos/eos/unk/pad: tokenizer_config.json names a token, found
    /// among tokenizer.json's added tokens; else config.json's `{type}_token_id`; ids past the
    /// vocabulary ignored. `add_bos_token`/`add_eos_token` and the chat template from
    /// tokenizer_config.json.
    static func specialTokens(
        _ tok: inout Tokenizer, _ extras: inout SentencePieceJSON.Extras, count: Int, config: JSONValue?, tokenizerConfig: JSONValue?,
        tokenizerJSON: JSONValue?
    ) {
        let added = tokenizerJSON?["added_tokens"]?.arrayValue ?? []
        func id(_ typ: String) -> Int? {
            if let entry = tokenizerConfig?[typ + "_token"], let content = entry.stringValue ?? entry["content"]?.stringValue,
                let id = added.first(where: { $0["content"]?.stringValue == content })?["id"]?.intValue, id >= 0, id < count
            {
                return id
            }
            if let id = config?[typ + "_token_id"]?.intValue, id >= 0, id < count { return id }
            return nil
        }
        tok.bosTokenID = id("bos")
        tok.eosTokenID = id("eos")
        extras.unknownTokenID = id("unk")
        tok.paddingTokenID = id("pad")
        let template = templateFlags(tokenizerJSON?["post_processor"], tokenizerConfig: tokenizerConfig)
        tok.addBOS = tokenizerConfig?["add_bos_token"]?.boolValue ?? template.bos
        extras.addEOS = tokenizerConfig?["add_eos_token"]?.boolValue ?? template.eos
        extras.addSEP = tokenizerConfig?["add_sep_token"]?.boolValue ?? template.sep
        tok.chatTemplate = tokenizerConfig?["chat_template"]?.stringValue
    }

    /// What gguf-py's `SpecialVocab` reads from a TemplateProcessing post-processor: BOS (or CLS)
    /// leading the single template, EOS closing it, and a separator between A and B in the pair
    /// template (its middle entries, once the leading and trailing specials are set aside).
    static func templateFlags(_ post: JSONValue?, tokenizerConfig: JSONValue?) -> (bos: Bool?, eos: Bool?, sep: Bool?) {
        func name(_ typ: String) -> String? {
            guard let e = tokenizerConfig?[typ + "_token"] else { return nil }
            return e.stringValue ?? e["content"]?.stringValue
        }
        func special(_ v: JSONValue?) -> String? { v?["SpecialToken"]?["id"]?.stringValue }
        let bos = name("bos"), cls = name("cls"), eos = name("eos"), sep = name("sep")
        var out: (bos: Bool?, eos: Bool?, sep: Bool?) = (nil, nil, nil)
        let processors = post?["type"]?.stringValue == "Sequence" ? post?["processors"]?.arrayValue ?? [] : post.map { [$0] } ?? []
        for p in processors where p["type"]?.stringValue == "TemplateProcessing" {
            let single = p["single"]?.arrayValue ?? [], pair = p["pair"]?.arrayValue ?? []
            guard single.count > 1 else { continue }
            let first = special(single.first), last = special(single.last)
            if let first { out.bos = first == bos || first == cls }
            if let last { out.eos = last == eos }
            guard !pair.isEmpty else { continue }
            let start = first != nil && special(pair.first) == first ? 1 : 0
            let stop = last != nil && special(pair.last) == last ? pair.count - 1 : pair.count
            guard start < stop else { continue }
            let middle = Array(pair[start..<stop])
            guard middle.first?["Sequence"]?["id"]?.stringValue == "A", middle.last?["Sequence"]?["id"]?.stringValue == "B",
                middle.count > 2
            else { continue }
            let inner = Array(middle[1..<(middle.count - 1)])
            var addSep = false
            if let e = special(inner.first), e == sep || e == eos, last == nil { addSep = true }
            if inner.count == 2, let e = special(inner[1]), e == sep || e == eos { addSep = true }
            out.sep = addSep
        }
        return out
    }

    /// A SentencePiece-style `tokenizer.json` (BPE with byte fallback, `▁` for spaces). Scores
    /// come from the merge ranks (the first merge that makes a token: rank r → score −r), which
    /// makes llama.cpp's score-ordered merging the same as the file's rank-ordered one; tokens no
    /// merge makes score 0, added tokens −1000. (llama.cpp's converter, reading such a folder
    /// without tokenizer.model, gives every token −1000, losing the merge order.)
    static func fromSentencePieceJSON(_ json: JSONValue, config: JSONValue?, tokenizerConfig: JSONValue?) throws -> (Tokenizer, SentencePieceJSON.Extras?) {
        guard let vocab = json["model"]?["vocab"]?.objectEntries else { throw ArchitectureError.badTokenizer(reason: "model.vocab missing") }
        typealias T = TokenizerJSON.TokenType
        var byID: [Int: String] = [:]
        for (token, v) in vocab {
            guard let id = v.intValue, id >= 0, id < 10_000_000 else {
                throw ArchitectureError.badTokenizer(reason: "vocab id \(Echo.json(v)) of '\(Echo.value(token))' is not an integer in 0..<10000000")
            }
            byID[id] = token
        }
        var types: [Int: T] = [:]
        for a in json["added_tokens"]?.arrayValue ?? [] {
            guard let id = a["id"]?.intValue, let content = a["content"]?.stringValue, id >= 0, id < 10_000_000 else {
                throw ArchitectureError.badTokenizer(reason: "added token \(Echo.json(a)) lacks an id in 0..<10000000 or a string content")
            }
            byID[id] = content
            types[id] = a["special"]?.boolValue == true ? .control : .userDefined
        }
        let count = max((byID.keys.max() ?? -1) + 1, config?["vocab_size"]?.intValue ?? 0)
        let unk = json["model"]?["unk_token"]?.stringValue
        var tok = Tokenizer()
        tok.model = "llama"
        tok.preTokenizer = "default"
        var scores = [Float](repeating: 0, count: count)
        var ids: [[UInt8]: Int] = [:]
        for id in 0..<count {
            guard let s = byID[id] else {
                tok.tokens.append("[PAD\(id)]")
                tok.tokenTypes.append(T.unused.rawValue)
                scores[id] = -10000
                continue
            }
            tok.tokens.append(s)
            if ids[Array(s.utf8)] == nil { ids[Array(s.utf8)] = id }
            var type = types[id] ?? .normal
            if s == unk { type = .unknown } else if type == .normal, isByteToken(s) { type = .byte }
            if types[id] != nil { scores[id] = -1000 }
            tok.tokenTypes.append(type.rawValue)
        }
        var scored = Set<Int>()
        for (rank, m) in (json["model"]?["merges"]?.arrayValue ?? []).enumerated() {
            let pair: [String]
            if let s = m.stringValue {
                pair = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            } else {
                pair = m.arrayValue?.compactMap(\.stringValue) ?? []
            }
            guard pair.count == 2 else { throw ArchitectureError.badTokenizer(reason: "merge \(Echo.json(m)) is neither \"a b\" nor [\"a\", \"b\"]") }
            guard let id = ids[Array((pair[0] + pair[1]).utf8)], types[id] == nil, scored.insert(id).inserted else { continue }
            scores[id] = -Float(rank)
        }
        let normalizer = json["normalizer"].map { JSONWriter.write($0) } ?? ""
        let metaspace = json["pre_tokenizer"].map { JSONWriter.write($0) } ?? ""
        let prepends = normalizer.contains("\"Prepend\"")
            || (metaspace.contains("\"Metaspace\"") && !metaspace.contains("\"prepend_scheme\":\"never\"") && !metaspace.contains("\"add_prefix_space\":false"))
        var extras = SentencePieceJSON.Extras(scores: scores, addSpacePrefix: prepends, unknownTokenID: nil, addEOS: nil)
        extras.statedSpacePrefix = prepends ? nil : false
        specialTokens(&tok, &extras, count: count, config: config, tokenizerConfig: tokenizerConfig, tokenizerJSON: json)
        if extras.unknownTokenID == nil, let unk, let id = ids[Array(unk.utf8)] { extras.unknownTokenID = id }
        return (tok, extras)
    }

    static func isByteToken(_ s: String) -> Bool {
        let u = Array(s.utf8)
        return u.count == 6 && u[0] == UInt8(ascii: "<") && u[1] == UInt8(ascii: "0") && u[2] == UInt8(ascii: "x") && u[5] == UInt8(ascii: ">")
            && u[3...4].allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 70) || ($0 >= 97 && $0 <= 102) }
    }
}
