#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorGraph

/// GGUF token types (`tokenizer.ggml.token_type`).
public enum TokenType: Int32, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case notByteLevelBPE(model: String?)
    case notSentencePiece(model: String?)
    case unknownPreTokenizer(String)
    case emptyVocabulary
    case tokenIDOutOfRange(name: String, id: Int, count: Int)

    public var description: String {
        switch self {
        case let .notByteLevelBPE(model):
            return "tokenizer model '\(model.map { Echo.value($0) } ?? "none")' is not byte-level BPE ('gpt2')"
        case let .notSentencePiece(model):
            return "tokenizer model '\(model.map { Echo.value($0) } ?? "none")' is not SentencePiece ('llama')"
        case let .unknownPreTokenizer(name):
            return "unknown pre-tokenizer '\(Echo.value(name))' (known: \(PreTokenizerKind.names.joined(separator: ", ")))"
        case .emptyVocabulary:
            return "the tokenizer has no tokens"
        case let .tokenIDOutOfRange(name, id, count):
            return "\(name) token id \(id) is outside the vocabulary of \(count) tokens"
        }
    }
}

/// A byte-level BPE tokenizer that gives the ids llama.cpp gives for the same GGUF vocabulary:
/// special (control, user-defined and unknown-type) tokens are cut out of the text first, longest
/// first; the rest is split by the pre-tokenizer kind's patterns; every piece's bytes are mapped
/// to GPT-2's byte characters and merged by rank. Immutable and safe to share between threads.
public final class BPETokenizer: Sendable {
    public typealias TokenID = Int32

    public let kind: PreTokenizerKind
    public let ignoresMerges: Bool
    /// Whether `encode` prepends BOS by default (the model's `add_bos_token`, else the kind's default).
    public let addsBOS: Bool
    public let bosTokenID: TokenID?
    public let eosTokenID: TokenID?
    /// Token texts by id, as the vocabulary holds them (byte-level characters for normal tokens).
    public let tokens: [String]
    public let tokenTypes: [TokenType]

    let tokenToID: [String: TokenID]
    /// Symbols are vocabulary ids, or ids past the vocabulary for texts that merges produce but the
    /// vocabulary lacks (their byte-level texts in `extraSymbolBytes`).
    let vocabularyCount: Int
    let extraSymbolBytes: [[UInt8]]
    /// (left symbol << 32 | right symbol) → (rank << 32 | merged symbol).
    let merges: [UInt64: UInt64]
    /// The symbol of each byte's character.
    let byteSymbols: [Int32]
    /// The id of each one-byte ASCII token text, or -1 (llama.cpp's fallback for unknown symbols).
    let asciiTokens: [Int32]
    /// Special tokens in matching order: longest text first, then by id.
    let specials: [(bytes: [UInt8], id: TokenID)]

    /// A tokenizer for `tokenizer` (GGUF `tokenizer.ggml.*` data). `ignoreMerges` overrides the
    /// kind's flag (for `tokenizer.json` files that set `model.ignore_merges` differently).
    public init(tokenizer: Tokenizer, ignoreMerges: Bool? = nil) throws {
        guard tokenizer.model == "gpt2" || tokenizer.model == nil else {
            throw TokenizerError.notByteLevelBPE(model: tokenizer.model)
        }
        guard let kind = PreTokenizerKind.named(tokenizer.preTokenizer) else {
            throw TokenizerError.unknownPreTokenizer(tokenizer.preTokenizer ?? "")
        }
        guard !tokenizer.tokens.isEmpty else { throw TokenizerError.emptyVocabulary }
        let count = tokenizer.tokens.count
        func checked(_ name: String, _ id: Int?) throws -> TokenID? {
            guard let id else { return nil }
            guard id >= 0 && id < count else { throw TokenizerError.tokenIDOutOfRange(name: name, id: id, count: count) }
            return TokenID(id)
        }
        self.kind = kind
        self.ignoresMerges = ignoreMerges ?? kind.ignoreMerges
        self.bosTokenID = try checked("BOS", tokenizer.bosTokenID)
        self.eosTokenID = try checked("EOS", tokenizer.eosTokenID)
        self.addsBOS = (tokenizer.addBOS ?? kind.defaultAddBOS) && bosTokenID != nil
        self.tokens = tokenizer.tokens
        self.tokenTypes = (0..<count).map { i in
            i < tokenizer.tokenTypes.count ? TokenType(rawValue: tokenizer.tokenTypes[i]) ?? .undefined : .normal
        }
        self.vocabularyCount = count

        // Text → id; a text that appears twice maps to its last id, as in llama.cpp.
        var toID: [String: TokenID] = [:]
        toID.reserveCapacity(count)
        for (i, t) in tokenizer.tokens.enumerated() { toID[t] = TokenID(i) }
        self.tokenToID = toID

        var extra: [[UInt8]] = []
        var extraIDs: [String: Int32] = [:]
        func symbol(_ text: String) -> Int32 {
            if let id = toID[text] { return id }
            if let id = extraIDs[text] { return id }
            let id = Int32(count + extra.count)
            extra.append(Array(text.utf8))
            extraIDs[text] = id
            return id
        }
        var byteSyms = [Int32](repeating: 0, count: 256)
        for b in 0..<256 { byteSyms[b] = symbol(String(Character(ByteLevel.characters[b]))) }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(tokenizer.merges.count)
        for (rank, line) in tokenizer.merges.enumerated() {
            // Split at the first space after the first byte (llama.cpp); the first rank of a pair wins.
            let u = Array(line.utf8)
            guard u.count >= 3, let sp = u[1...].firstIndex(of: 0x20) else { continue }
            let left = String(decoding: u[..<sp], as: UTF8.self)
            let right = String(decoding: u[(sp + 1)...], as: UTF8.self)
            guard !right.isEmpty else { continue }
            let key = UInt64(UInt32(bitPattern: symbol(left))) << 32 | UInt64(UInt32(bitPattern: symbol(right)))
            if table[key] == nil {
                table[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: symbol(left + right)))
            }
        }
        self.merges = table
        self.byteSymbols = byteSyms
        self.extraSymbolBytes = extra
        var ascii = [Int32](repeating: -1, count: 128)
        for b in 0..<128 { ascii[b] = toID[String(UnicodeScalar(UInt8(b)))] ?? -1 }
        self.asciiTokens = ascii

        var sp: [(bytes: [UInt8], id: TokenID)] = []
        for (i, type) in tokenTypes.enumerated() where type == .control || type == .userDefined || type == .unknown {
            let bytes = Array(tokenizer.tokens[i].utf8)
            if !bytes.isEmpty { sp.append((bytes, TokenID(i))) }
        }
        sp.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        self.specials = sp
    }

    public var vocabularySize: Int { vocabularyCount }

    /// The id of a token text, if the vocabulary has it.
    public func id(of token: String) -> TokenID? { tokenToID[token] }

    // MARK: encoding

    /// Token ids for `text`. `addBOS` nil uses `addsBOS`; `parseSpecial` false treats special-token
    /// texts as ordinary text.
    public func encode(_ text: String, addBOS: Bool? = nil, parseSpecial: Bool = true) -> [TokenID] {
        encode(utf8: Array(text.utf8), addBOS: addBOS, parseSpecial: parseSpecial)
    }

    /// Token ids for UTF-8 bytes. Invalid bytes are read as llama.cpp reads them: each byte that
    /// does not start a complete sequence is U+FFFD.
    public func encode(utf8 text: [UInt8], addBOS: Bool? = nil, parseSpecial: Bool = true) -> [TokenID] {
        var out: [TokenID] = []
        out.reserveCapacity(text.count / 3 + 1)
        if addBOS ?? addsBOS, let bos = bosTokenID { out.append(bos) }
        var session = Session(self)
        text.withUnsafeBufferPointer { buf in
            for fragment in partition(buf, parseSpecial: parseSpecial) {
                switch fragment {
                case let .token(id): out.append(id)
                case let .text(a, b): session.encodeText(UnsafeBufferPointer(rebasing: buf[a..<b]), into: &out)
                }
            }
        }
        return out
    }

    /// The pieces the text is cut into before merging: special tokens as their text, the rest as
    /// pre-tokens.
    public func preTokenize(_ text: String, parseSpecial: Bool = true) -> [String] {
        let bytes = Array(text.utf8)
        var out: [String] = []
        bytes.withUnsafeBufferPointer { buf in
            var session = Session(self)
            for fragment in partition(buf, parseSpecial: parseSpecial) {
                switch fragment {
                case let .token(id): out.append(tokens[Int(id)])
                case let .text(a, b):
                    session.pieces(UnsafeBufferPointer(rebasing: buf[a..<b])) { piece in
                        out.append(String(decoding: piece, as: UTF8.self))
                    }
                }
            }
        }
        return out
    }

    enum Fragment: Equatable {
        case text(Int, Int)
        case token(TokenID)
    }

    /// Cuts special tokens out of the text the way llama.cpp does: each special token in turn
    /// (longest first) splits every remaining text fragment at each of its occurrences.
    func partition(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = text.isEmpty ? [] : [.text(0, text.count)]
        guard parseSpecial, let base = text.baseAddress else { return fragments }
        var next: [Fragment] = []
        for (bytes, id) in specials {
            guard Self.search(bytes, in: base, count: text.count) != nil else { continue }
            next.removeAll(keepingCapacity: true)
            for f in fragments {
                guard case .text(var a, let b) = f else {
                    next.append(f)
                    continue
                }
                while a < b {
                    guard let offset = Self.search(bytes, in: base + a, count: b - a) else { break }
                    let at = a + offset
                    if at > a { next.append(.text(a, at)) }
                    next.append(.token(id))
                    a = at + bytes.count
                }
                if a < b { next.append(.text(a, b)) }
            }
            swap(&fragments, &next)
        }
        return fragments
    }

    /// The offset of the first occurrence of `needle` in `count` bytes at `base`.
    static func search(_ needle: [UInt8], in base: UnsafePointer<UInt8>, count: Int) -> Int? {
        let n = needle.count
        guard n > 0, n <= count else { return nil }
        return needle.withUnsafeBufferPointer { nb -> Int? in
            var i = 0
            while i <= count - n {
                guard let p = memchr(base + i, Int32(nb[0]), count - n + 1 - i) else { return nil }
                let at = UnsafeRawPointer(p) - UnsafeRawPointer(base)
                if memcmp(base + at, nb.baseAddress!, n) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }

    // MARK: decoding

    /// The bytes of token `id`: normal tokens through the byte-level mapping, user-defined
    /// tokens verbatim, control and unknown-type tokens verbatim unless `skipSpecial`, byte tokens
    /// as their byte; unused ids and ids outside the vocabulary give nothing.
    public func pieceBytes(_ id: TokenID, skipSpecial: Bool = false) -> [UInt8] {
        guard id >= 0 && Int(id) < vocabularyCount else { return [] }
        let text = tokens[Int(id)]
        switch tokenTypes[Int(id)] {
        case .control, .unknown: return skipSpecial ? [] : Array(text.utf8)
        case .userDefined: return Array(text.utf8)
        case .normal: return ByteLevel.decode(text)
        case .byte:
            // Byte tokens of byte-level vocabularies are the byte's character.
            let d = ByteLevel.decode(text)
            return d.count == 1 ? d : []
        case .unused, .undefined: return []
        }
    }

    /// The bytes `ids` stand for.
    public func decodeBytes(_ ids: [TokenID], skipSpecial: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids { out.append(contentsOf: pieceBytes(id, skipSpecial: skipSpecial)) }
        return out
    }

    /// The text `ids` stand for (invalid UTF-8 shown as U+FFFD).
    public func decode(_ ids: [TokenID], skipSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }
}
