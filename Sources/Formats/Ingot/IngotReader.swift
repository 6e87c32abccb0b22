import Codecs
import Dispatch
import TensorGraph

/// Reads Ingot files: `IngotReader.read(path)` is the lazy graph, `IngotReader.open(path)` the
/// file with its index (sizes, chunk tables) and `verify`.
public enum IngotReader {
    /// The graph in `path`. Tensor bytes stay compressed on disk until a consumer reads them;
    /// every chunk read is checked against its checksum and declared sizes first.
    public static func read(_ path: String) throws -> TensorGraph {
        try IngotFile(path: path).graph()
    }

    /// The file with its header and index parsed and validated.
    public static func open(_ path: String) throws -> IngotFile {
        try IngotFile(path: path)
    }

    /// Whether `path` starts with the Ingot magic (no validation beyond that).
    public static func sniff(_ path: String) -> Bool {
        guard let f = try? ReadableFile(path: path), f.size >= Ingot.magic.count else { return false }
        return (try? f.readBytes(at: 0, count: Ingot.magic.count)) == Ingot.magic
    }
}

/// An open Ingot file: header, metadata and tensor index, parsed and validated in full (prelude,
/// trailer and header checksums; chunks tiling the data section back to back). Chunks are read,
/// checked and decoded on demand, on as many threads as a read spans chunks.
public final class IngotFile: @unchecked Sendable {
    public let path: String
    public let fileSize: Int
    public let majorVersion: UInt16
    public let minorVersion: UInt16
    /// Where the data section ends and the header starts.
    public let headerOffset: Int
    public let headerStoredSize: Int
    public let headerRawSize: Int
    public let tensors: [IngotTensor]
    public let metadata: Metadata
    public let architecture: String?
    public let hyperparameters: Hyperparameters
    public let tokenizer: Tokenizer
    /// The format the graph was converted from (`gguf`, `safetensors`, `hf-folder`), when recorded.
    public let sourceFormat: String?
    /// Optional header sections this reader skipped.
    public let unknownSections: [String]

    let file: ReadableFile
    let maxStored: Int
    let maxRaw: Int
    private let pool: IngotDecoderPool
    private let cache: IngotChunkCache
    private let readAhead: IngotReadAhead
    /// Chunks of all tensors in file order: `firstChunk[t] + k` is tensor t's chunk k.
    private let firstChunk: [Int]
    private let chunkOwner: [(tensor: Int, chunk: Int)]

    public var chunkCount: Int { tensors.reduce(0) { $0 + $1.chunks.count } }
    public var rawBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }
    public var storedBytes: Int { tensors.reduce(0) { $0 + $1.storedBytes } }

    init(path: String) throws {
        self.path = path
        let file = try ReadableFile(path: path)
        self.file = file
        let size = file.size
        fileSize = size

        let head = try file.readBytes(at: 0, count: min(size, Ingot.magic.count))
        guard head == Ingot.magic else {
            if size < Ingot.magic.count && Array(Ingot.magic.prefix(head.count)) == head {
                throw IngotError.truncated(file: path, size: size, minimum: Ingot.preludeSize + Ingot.trailerSize)
            }
            throw IngotError.notIngot(file: path, found: head)
        }
        guard size >= Ingot.preludeSize + Ingot.trailerSize else {
            throw IngotError.truncated(file: path, size: size, minimum: Ingot.preludeSize + Ingot.trailerSize)
        }
        let prelude = try file.readBytes(at: 0, count: Ingot.preludeSize)
        let major = prelude.u16(8), minor = prelude.u16(10)
        guard major == Ingot.majorVersion else { throw IngotError.unsupportedVersion(file: path, major: major, minor: minor) }
        majorVersion = major
        minorVersion = minor

        let trailer = try file.readBytes(at: size - Ingot.trailerSize, count: Ingot.trailerSize)
        guard Array(trailer[48..<56]) == Ingot.trailerMagic else {
            throw IngotError.noTrailer(file: path, found: Array(trailer[48..<56]))
        }
        let computed = XXHash64.hash(prelude + trailer[0..<56])
        let stored = trailer.u64(56)
        guard computed == stored else { throw IngotError.trailerChecksum(file: path, stored: stored, computed: computed) }
        guard prelude.u32(12) == 0 else {
            throw IngotError.badPrelude(file: path, reason: "flags \(hex64(UInt64(prelude.u32(12)))) are not zero")
        }
        guard trailer.u16(40) == major, trailer.u16(42) == minor else {
            throw IngotError.badTrailer(
                file: path, reason: "version \(trailer.u16(40)).\(trailer.u16(42)) differs from the prelude's \(major).\(minor)")
        }
        let hOffset = trailer.u64(0), hStored = trailer.u64(8), hRaw = trailer.u64(16)
        let hCodec = trailer.u32(24), hChecksum = trailer.u64(32)
        let trailerStart = UInt64(size - Ingot.trailerSize)
        guard hOffset >= UInt64(Ingot.preludeSize), hOffset <= trailerStart, hStored == trailerStart - hOffset else {
            throw IngotError.headerOutOfRange(file: path, offset: hOffset, length: hStored, fileSize: size)
        }
        guard hRaw <= UInt64(Ingot.maxHeaderSize) else {
            throw IngotError.headerTooLarge(file: path, declared: hRaw, limit: Ingot.maxHeaderSize)
        }
        guard trailer.u32(28) == 0, trailer.u32(44) == 0 else {
            throw IngotError.badTrailer(file: path, reason: "reserved fields are not zero")
        }
        headerOffset = Int(hOffset)
        headerStoredSize = Int(hStored)
        headerRawSize = Int(hRaw)

        let storedHeader = try file.readBytes(at: headerOffset, count: headerStoredSize)
        let headerSum = XXHash64.hash(storedHeader)
        guard headerSum == hChecksum else { throw IngotError.headerChecksum(file: path, stored: hChecksum, computed: headerSum) }
        let headerBytes: [UInt8]
        switch hCodec {
        case Ingot.headerRaw:
            guard hStored == hRaw else {
                throw IngotError.headerDecompression(
                    file: path, reason: "stored raw in \(hStored) bytes but declared as \(hRaw)")
            }
            headerBytes = storedHeader
        case Ingot.headerZstd:
            // Uninitialized: a frame that fails fails before touching the (up to 1 GiB of) memory.
            let d = ZstdDecompressor()
            var failure: ZstdFrameError?
            let rawCount = Int(hRaw)
            let out = [UInt8](unsafeUninitializedCapacity: rawCount) { dst, count in
                storedHeader.withUnsafeBytes { src in
                    do throws(ZstdFrameError) {
                        try d.decompress(src, into: UnsafeMutableRawBufferPointer(dst))
                        count = rawCount
                    } catch {
                        failure = error
                        count = 0
                    }
                }
            }
            if let failure { throw IngotError.headerDecompression(file: path, reason: failure.description) }
            headerBytes = out
        default:
            throw IngotError.badTrailer(file: path, reason: "unknown header codec \(hCodec)")
        }

        let header = try IngotHeader.decode(headerBytes, file: path)
        // The chunks tile the data section exactly, in index order.
        var expected = Ingot.preludeSize
        for t in header.tensors {
            for (k, c) in t.chunks.enumerated() {
                guard c.offset <= headerOffset, c.storedSize <= headerOffset - c.offset else {
                    throw IngotError.chunkOutOfRange(
                        file: path, tensor: t.name, chunk: k, offset: UInt64(c.offset), length: UInt64(c.storedSize),
                        dataEnd: headerOffset)
                }
                guard c.offset == expected else {
                    throw IngotError.chunkNotContiguous(
                        file: path, tensor: t.name, chunk: k, offset: UInt64(c.offset), expected: expected)
                }
                expected += c.storedSize
            }
        }
        guard expected == headerOffset else { throw IngotError.dataNotCovered(file: path, dataEnd: headerOffset, chunksEnd: expected) }

        let fields = try IngotGraphFields.decode(header.graph, metadata: header.metadata, file: path)
        tensors = header.tensors
        metadata = header.metadata
        architecture = fields.architecture
        hyperparameters = fields.hyperparameters
        tokenizer = fields.tokenizer
        sourceFormat = fields.source
        unknownSections = header.unknownSections
        maxStored = header.tensors.flatMap(\.chunks).map(\.storedSize).max() ?? 0
        maxRaw = header.tensors.flatMap(\.chunks).map(\.rawSize).max() ?? 0
        let cores = ingotThreadCount(0)
        pool = IngotDecoderPool(storedCapacity: maxStored, rawCapacity: maxRaw, keep: 2 * cores + 1)
        let depth = IngotFile.readAheadChunks(cores: cores, chunkBytes: maxRaw)
        cache = IngotChunkCache(capacity: depth + max(4, 2 * cores))
        readAhead = IngotReadAhead(depth: depth, workers: cores)
        var first: [Int] = []
        var owner: [(tensor: Int, chunk: Int)] = []
        for (t, tensor) in header.tensors.enumerated() {
            first.append(owner.count)
            for k in tensor.chunks.indices { owner.append((t, k)) }
        }
        firstChunk = first
        chunkOwner = owner
        readAhead.decode = { [weak self] g in self?.fill(g) }
    }

    /// How many chunks a sequential reader has decoded ahead of it: enough to keep every core
    /// busy while the reader writes, at most 64 MiB.
    static func readAheadChunks(cores: Int, chunkBytes: Int) -> Int {
        max(1, min(2 * cores + 2, (64 << 20) / max(chunkBytes, 1)))
    }

    /// The lazy tensor graph: each tensor's storage decodes its chunks when read.
    public func graph() throws -> TensorGraph {
        let tensorList = try tensors.indices.map { i in
            let t = tensors[i]
            let storage = ProducedStorage(byteCount: t.byteCount) { [self] offset, buffer in
                try self.read(tensor: i, offset: offset, into: buffer)
            }
            return try Tensor(name: t.name, dtype: t.dtype, shape: t.shape, storage: storage)
        }
        return try TensorGraph(
            architecture: architecture, hyperparameters: hyperparameters, metadata: metadata, tokenizer: tokenizer,
            tensors: tensorList)
    }

    // MARK: - Chunks

    /// Reads, checks and decodes one chunk into `dst` (exactly its raw size).
    public func decodeChunk(tensor t: Int, chunk k: Int, into dst: UnsafeMutableRawBufferPointer) throws(IngotError) {
        let decoder = pool.take()
        defer { pool.give(decoder) }
        try decodeChunk(tensor: t, chunk: k, into: dst, decoder: decoder)
    }

    func decodeChunk(
        tensor t: Int, chunk k: Int, into dst: UnsafeMutableRawBufferPointer, decoder: IngotChunkDecoder
    ) throws(IngotError) {
        let tensor = tensors[t]
        let c = tensor.chunks[k]
        decoder.reserve(stored: c.storedSize, raw: c.rawSize)
        let input = UnsafeMutableRawBufferPointer(rebasing: decoder.stored[0..<c.storedSize])
        do { try file.read(at: c.offset, into: input) } catch {
            throw .io(file: path, reason: "tensor '\(Echo.value(tensor.name))' chunk \(k): \(error)")
        }
        let sum = XXHash64.hash(UnsafeRawBufferPointer(input))
        guard sum == c.checksum else {
            throw .chunkChecksum(file: path, tensor: tensor.name, chunk: k, offset: c.offset, stored: c.checksum, computed: sum)
        }
        try decoder.decode(
            UnsafeRawBufferPointer(input), chunk: c, layout: tensor.layout, into: dst, file: path, tensor: tensor.name,
            index: k)
    }

    /// The decoded bytes of chunk `g` (file order), through the cache: a chunk decoded or being
    /// decoded (by a read-ahead worker or another reader) is not decoded again.
    func cachedChunk(_ g: Int) throws(IngotError) -> [UInt8] {
        switch cache.acquire(g) {
        case let .ready(bytes): return bytes
        case let .failed(e): throw e
        case .mine:
            return try fill(g).get()
        }
    }

    /// Decodes chunk `g`, which the caller has marked pending in the cache, into the cache.
    @discardableResult
    func fill(_ g: Int) -> Result<[UInt8], IngotError> {
        let (t, k) = chunkOwner[g]
        let size = tensors[t].chunks[k].rawSize
        var failure: IngotError?
        // A buffer of an evicted chunk when one fits (a reader still copying from it keeps its
        // bytes: writing here copies first), else new memory; decoding overwrites all of it.
        var out = cache.takeSpare(size) ?? [UInt8](unsafeUninitializedCapacity: size) { _, count in count = size }
        out.withUnsafeMutableBytes { dst in
            do throws(IngotError) { try decodeChunk(tensor: t, chunk: k, into: dst) } catch { failure = error }
        }
        if let failure {
            cache.fail(g, failure)
            return .failure(failure)
        }
        cache.fulfill(g, out)
        return .success(out)
    }

    /// Copies bytes `[offset, offset + buffer.count)` of tensor `t` into `buffer`, decoding the
    /// chunks the range touches (in parallel when it touches several). Chunks the range covers
    /// whole decode straight into `buffer` unless already decoded; partly covered ones go through
    /// a small cache, so small sequential reads decode each chunk once. Reads that continue where
    /// the previous one ended have the next chunks (in file order, across tensors) decoded ahead
    /// on background threads, so a consumer writing what it read overlaps with decoding.
    public func read(tensor t: Int, offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let count = buffer.count
        guard offset >= 0, count <= tensors[t].byteCount, offset <= tensors[t].byteCount - count else {
            throw StorageError.outOfRange(
                what: "\(path): tensor '\(Echo.value(tensors[t].name))'", offset: offset, count: count, size: tensors[t].byteCount)
        }
        guard count > 0 else { return }
        let chunks = tensors[t].chunks
        let end = offset + count
        // The first chunk whose raw range contains `offset`.
        var lo = 0, hi = chunks.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if chunks[mid].rawOffset <= offset { lo = mid } else { hi = mid - 1 }
        }
        var last = lo
        while last + 1 < chunks.count && chunks[last + 1].rawOffset < end { last += 1 }
        let first = lo
        let n = last - first + 1
        let base = buffer.baseAddress!
        let g0 = firstChunk[t] + first
        let ahead = readAhead.sequential(first: g0, last: g0 + n - 1, total: chunkOwner.count)
        if !ahead.isEmpty { readAhead.start(ahead, cache: cache) }

        let work = { (i: Int) throws(IngotError) in
            let k = first + i
            let c = chunks[k]
            let from = max(offset, c.rawOffset)
            let to = min(end, c.rawOffset + c.rawSize)
            let dst = UnsafeMutableRawBufferPointer(start: base + (from - offset), count: to - from)
            if from == c.rawOffset && to == c.rawOffset + c.rawSize && !self.cache.contains(g0 + i) {
                try self.decodeChunk(tensor: t, chunk: k, into: dst)
            } else {
                let bytes = try self.cachedChunk(g0 + i)
                bytes.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(from - c.rawOffset)..<(to - c.rawOffset)]))
                }
            }
        }
        if n == 1 {
            try work(0)
            return
        }
        let errors = IngotErrorSlots(n)
        withoutActuallyEscaping(work) { work in
            let shared = IngotUnchecked(work)
            DispatchQueue.concurrentPerform(iterations: n) { i in
                do throws(IngotError) { try shared.value(i) } catch { errors.set(i, error) }
            }
        }
        if let e = errors.first { throw e }
    }

    // MARK: - Verification

    /// Checks every chunk: reads it, compares its checksum, decodes it into a buffer of its
    /// declared size. Uses `threads` threads (0: all cores). `progress` hears raw bytes checked.
    public func verify(threads: Int = 0, progress: (@Sendable (Int) -> Void)? = nil) -> IngotVerification {
        var jobs: [(Int, Int)] = []
        for (t, tensor) in tensors.enumerated() { for k in tensor.chunks.indices { jobs.append((t, k)) } }
        let jobList = jobs
        let state = IngotMonitor()
        let next = IngotCounter()
        let failures = IngotFailureList()
        let n = max(1, min(ingotThreadCount(threads), jobList.count))
        ingotRunThreads(n) { [self] _ in
            let decoder = IngotChunkDecoder(storedCapacity: maxStored, rawCapacity: maxRaw)
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxRaw, 1), alignment: 64)
            defer { out.deallocate() }
            while true {
                let j = next.increment()
                if j >= jobList.count { break }
                let (t, k) = jobList[j]
                let c = tensors[t].chunks[k]
                do throws(IngotError) {
                    try decodeChunk(
                        tensor: t, chunk: k, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<c.rawSize]),
                        decoder: decoder)
                } catch {
                    failures.add(j, error)
                }
                if let progress { state.withLock { progress(c.rawSize) } }
            }
        }
        return IngotVerification(
            tensors: tensors.count, chunks: jobList.count, rawBytes: rawBytes, storedBytes: storedBytes,
            failures: failures.sorted)
    }
}

/// The outcome of `IngotFile.verify`.
public struct IngotVerification: Sendable {
    public let tensors: Int
    public let chunks: Int
    public let rawBytes: Int
    public let storedBytes: Int
    /// Every bad chunk's error, in file order.
    public let failures: [IngotError]
    public var ok: Bool { failures.isEmpty }
}

// MARK: - Helpers

extension [UInt8] {
    func u16(_ at: Int) -> UInt16 { withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt16.self)) } }
    func u32(_ at: Int) -> UInt32 { withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) } }
    func u64(_ at: Int) -> UInt64 { withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) } }
}

struct IngotUnchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A shared counter handing out job numbers.
final class IngotCounter: @unchecked Sendable {
    private let m = IngotMonitor()
    private var value = 0
    func increment() -> Int { m.withLock { defer { value += 1 }; return value } }
}

/// Errors of parallel iterations, by iteration.
final class IngotErrorSlots: @unchecked Sendable {
    private let m = IngotMonitor()
    private var errors: [IngotError?]
    init(_ n: Int) { errors = Array(repeating: nil, count: n) }
    func set(_ i: Int, _ e: IngotError) { m.withLock { errors[i] = e } }
    var first: IngotError? { m.withLock { errors.first { $0 != nil } ?? nil } }
}

final class IngotFailureList: @unchecked Sendable {
    private let m = IngotMonitor()
    private var list: [(Int, IngotError)] = []
    func add(_ i: Int, _ e: IngotError) { m.withLock { list.append((i, e)) } }
    var sorted: [IngotError] { m.withLock { list.sorted { $0.0 < $1.0 }.map(\.1) } }
}

/// Decoders (zstd context and buffers) kept for reuse across reads.
final class IngotDecoderPool: @unchecked Sendable {
    private let m = IngotMonitor()
    private var free: [IngotChunkDecoder] = []
    private let storedCapacity: Int, rawCapacity: Int, keep: Int

    init(storedCapacity: Int, rawCapacity: Int, keep: Int) {
        self.storedCapacity = storedCapacity
        self.rawCapacity = rawCapacity
        self.keep = keep
    }

    func take() -> IngotChunkDecoder {
        if let d = m.withLock({ free.popLast() }) { return d }
        return IngotChunkDecoder(storedCapacity: storedCapacity, rawCapacity: rawCapacity)
    }

    func give(_ d: IngotChunkDecoder) {
        m.withLock { if free.count < keep { free.append(d) } }
    }
}

/// Decoded chunks by file-order index: the few most recently used, and those being decoded
/// (a pending entry always has a decoder that finishes it without waiting on anything, so
/// waiting for one cannot deadlock). Pending entries are never evicted.
final class IngotChunkCache: @unchecked Sendable {
    enum Entry {
        case pending
        case ready([UInt8])
        case failed(IngotError)
    }

    enum Acquired {
        case ready([UInt8])
        case failed(IngotError)
        /// The caller must decode the chunk and `fulfill` or `fail` it.
        case mine
    }

    private let m = IngotMonitor()
    private var entries: [Int: Entry] = [:]
    private var order: [Int] = []
    /// Buffers of evicted chunks, for reuse.
    private var spares: [[UInt8]] = []
    let capacity: Int

    /// A spare buffer of exactly `size` bytes, if there is one.
    func takeSpare(_ size: Int) -> [UInt8]? {
        m.withLock {
            guard let i = spares.firstIndex(where: { $0.count == size }) else { return nil }
            return spares.remove(at: i)
        }
    }

    init(capacity: Int) { self.capacity = capacity }

    func contains(_ g: Int) -> Bool { m.withLock { entries[g] != nil } }

    /// The chunk if decoded (waiting while it is being decoded), or `.mine` after marking it pending.
    func acquire(_ g: Int) -> Acquired {
        m.lock()
        defer { m.unlock() }
        while true {
            switch entries[g] {
            case .pending?:
                m.wait()
            case let .ready(bytes)?:
                touch(g)
                return .ready(bytes)
            case let .failed(e)?:
                return .failed(e)
            case nil:
                insert(g, .pending)
                return .mine
            }
        }
    }

    /// Marks `g` pending for a read-ahead worker; false when it is already there or the cache is
    /// full of pending entries.
    func reserve(_ g: Int) -> Bool {
        m.withLock {
            guard entries[g] == nil else { return false }
            let pending = entries.values.reduce(0) { n, e in if case .pending = e { return n + 1 }; return n }
            guard pending < capacity / 2 else { return false }
            insert(g, .pending)
            return true
        }
    }

    func fulfill(_ g: Int, _ bytes: [UInt8]) { set(g, .ready(bytes)) }
    func fail(_ g: Int, _ e: IngotError) { set(g, .failed(e)) }
    private func set(_ g: Int, _ e: Entry) {
        m.withLock {
            if entries[g] == nil { order.append(g) }
            entries[g] = e
            m.broadcast()
        }
    }

    private func touch(_ g: Int) {
        if let i = order.firstIndex(of: g) {
            order.remove(at: i)
            order.append(g)
        }
    }

    /// Adds an entry, evicting the least recently used finished entries beyond the capacity.
    private func insert(_ g: Int, _ e: Entry) {
        entries[g] = e
        order.append(g)
        var i = 0
        while order.count > capacity && i < order.count {
            let victim = order[i]
            if case .pending? = entries[victim] {
                i += 1
                continue
            }
            if case let .ready(bytes)? = entries[victim], spares.count < capacity { spares.append(bytes) }
            entries[victim] = nil
            order.remove(at: i)
        }
    }
}

/// Sequential-read detection and the background threads that decode ahead of such a reader.
/// Workers stay a moment after their queue empties (a converter reads in bursts), then exit.
final class IngotReadAhead: @unchecked Sendable {
    private let m = IngotMonitor()
    private let depth: Int
    private let maxWorkers: Int
    private var expected = -1
    private var queued: [Int] = []
    private var workers = 0
    private var idle = 0
    private var scheduledUpTo = -1
    /// Fills a reserved chunk (set by the file, which it holds weakly).
    var decode: (@Sendable (Int) -> Void)?
    static let idleSeconds = 0.25

    init(depth: Int, workers: Int) {
        self.depth = depth
        maxWorkers = max(1, workers)
    }

    /// Records a read of chunks `first...last`; when it continues the previous read, returns the
    /// chunks to decode ahead (not already scheduled).
    func sequential(first: Int, last: Int, total: Int) -> [Int] {
        m.withLock {
            let continues = first == expected || first == expected - 1
            expected = last + 1
            guard continues else {
                scheduledUpTo = last
                return []
            }
            let from = max(last + 1, scheduledUpTo + 1)
            let to = min(total - 1, last + depth)
            guard from <= to else { return [] }
            scheduledUpTo = to
            return Array(from...to)
        }
    }

    /// Queues chunks for the workers (reserving them in `cache`) and wakes or starts workers.
    func start(_ chunks: [Int], cache: IngotChunkCache) {
        guard let decode else { return }
        var spawn = 0
        m.withLock {
            for g in chunks where cache.reserve(g) { queued.append(g) }
            m.broadcast()
            spawn = min(maxWorkers - workers, max(0, queued.count - idle))
            workers += spawn
        }
        for _ in 0..<spawn {
            let ok = ingotDetachedThread { [self] in
                m.lock()
                while true {
                    if !queued.isEmpty {
                        let g = queued.removeFirst()
                        m.unlock()
                        decode(g)
                        m.lock()
                        continue
                    }
                    idle += 1
                    let woken = m.wait(seconds: IngotReadAhead.idleSeconds)
                    idle -= 1
                    if !woken && queued.isEmpty {
                        workers -= 1
                        m.unlock()
                        return
                    }
                }
            }
            if !ok {
                // No thread: decode what no worker will take here, so no reservation stays pending.
                let orphans: [Int] = m.withLock {
                    workers -= 1
                    guard workers == 0 else { return [] }
                    defer { queued = [] }
                    return queued
                }
                for g in orphans { decode(g) }
            }
        }
    }
}
