/// One split pattern of a pre-tokenizer, implemented as a hand-written matcher over Unicode
/// scalars. Matches become pieces and so does the text between matches (`Isolated` splitting),
/// so the pieces always cover the input. Semantics follow the regex each case names, with the
/// leftmost-first alternation and backtracking of the regex engines, and llama.cpp's choices
/// where engines differ: `\s` is the White_Space set, `(?i:…)` folds ASCII letters only.
public enum SplitPattern: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen 2: as Llama 3 with `\p{N}` (one number at a time) for `\p{N}{1,3}`.
    case qwen2
    /// o200k (GPT-4o, gpt-oss): `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|…)?`,
    /// the same with `+` and `*` swapped, `\p{N}{1,3}`, ` ?[^\s\p{L}\p{N}]+[\r\n/]*`, then the
    /// whitespace alternatives; as Hugging Face `tokenizers` (Oniguruma) matches it.
    case o200k
    /// `\p{N}`: every number scalar alone (Hugging Face's `Digits(individual_digits=True)`).
    case numbers
    /// `\p{N}+`: runs of numbers.
    case numberRuns
    /// `[\p{P}\$\+<=>\^~\|]+`: runs of punctuation and those ASCII symbols.
    case punctuationRuns
    /// `[0-9][0-9][0-9]`: ASCII digit triples, left to right.
    case asciiDigitTriples

    /// The regex this pattern implements.
    public var regex: String {
        switch self {
        case .gpt2: return #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        case .llama3:
            return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .qwen2:
            return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .o200k:
            return #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .numbers: return #"\p{N}"#
        case .numberRuns: return #"\p{N}+"#
        case .punctuationRuns: return #"[\p{P}\$\+<=>\^~\|]+"#
        case .asciiDigitTriples: return "[0-9][0-9][0-9]"
        }
    }

    /// Splits each piece `[previous end, end)` of `s` (the first starting at `from`) and writes the
    /// ends of the resulting pieces to `out` (cleared first).
    func split(_ s: UnsafeBufferPointer<UInt32>, from: Int, ends: [Int32], into out: inout [Int32]) {
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(ends.count * 2)
        var start = from
        for e in ends {
            let end = Int(e)
            if end > start { split(s, start, end, &out) }
            start = end
        }
    }

    func split(_ s: UnsafeBufferPointer<UInt32>, _ start: Int, _ end: Int, _ out: inout [Int32]) {
        switch self {
        case .gpt2: Self.gpt2(s, start, end, &out)
        case .llama3: Self.llama3(s, start, end, maxDigits: 3, &out)
        case .qwen2: Self.llama3(s, start, end, maxDigits: 1, &out)
        case .o200k: Self.o200k(s, start, end, &out)
        case .numbers:
            Self.runs(s, start, end, &out, single: true) { CharacterClass.of($0).contains(.number) }
        case .numberRuns:
            Self.runs(s, start, end, &out, single: false) { CharacterClass.of($0).contains(.number) }
        case .punctuationRuns:
            Self.runs(s, start, end, &out, single: false) { v in
                CharacterClass.of(v).contains(.punctuation) || v == 0x24 || v == 0x2B || v == 0x3C || v == 0x3D
                    || v == 0x3E || v == 0x5E || v == 0x7E || v == 0x7C
            }
        case .asciiDigitTriples: Self.asciiDigitTriples(s, start, end, &out)
        }
    }

    // MARK: matchers

    private static let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A

    /// The length of a contraction (`'s`, `'t`, `'m`, `'d`, `'re`, `'ve`, `'ll`) at `p`, or 0.
    /// `foldCase` also accepts upper-case ASCII letters.
    @inline(__always)
    private static func contraction(_ s: UnsafeBufferPointer<UInt32>, _ p: Int, _ end: Int, foldCase: Bool) -> Int {
        guard s[p] == apostrophe, p + 1 < end else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { foldCase && v >= 0x41 && v <= 0x5A ? v | 0x20 : v }
        let a = lower(s[p + 1])
        // s t m d
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }
        guard p + 2 < end else { return 0 }
        let b = lower(s[p + 2])
        // re ve ll
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }
        return 0
    }

    @inline(__always) private static func isOther(_ c: CharacterClass) -> Bool {
        c.isDisjoint(with: [.letter, .number, .whitespace])
    }

    /// The end of the run of scalars from `p` whose class satisfies `pred`.
    @inline(__always)
    private static func runEnd(_ s: UnsafeBufferPointer<UInt32>, _ p: Int, _ end: Int, _ pred: (CharacterClass) -> Bool) -> Int {
        var r = p
        while r < end && pred(CharacterClass.of(s[r])) { r += 1 }
        return r
    }

    /// The whitespace alternatives shared by all patterns, at `p` (a whitespace scalar):
    /// `\s+(?!\S)` keeps the last whitespace of a run followed by a non-space for that one, `\s+`
    /// takes the rest.
    @inline(__always)
    private static func whitespaceEnd(_ s: UnsafeBufferPointer<UInt32>, _ p: Int, _ end: Int) -> Int {
        let r = runEnd(s, p, end) { $0.contains(.whitespace) }
        return r - p > 1 && r < end ? r - 1 : r
    }

    static func gpt2(_ s: UnsafeBufferPointer<UInt32>, _ start: Int, _ end: Int, _ out: inout [Int32]) {
        var p = start
        while p < end {
            let n = contraction(s, p, end, foldCase: false)
            if n > 0 {
                p += n
                out.append(Int32(p))
                continue
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then one run.
            let q = s[p] == space && p + 1 < end ? p + 1 : p
            let k = CharacterClass.of(s[q])
            if k.contains(.letter) {
                p = runEnd(s, q + 1, end) { $0.contains(.letter) }
            } else if k.contains(.number) {
                p = runEnd(s, q + 1, end) { $0.contains(.number) }
            } else if !k.contains(.whitespace) {
                p = runEnd(s, q + 1, end, isOther)
            } else {
                p = whitespaceEnd(s, p, end)
            }
            out.append(Int32(p))
        }
    }

    static func llama3(_ s: UnsafeBufferPointer<UInt32>, _ start: Int, _ end: Int, maxDigits: Int, _ out: inout [Int32]) {
        var p = start
        while p < end {
            let n = contraction(s, p, end, foldCase: true)
            if n > 0 {
                p += n
                out.append(Int32(p))
                continue
            }
            let c = s[p]
            let k = CharacterClass.of(c)
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if c != cr && c != lf && !k.contains(.number)
                && (k.contains(.letter) || (p + 1 < end && CharacterClass.of(s[p + 1]).contains(.letter)))
            {
                p = runEnd(s, p + 1, end) { $0.contains(.letter) }
                out.append(Int32(p))
                continue
            }
            // `\p{N}{1,3}` (or `\p{N}`)
            if k.contains(.number) {
                let limit = min(end, p + maxDigits)
                p = runEnd(s, p + 1, limit) { $0.contains(.number) }
                out.append(Int32(p))
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let q = c == space && p + 1 < end ? p + 1 : p
            if isOther(CharacterClass.of(s[q])) {
                var r = runEnd(s, q + 1, end, isOther)
                while r < end && (s[r] == cr || s[r] == lf) { r += 1 }
                p = r
                out.append(Int32(p))
                continue
            }
            // `\s*[\r\n]+`: up to the last CR/LF of the whitespace run, if it has one.
            var r = p
            var afterNewline = -1
            while r < end && CharacterClass.of(s[r]).contains(.whitespace) {
                if s[r] == cr || s[r] == lf { afterNewline = r + 1 }
                r += 1
            }
            if afterNewline > 0 {
                p = afterNewline
            } else {
                // `\s+(?!\S)|\s+`
                p = r - p > 1 && r < end ? r - 1 : r
            }
            out.append(Int32(p))
        }
    }

    static func o200k(_ s: UnsafeBufferPointer<UInt32>, _ start: Int, _ end: Int, _ out: inout [Int32]) {
        // A = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], B = [\p{Ll}\p{Lm}\p{Lo}\p{M}] (they share Lm, Lo, M).
        let upperish: CharacterClass = [.upperOrTitle, .modifierOrOther, .mark]
        let lowerish: CharacterClass = [.lowercase, .modifierOrOther, .mark]
        func isA(_ i: Int) -> Bool { !CharacterClass.of(s[i]).isDisjoint(with: upperish) }
        func isB(_ i: Int) -> Bool { !CharacterClass.of(s[i]).isDisjoint(with: lowerish) }
        // `A* B+ C?` at q: greedy A* gives back scalars until B+ can start, so B+ starts at the
        // last position of the A run (or the one after it) that is in B.
        func aStarBPlus(_ q: Int) -> Int? {
            var a = q
            while a < end && isA(a) { a += 1 }
            var i = a
            while i >= q {
                if i < end && isB(i) {
                    var r = i + 1
                    while r < end && isB(r) { r += 1 }
                    return r < end ? r + contraction(s, r, end, foldCase: true) : r
                }
                i -= 1
            }
            return nil
        }
        // `A+ B* C?` at q.
        func aPlusBStar(_ q: Int) -> Int? {
            guard q < end, isA(q) else { return nil }
            var r = q + 1
            while r < end && isA(r) { r += 1 }
            while r < end && isB(r) { r += 1 }
            return r < end ? r + contraction(s, r, end, foldCase: true) : r
        }
        var p = start
        while p < end {
            let c = s[p]
            let k = CharacterClass.of(c)
            // `[^\r\n\p{L}\p{N}]?`: tried consumed first, then not.
            let optional = c != cr && c != lf && !k.contains(.letter) && !k.contains(.number) && p + 1 < end
            let starts = optional ? [p + 1, p] : [p]
            if let r = starts.lazy.compactMap(aStarBPlus).first ?? starts.lazy.compactMap(aPlusBStar).first {
                p = r
                out.append(Int32(p))
                continue
            }
            // `\p{N}{1,3}`
            if k.contains(.number) {
                p = runEnd(s, p + 1, min(end, p + 3)) { $0.contains(.number) }
                out.append(Int32(p))
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
            let q = c == space && p + 1 < end ? p + 1 : p
            if isOther(CharacterClass.of(s[q])) {
                var r = runEnd(s, q + 1, end, isOther)
                while r < end && (s[r] == cr || s[r] == lf || s[r] == 0x2F) { r += 1 }
                p = r
                out.append(Int32(p))
                continue
            }
            // `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`, as in `llama3`.
            var r = p
            var afterNewline = -1
            while r < end && CharacterClass.of(s[r]).contains(.whitespace) {
                if s[r] == cr || s[r] == lf { afterNewline = r + 1 }
                r += 1
            }
            if afterNewline > 0 {
                p = afterNewline
            } else {
                p = r - p > 1 && r < end ? r - 1 : r
            }
            out.append(Int32(p))
        }
    }

    /// Runs of scalars satisfying `pred` (each such scalar alone when `single`) and the runs
    /// between them.
    static func runs(
        _ s: UnsafeBufferPointer<UInt32>, _ start: Int, _ end: Int, _ out: inout [Int32], single: Bool,
        _ pred: (UInt32) -> Bool
    ) {
        var p = start
        while p < end {
            let inside = pred(s[p])
            var r = p + 1
            if !(inside && single) {
                while r < end && pred(s[r]) == inside { r += 1 }
            }
            p = r
            out.append(Int32(p))
        }
    }

    static func asciiDigitTriples(_ s: UnsafeBufferPointer<UInt32>, _ start: Int, _ end: Int, _ out: inout [Int32]) {
        func digit(_ i: Int) -> Bool { s[i] >= 0x30 && s[i] <= 0x39 }
        var gapStart = start
        var i = start
        while i + 3 <= end {
            if digit(i) && digit(i + 1) && digit(i + 2) {
                if i > gapStart { out.append(Int32(i)) }
                i += 3
                out.append(Int32(i))
                gapStart = i
            } else {
                i += 1
            }
        }
        if end > gapStart { out.append(Int32(end)) }
    }
}
