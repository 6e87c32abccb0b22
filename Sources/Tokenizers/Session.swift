#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The working state of one `encode` call: scratch buffers, and a cache from piece bytes to ids
/// (a text repeats most of its words).
struct Session {
    let tok: BPETokenizer
    private var scalars: [UInt32] = []
    /// Byte offset of each scalar in the fragment, plus the fragment's length.
    private var offsets: [Int32] = []
    private var ends: [Int32] = []
    private var spare: [Int32] = []
    private var cache = PieceCache()
    private var syms: [Int32] = []
    private var pairs: [UInt64] = []
    private var heapSyms: [HeapSymbol] = []
    private var heap: [HeapEntry] = []

    /// Pieces longer than this many bytes are not cached; longer than `smallPiece` use the heap.
    static let maxCachedPiece = 256
    static let smallPiece = 48

    init(_ tok: BPETokenizer) { self.tok = tok }

    /// Decodes UTF-8 as llama.cpp's `unicode_cpts_from_utf8` does: a byte that does not start a
    /// complete sequence (by lead and continuation bits) is U+FFFD and decoding goes on at the next
    /// byte; sequences are not checked further (overlong forms and surrogates decode
    /// arithmetically). Fills `scalars` and `offsets`; returns whether re-encoding the scalars
    /// gives back `text` (false for invalid or overlong input, which the caller then re-encodes
    /// as llama.cpp does before merging).
    private mutating func decode(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        scalars.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        let n = text.count
        var i = 0
        var canonical = true
        @inline(__always) func cont(_ j: Int) -> UInt32? {
            j < n && text[j] & 0xC0 == 0x80 ? UInt32(text[j] & 0x3F) : nil
        }
        while i < n {
            let b0 = UInt32(text[i])
            offsets.append(Int32(i))
            if b0 < 0x80 {
                scalars.append(b0)
                i += 1
                continue
            }
            var v: UInt32 = 0xFFFD
            var len = 1
            if b0 & 0x40 == 0 {
                // a continuation byte where a sequence should start
            } else if b0 & 0x20 == 0 {
                if let c1 = cont(i + 1) {
                    v = (b0 & 0x1F) << 6 | c1
                    len = 2
                }
            } else if b0 & 0x10 == 0 {
                if let c1 = cont(i + 1), let c2 = cont(i + 2) {
                    v = (b0 & 0x0F) << 12 | c1 << 6 | c2
                    len = 3
                }
            } else if b0 & 0x08 == 0 {
                if let c1 = cont(i + 1), let c2 = cont(i + 2), let c3 = cont(i + 3) {
                    v = (b0 & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
                    len = 4
                    // llama.cpp cannot re-encode these (it throws); U+FFFD here.
                    if v > 0x10FFFF { v = 0xFFFD }
                }
            }
            if len == 1 || Self.utf8Length(v) != len { canonical = false }
            scalars.append(v)
            i += len
        }
        offsets.append(Int32(n))
        return canonical
    }

    @inline(__always)
    static func utf8Length(_ v: UInt32) -> Int { v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4 }

    /// The shortest UTF-8 of `scalars` (surrogate values encoded like other 3-byte values), with
    /// `offsets` updated to it.
    private mutating func reencode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(scalars.count * 2)
        offsets.removeAll(keepingCapacity: true)
        for v in scalars {
            offsets.append(Int32(out.count))
            switch Self.utf8Length(v) {
            case 1: out.append(UInt8(v))
            case 2: out += [UInt8(0xC0 | v >> 6), UInt8(0x80 | v & 0x3F)]
            case 3: out += [UInt8(0xE0 | v >> 12), UInt8(0x80 | (v >> 6) & 0x3F), UInt8(0x80 | v & 0x3F)]
            default:
                out += [UInt8(0xF0 | v >> 18), UInt8(0x80 | (v >> 12) & 0x3F), UInt8(0x80 | (v >> 6) & 0x3F), UInt8(0x80 | v & 0x3F)]
            }
        }
        offsets.append(Int32(out.count))
        return out
    }

    /// Splits the decoded scalars with the kind's patterns (into `ends`).
    private mutating func split() {
        ends.removeAll(keepingCapacity: true)
        ends.append(Int32(scalars.count))
        scalars.withUnsafeBufferPointer { s in
            for p in tok.kind.patterns {
                p.split(s, from: 0, ends: ends, into: &spare)
                swap(&ends, &spare)
            }
        }
    }

    /// Calls `body` with the bytes of each pre-token of the fragment.
    mutating func pieces(_ text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        if decode(text) {
            split()
            forEachPiece(text, body)
        } else {
            let fixed = reencode()
            split()
            fixed.withUnsafeBufferPointer { forEachPiece($0, body) }
        }
    }

    private func forEachPiece(_ text: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var start = 0
        for e in ends {
            let a = Int(offsets[start]), b = Int(offsets[Int(e)])
            if b > a { body(UnsafeBufferPointer(rebasing: text[a..<b])) }
            start = Int(e)
        }
    }

    /// Appends the ids of a text fragment (no special tokens in it) to `out`.
    mutating func encodeText(_ text: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        if decode(text) {
            split()
            encodePieces(text, into: &out)
        } else {
            let fixed = reencode()
            split()
            fixed.withUnsafeBufferPointer { encodePieces($0, into: &out) }
        }
    }

    private mutating func encodePieces(_ text: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        var start = 0
        for k in 0..<ends.count {
            let e = Int(ends[k])
            let a = Int(offsets[start]), b = Int(offsets[e])
            start = e
            guard b > a else { continue }
            let piece = UnsafeBufferPointer(rebasing: text[a..<b])
            if piece.count > Self.maxCachedPiece {
                merge(piece, into: &out)
                continue
            }
            let hash = PieceCache.hash(piece)
            if let hit = cache.find(piece, hash: hash) {
                cache.append(entry: hit, to: &out)
            } else {
                let before = out.count
                merge(piece, into: &out)
                cache.insert(piece, hash: hash, ids: out[before...])
            }
        }
    }

    // MARK: merging

    /// Appends the ids of one pre-token.
    mutating func merge(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        if tok.ignoresMerges, piece.count > 1, let id = tok.tokenToID[ByteLevel.encode(piece)] {
            out.append(id)
            return
        }
        if piece.count <= Self.smallPiece {
            mergeSmall(piece, into: &out)
        } else {
            mergeHeap(piece, into: &out)
        }
    }

    @inline(__always)
    private func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        tok.merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))] ?? .max
    }

    @inline(__always)
    private func emit(_ symbol: Int32, into out: inout [Int32]) {
        if Int(symbol) < tok.vocabularyCount {
            out.append(symbol)
        } else {
            // A text the merges made but the vocabulary lacks: its one-byte ASCII parts that are
            // tokens, as llama.cpp does.
            for b in tok.extraSymbolBytes[Int(symbol) - tok.vocabularyCount] where b < 0x80 {
                let id = tok.asciiTokens[Int(b)]
                if id >= 0 { out.append(id) }
            }
        }
    }

    /// Repeatedly merges the adjacent pair of lowest rank (leftmost on ties) by scanning.
    mutating func mergeSmall(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        syms.removeAll(keepingCapacity: true)
        for b in piece { syms.append(tok.byteSymbols[Int(b)]) }
        pairs.removeAll(keepingCapacity: true)
        for i in 0..<(syms.count - 1) { pairs.append(lookup(syms[i], syms[i + 1])) }
        while !pairs.isEmpty {
            var best = UInt64.max
            var at = -1
            for i in 0..<pairs.count where pairs[i] < best {
                best = pairs[i]
                at = i
            }
            if at < 0 { break }
            syms[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            syms.remove(at: at + 1)
            pairs.remove(at: at)
            if at < pairs.count { pairs[at] = lookup(syms[at], syms[at + 1]) }
            if at > 0 { pairs[at - 1] = lookup(syms[at - 1], syms[at]) }
        }
        for s in syms { emit(s, into: &out) }
    }

    struct HeapSymbol {
        var id: Int32
        var prev: Int32
        var next: Int32
    }

    /// A candidate merge: `key` is rank << 32 | left position, so the heap pops the lowest rank,
    /// leftmost first.
    struct HeapEntry {
        var key: UInt64
        var left: Int32
        var right: Int32
        var merged: Int32
    }

    /// The same merges with a linked list of symbols and a binary heap of candidate pairs.
    mutating func mergeHeap(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        let n = piece.count
        heapSyms.removeAll(keepingCapacity: true)
        for (i, b) in piece.enumerated() {
            heapSyms.append(HeapSymbol(id: tok.byteSymbols[Int(b)], prev: Int32(i - 1), next: i + 1 < n ? Int32(i + 1) : -1))
        }
        heap.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) { push(Int32(i)) }
        while let e = pop() {
            let l = Int(e.key & 0xFFFF_FFFF)
            let r = Int(heapSyms[l].next)
            // Stale if either side changed since the pair was pushed (texts only grow, so equal
            // ids mean unchanged symbols).
            guard heapSyms[l].id == e.left, r >= 0, heapSyms[r].id == e.right else { continue }
            heapSyms[l].id = e.merged
            let rn = heapSyms[r].next
            heapSyms[l].next = rn
            if rn >= 0 { heapSyms[Int(rn)].prev = Int32(l) }
            heapSyms[r].id = -1
            if heapSyms[l].prev >= 0 { push(heapSyms[l].prev) }
            push(Int32(l))
        }
        var i: Int32 = 0
        while i >= 0 {
            emit(heapSyms[Int(i)].id, into: &out)
            i = heapSyms[Int(i)].next
        }
    }

    /// Pushes the pair starting at symbol `l`, if it has a right neighbour and a merge.
    private mutating func push(_ l: Int32) {
        let r = heapSyms[Int(l)].next
        guard r >= 0 else { return }
        let left = heapSyms[Int(l)].id, right = heapSyms[Int(r)].id
        let m = lookup(left, right)
        guard m != .max else { return }
        heap.append(HeapEntry(key: (m >> 32) << 32 | UInt64(UInt32(l)), left: left, right: right,
                              merged: Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)))
        var c = heap.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            if heap[p].key <= heap[c].key { break }
            heap.swapAt(p, c)
            c = p
        }
    }

    private mutating func pop() -> HeapEntry? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        heap[0] = last
        var p = 0
        let n = heap.count
        while true {
            let a = 2 * p + 1, b = a + 1
            var m = p
            if a < n && heap[a].key < heap[m].key { m = a }
            if b < n && heap[b].key < heap[m].key { m = b }
            if m == p { break }
            heap.swapAt(p, m)
            p = m
        }
        return top
    }
}

/// An open-addressing map from piece bytes to token ids, keys and values stored in flat arenas.
struct PieceCache {
    private struct Entry {
        var hash: UInt64
        var keyStart: Int32
        var keyCount: Int32
        var valueStart: Int32
        var valueCount: Int32
    }

    private var slots = [Int32](repeating: -1, count: 1024)
    private var entries: [Entry] = []
    private var keys: [UInt8] = []
    private var values: [Int32] = []

    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h ^ (h >> 29)
    }

    func find(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let e = Int(slots[i])
            if e < 0 { return nil }
            let entry = entries[e]
            if entry.hash == hash && Int(entry.keyCount) == key.count {
                let same = keys.withUnsafeBufferPointer { k in
                    memcmp(k.baseAddress! + Int(entry.keyStart), key.baseAddress!, key.count) == 0
                }
                if same { return e }
            }
            i = (i + 1) & mask
        }
    }

    func append(entry e: Int, to out: inout [Int32]) {
        let entry = entries[e]
        let s = Int(entry.valueStart)
        out.append(contentsOf: values[s..<(s + Int(entry.valueCount))])
    }

    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64, ids: ArraySlice<Int32>) {
        if (entries.count + 1) * 2 > slots.count { grow() }
        let entry = Entry(
            hash: hash, keyStart: Int32(keys.count), keyCount: Int32(key.count), valueStart: Int32(values.count),
            valueCount: Int32(ids.count))
        keys.append(contentsOf: key)
        values.append(contentsOf: ids)
        entries.append(entry)
        place(Int32(entries.count - 1), hash: hash)
    }

    private mutating func place(_ e: Int32, hash: UInt64) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = e
    }

    private mutating func grow() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        for (i, e) in entries.enumerated() { place(Int32(i), hash: e.hash) }
    }
}
