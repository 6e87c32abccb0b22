import Codecs
import Dispatch
import TensorGraph

/// What `IngotWriter.write` produced.
public struct IngotWriteSummary: Sendable {
    public let path: String
    public let tensors: Int
    public let chunks: Int
    public let rawBytes: Int
    public let storedBytes: Int
    public let fileBytes: Int
}

/// Writes a tensor graph as an Ingot file, streaming: tensors are cut into chunks, chunks are
/// transformed and compressed on `threads` threads with at most a small window of chunks in
/// flight, and written in order; the header and index follow the data, then the fixed trailer.
/// The output is written under a temporary name and renamed into place only when complete.
public enum IngotWriter {
    /// At this level and above, float planes and block streams use the level's own zstd
    /// parameters (optimal parsing) instead of the literal-oriented set.
    public static let literalParametersBelowLevel = 19
    /// At this level and above, each transformed tensor's layout is chosen by trial: a sample of
    /// its first bytes is compressed both through its standard layout and as plain bytes, and
    /// the smaller wins. Slow levels search far enough to find repeats of whole values (weights
    /// dequantized from a block format take only 16 or 32 distinct values per block), which byte
    /// planes hide; at faster levels the planes always win on such data too.
    public static let layoutTrialFromLevel = 10
    /// Bytes of a tensor compressed both ways in a layout trial.
    static let layoutTrialBytes = 256 << 10

    @discardableResult
    public static func write(
        _ graph: TensorGraph, to path: String, level: Int = Ingot.defaultLevel, chunkSize: Int = Ingot.defaultChunkSize,
        threads: Int = 0, sourceFormat: String? = nil, replace: Bool = false, progress: @escaping (Int) -> Void = { _ in }
    ) throws -> IngotWriteSummary {
        guard level != 0, level >= Int(Zstd.minLevel), level <= Int(Zstd.maxLevel) else {
            throw IngotError.badOption(
                file: path, reason: "compression level \(level) is outside \(Zstd.minLevel)...\(Zstd.maxLevel) (0 excluded)")
        }
        guard chunkSize >= Ingot.minChunkSize, chunkSize <= Ingot.maxChunkSize else {
            throw IngotError.badOption(
                file: path, reason: "chunk size \(chunkSize) is outside \(Ingot.minChunkSize)...\(Ingot.maxChunkSize)")
        }
        guard threads >= 0 else { throw IngotError.badOption(file: path, reason: "thread count \(threads) is negative") }

        // Plan: every tensor's layout, chunk size and chunks.
        let chosen = try chooseLayouts(graph.tensors, level: level, threads: ingotThreadCount(threads))
        var entries: [IngotTensor] = []
        var jobs: [Job] = []
        var largest = 0
        for (t, tensor) in graph.tensors.enumerated() {
            let layout = chosen[t]
            let unit = layout.blockBytes
            guard tensor.byteCount % unit == 0 else {
                throw IngotError.cannotStore(
                    file: path, tensor: tensor.name, reason: "\(tensor.byteCount) bytes are not whole \(unit)-byte blocks")
            }
            let per = max(unit, chunkSize / unit * unit)
            guard per <= Ingot.maxChunkSize else {
                throw IngotError.cannotStore(file: path, tensor: tensor.name, reason: "its \(unit)-byte blocks are too large")
            }
            var chunks: [IngotChunk] = []
            var offset = 0
            while offset < tensor.byteCount {
                let size = min(per, tensor.byteCount - offset)
                jobs.append(Job(tensor: t, chunk: chunks.count, offset: offset, size: size))
                chunks.append(IngotChunk(offset: 0, storedSize: 0, rawSize: size, flags: 0, checksum: 0, rawOffset: offset))
                offset += size
                largest = max(largest, size)
            }
            entries.append(IngotTensor(
                name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount, chunkSize: per,
                layout: layout, chunks: chunks))
        }
        // Encode the header's graph and metadata parts first: a bad value fails before any work.
        var header = IngotHeader()
        header.graph = IngotGraphFields.encode(graph, sourceFormat: sourceFormat)
        header.metadata = graph.metadata
        header.tensors = entries
        _ = try header.encode(file: path)

        let out = try AtomicOutput(path: path, replace: replace)
        var prelude = IngotEncoder()
        prelude.bytes = Ingot.magic
        prelude.u16(Ingot.majorVersion)
        prelude.u16(Ingot.minorVersion)
        prelude.u32(0)
        try out.write(prelude.bytes)

        let parameters = zip(graph.tensors, entries).map { parametersFor($0.dtype, layout: $1.layout, level: level) }
        let layouts = entries.map(\.layout)
        let sink = { (job: Job, stored: UnsafeRawBufferPointer, flags: UInt32, checksum: UInt64) throws in
            let offset = out.bytesWritten
            try out.write(stored)
            header.tensors[job.tensor].chunks[job.chunk].offset = offset
            header.tensors[job.tensor].chunks[job.chunk].storedSize = stored.count
            header.tensors[job.tensor].chunks[job.chunk].flags = flags
            header.tensors[job.tensor].chunks[job.chunk].checksum = checksum
            progress(job.size)
        }
        try runPipeline(
            jobs: jobs, tensors: graph.tensors, layouts: layouts, parameters: parameters, largest: largest,
            threads: ingotThreadCount(threads), sink: sink)

        // Header (graph, metadata, index), compressed when that helps, then the trailer.
        let headerOffset = out.bytesWritten
        let raw = try header.encode(file: path)
        var stored = raw
        var codec = Ingot.headerRaw
        if !raw.isEmpty {
            let compressor = ZstdCompressor()
            var packed = [UInt8](repeating: 0, count: raw.count)
            let n = try raw.withUnsafeBytes { src in
                try packed.withUnsafeMutableBytes { dst in
                    try compressor.compress(src, into: dst, parameters: ZstdParameters(level: Int32(max(level, 6))))
                }
            }
            if let n, n < raw.count {
                packed.removeSubrange(n...)
                stored = packed
                codec = Ingot.headerZstd
            }
        }
        try out.write(stored)
        var trailer = IngotEncoder()
        trailer.u64(UInt64(headerOffset))
        trailer.u64(UInt64(stored.count))
        trailer.u64(UInt64(raw.count))
        trailer.u32(codec)
        trailer.u32(0)
        trailer.u64(XXHash64.hash(stored))
        trailer.u16(Ingot.majorVersion)
        trailer.u16(Ingot.minorVersion)
        trailer.u32(0)
        trailer.bytes.append(contentsOf: Ingot.trailerMagic)
        trailer.u64(XXHash64.hash(prelude.bytes + trailer.bytes))
        try out.write(trailer.bytes)
        let fileBytes = out.bytesWritten
        try out.commit()
        return IngotWriteSummary(
            path: path, tensors: entries.count, chunks: jobs.count, rawBytes: graph.totalBytes,
            storedBytes: header.tensors.reduce(0) { $0 + $1.storedBytes }, fileBytes: fileBytes)
    }

    /// The zstd parameters for a tensor's streams: the literal-oriented set for float planes and
    /// block streams (below `literalParametersBelowLevel`), the level itself otherwise.
    static func parametersFor(_ dtype: DType, layout: IngotLayout, level: Int) -> ZstdParameters {
        if (dtype.isFloat || dtype.isQuantized) && !layout.isIdentity && level > 0 && level < literalParametersBelowLevel {
            return .literals
        }
        return ZstdParameters(level: Int32(level))
    }

    /// Every tensor's layout: the standard one for its dtype, or, from `layoutTrialFromLevel`
    /// on, plain bytes for a tensor whose sample compresses at least 2 % smaller that way.
    static func chooseLayouts(_ tensors: [Tensor], level: Int, threads: Int) throws -> [IngotLayout] {
        var layouts = tensors.map { IngotLayout.standard(for: $0.dtype) }
        guard level >= layoutTrialFromLevel else { return layouts }
        let candidates = tensors.indices.filter { i in
            !layouts[i].isIdentity && tensors[i].byteCount >= 4 * layouts[i].blockBytes
                && tensors[i].byteCount >= 64 << 10
        }
        guard !candidates.isEmpty else { return layouts }
        final class Results: @unchecked Sendable {
            var plain: [Bool]
            var errors: [(any Error)?]
            init(_ n: Int) {
                plain = Array(repeating: false, count: n)
                errors = Array(repeating: nil, count: n)
            }
        }
        let results = Results(candidates.count)
        let parts = max(1, min(threads, candidates.count))
        let standard = layouts
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let encoder = IngotChunkEncoder(capacity: layoutTrialBytes)
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: layoutTrialBytes, alignment: 64)
            defer { out.deallocate() }
            for k in stride(from: p, to: candidates.count, by: parts) {
                let i = candidates[k]
                let tensor = tensors[i]
                let layout = standard[i]
                let size = min(tensor.byteCount, layoutTrialBytes) / layout.blockBytes * layout.blockBytes
                do {
                    do {
                        try tensor.storage.read(offset: 0, into: UnsafeMutableRawBufferPointer(rebasing: encoder.input[0..<size]))
                    } catch let e as IngotError {
                        throw e
                    } catch {
                        throw GraphError.badTensor(name: tensor.name, reason: "\(error)")
                    }
                    let plain = IngotLayout.identity(layout.blockBytes)
                    let a = try encoder.encode(
                        rawSize: size, layout: layout, parameters: parametersFor(tensor.dtype, layout: layout, level: level),
                        into: out)
                    let b = try encoder.encode(
                        rawSize: size, layout: plain, parameters: parametersFor(tensor.dtype, layout: plain, level: level),
                        into: out)
                    results.plain[k] = Double(b.stored) < 0.98 * Double(a.stored)
                } catch {
                    results.errors[k] = error
                }
            }
        }
        for (k, i) in candidates.enumerated() {
            if let e = results.errors[k] { throw e }
            if results.plain[k] { layouts[i] = .identity(layouts[i].blockBytes) }
        }
        return layouts
    }

    struct Job: Sendable {
        let tensor: Int
        let chunk: Int
        let offset: Int
        let size: Int
    }

    /// One slot of the window of chunks in flight.
    final class Slot: @unchecked Sendable {
        let buffer: UnsafeMutableRawBufferPointer
        var job = -1
        var stored = 0
        var flags: UInt32 = 0
        var checksum: UInt64 = 0
        var error: (any Error)?
        init(capacity: Int) { buffer = .allocate(byteCount: max(capacity, 1), alignment: 64) }
        deinit { buffer.deallocate() }
    }

    /// Shared state of the pipeline, guarded by `monitor`.
    final class Pipeline: @unchecked Sendable {
        let monitor = IngotMonitor()
        let jobs: [Job]
        let slots: [Slot]
        var next = 0
        var written = 0
        var cancelled = false
        init(jobs: [Job], slots: [Slot]) {
            self.jobs = jobs
            self.slots = slots
        }
        var window: Int { slots.count }
        /// Whether a job may be claimed now (call with the lock held).
        var claimable: Bool { !cancelled && next < jobs.count && next < written + window }
    }

    /// Compresses `jobs` on `threads` threads (the calling thread is one of them, and the one
    /// that hands finished chunks to `sink`, in order). At most `2 * threads + 2` chunks are in
    /// flight.
    static func runPipeline(
        jobs: [Job], tensors: [Tensor], layouts: [IngotLayout], parameters: [ZstdParameters], largest: Int, threads: Int,
        sink: (Job, UnsafeRawBufferPointer, UInt32, UInt64) throws -> Void
    ) throws {
        guard !jobs.isEmpty else { return }
        let window = min(jobs.count, 2 * threads + 2)
        let p = Pipeline(jobs: jobs, slots: (0..<window).map { _ in Slot(capacity: largest) })

        @Sendable func process(_ j: Int, _ encoder: IngotChunkEncoder) {
            let job = p.jobs[j]
            let slot = p.slots[j % p.window]
            let tensor = tensors[job.tensor]
            do {
                do {
                    try tensor.storage.read(
                        offset: job.offset, into: UnsafeMutableRawBufferPointer(rebasing: encoder.input[0..<job.size]))
                } catch let e as IngotError {
                    throw e
                } catch {
                    throw GraphError.badTensor(name: tensor.name, reason: "\(error)")
                }
                let r = try encoder.encode(
                    rawSize: job.size, layout: layouts[job.tensor], parameters: parameters[job.tensor], into: slot.buffer)
                slot.stored = r.stored
                slot.flags = r.flags
                slot.checksum = XXHash64.hash(UnsafeRawBufferPointer(rebasing: slot.buffer[0..<r.stored]))
                slot.error = nil
            } catch {
                slot.error = error
            }
            p.monitor.withLock {
                slot.job = j
                p.monitor.broadcast()
            }
        }

        let workers = IngotThreadGroup(threads - 1) { _ in
            let encoder = IngotChunkEncoder(capacity: largest)
            while true {
                p.monitor.lock()
                while !p.claimable && !p.cancelled && p.next < p.jobs.count { p.monitor.wait() }
                guard p.claimable else {
                    p.monitor.unlock()
                    return
                }
                let j = p.next
                p.next += 1
                p.monitor.unlock()
                process(j, encoder)
            }
        }
        defer {
            p.monitor.withLock {
                p.cancelled = true
                p.monitor.broadcast()
            }
            workers.join()
        }

        let encoder = IngotChunkEncoder(capacity: largest)
        for j in 0..<jobs.count {
            let slot = p.slots[j % window]
            p.monitor.lock()
            while slot.job != j {
                if p.claimable {
                    let mine = p.next
                    p.next += 1
                    p.monitor.unlock()
                    process(mine, encoder)
                    p.monitor.lock()
                } else {
                    p.monitor.wait()
                }
            }
            p.monitor.unlock()
            if let e = slot.error { throw e }
            try sink(jobs[j], UnsafeRawBufferPointer(rebasing: slot.buffer[0..<slot.stored]), slot.flags, slot.checksum)
            p.monitor.withLock {
                p.written = j + 1
                p.monitor.broadcast()
            }
        }
    }
}
