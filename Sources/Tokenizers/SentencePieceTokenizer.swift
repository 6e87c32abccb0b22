import TensorGraph

/// SentencePiece BPE as llama.cpp runs it for `tokenizer.ggml.model = "llama"` (Llama 2, Mistral,
/// Gemma): special tokens are cut out of the text first (user-defined ones always, control and
/// unknown ones only when parsing special text; longest first); spaces become `▁` (one is
/// prepended when `add_space_prefix` says so); each piece starts as UTF-8 characters and the
/// adjacent pair whose concatenation is a token with the highest score is merged, leftmost first
/// on ties, until no pair is a token; a symbol that is not a token is split back along the merges
/// that made it, and what still is not a token is emitted as `<0xXX>` byte tokens.
public final class SentencePieceTokenizer: Sendable {
    public typealias TokenID = Int32

    public let tokens: [String]
    public let addsBOS: Bool
    public let bosTokenID: TokenID?
    public let addSpacePrefix: Bool
    let scores: [Float]
    let types: [TokenType]
    let tokenToID: [[UInt8]: TokenID]
    let byteTokens: [TokenID?]
    /// Special tokens in matching order (longest text first, then by id) with whether they match
    /// without `parseSpecial` (user-defined ones do).
    let specials: [(bytes: [UInt8], id: TokenID, always: Bool)]

    /// A tokenizer for the `tokenizer.ggml.*` data of a GGUF (`tokenizer.ggml.scores` and
    /// `add_space_prefix` from `metadata`).
    public init(tokenizer: Tokenizer, metadata: Metadata) throws {
        guard tokenizer.model == "llama" else { throw TokenizerError.notSentencePiece(model: tokenizer.model) }
        guard !tokenizer.tokens.isEmpty else { throw TokenizerError.emptyVocabulary }
        tokens = tokenizer.tokens
        var scores = [Float](repeating: 0, count: tokens.count)
        if case let .array(_, values)? = metadata["tokenizer.ggml.scores"] {
            guard values.count == tokens.count else {
                throw TokenizerError.tokenIDOutOfRange(name: "tokenizer.ggml.scores", id: values.count, count: tokens.count)
            }
            for (i, v) in values.enumerated() { scores[i] = Float(v.doubleValue ?? 0) }
        }
        self.scores = scores
        types = tokens.indices.map { i in
            i < tokenizer.tokenTypes.count ? TokenType(rawValue: tokenizer.tokenTypes[i]) ?? .normal : .normal
        }
        var map: [[UInt8]: TokenID] = [:]
        map.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where map[Array(t.utf8)] == nil { map[Array(t.utf8)] = TokenID(i) }
        tokenToID = map
        byteTokens = (0..<256).map { b in
            let hex = String(b, radix: 16, uppercase: true)
            return map[Array(("<0x" + (hex.count < 2 ? "0" : "") + hex + ">").utf8)]
        }
        var specials: [(bytes: [UInt8], id: TokenID, always: Bool)] = []
        for (i, t) in tokens.enumerated() where [.control, .userDefined, .unknown].contains(types[i]) && !t.isEmpty {
            specials.append((Array(t.utf8), TokenID(i), types[i] == .userDefined))
        }
        self.specials = specials.sorted { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        if case let .bool(b)? = metadata["tokenizer.ggml.add_space_prefix"] { addSpacePrefix = b } else { addSpacePrefix = true }
        addsBOS = tokenizer.addBOS ?? true
        bosTokenID = tokenizer.bosTokenID.map(TokenID.init)
        if let b = tokenizer.bosTokenID, b < 0 || b >= tokens.count {
            throw TokenizerError.tokenIDOutOfRange(name: "BOS", id: b, count: tokens.count)
        }
    }

    public var vocabularySize: Int { tokens.count }

    public func encode(_ text: String, addBOS: Bool? = nil, parseSpecial: Bool = true) -> [TokenID] {
        encode(utf8: Array(text.utf8), addBOS: addBOS, parseSpecial: parseSpecial)
    }

    public func encode(utf8 text: [UInt8], addBOS: Bool? = nil, parseSpecial: Bool = true) -> [TokenID] {
        var out: [TokenID] = []
        if addBOS ?? addsBOS, let b = bosTokenID { out.append(b) }
        var previousSpecial = true
        for fragment in partition(text, parseSpecial: parseSpecial) {
            switch fragment {
            case let .token(id):
                out.append(id)
                previousSpecial = true
            case let .text(range):
                var piece: [UInt8] = []
                piece.reserveCapacity(range.count + 3)
                if addSpacePrefix && previousSpecial { piece += [0xE2, 0x96, 0x81] }
                for b in text[range] {
                    if b == 0x20 { piece += [0xE2, 0x96, 0x81] } else { piece.append(b) }  // ' ' → '▁'
                }
                encodePiece(piece, into: &out)
                previousSpecial = false
            }
        }
        return out
    }

    enum Fragment {
        case text(Range<Int>)
        case token(TokenID)
    }

    /// The text cut at special tokens, each token in turn (longest first) over every text
    /// fragment left, as llama.cpp's `tokenizer_st_partition` does.
    func partition(_ text: [UInt8], parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = text.isEmpty ? [] : [.text(0..<text.count)]
        text.withUnsafeBufferPointer { buf in
            for special in specials where special.always || parseSpecial {
                let needle = special.bytes
                var next: [Fragment] = []
                var changed = false
                for f in fragments {
                    guard case let .text(range) = f, range.count >= needle.count else { next.append(f); continue }
                    var start = range.lowerBound
                    var i = range.lowerBound
                    let last = range.upperBound - needle.count
                    while i <= last {
                        if buf[i] == needle[0] && Self.matches(buf, at: i, needle) {
                            if i > start { next.append(.text(start..<i)) }
                            next.append(.token(special.id))
                            changed = true
                            i += needle.count
                            start = i
                        } else {
                            i += 1
                        }
                    }
                    if start < range.upperBound { next.append(.text(start..<range.upperBound)) }
                }
                if changed { fragments = next }
            }
        }
        return fragments
    }

    static func matches(_ buf: UnsafeBufferPointer<UInt8>, at i: Int, _ needle: [UInt8]) -> Bool {
        for j in 1..<needle.count where buf[i + j] != needle[j] { return false }
        return true
    }

    struct Symbol {
        var start: Int
        var count: Int
        var prev: Int
        var next: Int
    }

    struct Bigram {
        let left: Int
        let right: Int
        let score: Float
        let size: Int
        /// Pops first: the higher score, then the lower left index.
        func before(_ o: Bigram) -> Bool { score != o.score ? score > o.score : left < o.left }
    }

    /// One piece (spaces already `▁`) by score-ordered merges, then resegmentation.
    func encodePiece(_ text: [UInt8], into out: inout [TokenID]) {
        guard !text.isEmpty else { return }
        var symbols: [Symbol] = []
        var offset = 0
        while offset < text.count {
            let n = min(Self.utf8Length(text[offset]), text.count - offset)
            symbols.append(Symbol(start: offset, count: n, prev: symbols.count - 1, next: offset + n == text.count ? -1 : symbols.count + 1))
            offset += n
        }
        var heap: [Bigram] = []
        var reverseMerges: [[UInt8]: (Int, Int)] = [:]

        func push(_ b: Bigram) {
            heap.append(b)
            var i = heap.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard heap[i].before(heap[parent]) else { break }
                heap.swapAt(i, parent)
                i = parent
            }
        }
        func pop() -> Bigram {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var best = i
                    if l < heap.count && heap[l].before(heap[best]) { best = l }
                    if r < heap.count && heap[r].before(heap[best]) { best = r }
                    if best == i { break }
                    heap.swapAt(i, best)
                    i = best
                }
            }
            return top
        }
        func tryAdd(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let start = symbols[left].start, size = symbols[left].count + symbols[right].count
            let key = Array(text[start..<(start + size)])
            guard let id = tokenToID[key] else { return }
            push(Bigram(left: left, right: right, score: scores[Int(id)], size: size))
            reverseMerges[key] = (left, right)
        }

        for i in 1..<symbols.count { tryAdd(i - 1, i) }
        while !heap.isEmpty {
            let b = pop()
            let l = symbols[b.left], r = symbols[b.right]
            if l.count == 0 || r.count == 0 || l.count + r.count != b.size { continue }
            symbols[b.left].count += r.count
            symbols[b.right].count = 0
            symbols[b.left].next = r.next
            if r.next >= 0 { symbols[r.next].prev = b.left }
            tryAdd(symbols[b.left].prev, b.left)
            tryAdd(b.left, symbols[b.left].next)
        }

        func resegment(_ s: Symbol) {
            let key = Array(text[s.start..<(s.start + s.count)])
            if let id = tokenToID[key] {
                out.append(id)
                return
            }
            if let (l, r) = reverseMerges[key] {
                resegment(symbols[l])
                resegment(symbols[r])
                return
            }
            for b in key { if let id = byteTokens[Int(b)] { out.append(id) } }
        }
        var i = 0
        while i != -1 {
            resegment(symbols[i])
            i = symbols[i].next
        }
    }

    /// llama.cpp's `unicode_len_utf8`: by the high nibble of the first byte.
    static func utf8Length(_ b: UInt8) -> Int { [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4][Int(b >> 4)] }
}

/// The tokenizer a GGUF-layout graph names: SentencePiece for `tokenizer.ggml.model = "llama"`,
/// byte-level BPE otherwise.
public enum TextEncoder {
    /// Token ids of `text` as llama.cpp's tools give them (`parseSpecial` false: special-token
    /// text stays text, except SentencePiece's user-defined tokens, which llama.cpp always cuts).
    public static func encoder(for tokenizer: Tokenizer, metadata: Metadata) throws -> (_ text: [UInt8], _ addBOS: Bool?, _ parseSpecial: Bool) -> [Int32] {
        if tokenizer.model == "llama" {
            let spm = try SentencePieceTokenizer(tokenizer: tokenizer, metadata: metadata)
            return { spm.encode(utf8: $0, addBOS: $1, parseSpecial: $2) }
        }
        let bpe = try BPETokenizer(tokenizer: tokenizer)
        return { bpe.encode(utf8: $0, addBOS: $1, parseSpecial: $2) }
    }
}
