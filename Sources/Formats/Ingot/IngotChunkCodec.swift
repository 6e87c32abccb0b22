import Codecs
import TensorGraph
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One thread's working memory for encoding chunks: a zstd context, the raw input and the
/// transformed streams. Stored output never exceeds the raw size (a chunk that would is stored
/// raw), so an output buffer of the chunk size is always enough.
final class IngotChunkEncoder {
    let compressor = ZstdCompressor()
    let input: UnsafeMutableRawBufferPointer
    let planes: UnsafeMutableRawBufferPointer

    init(capacity: Int) {
        input = .allocate(byteCount: max(capacity, 1), alignment: 64)
        planes = .allocate(byteCount: max(capacity, 1), alignment: 64)
    }

    deinit {
        input.deallocate()
        planes.deallocate()
    }

    /// Encodes the `rawSize` bytes in `input` into `out` (at least `rawSize` bytes): returns the
    /// stored size and the chunk flags.
    func encode(
        rawSize: Int, layout: IngotLayout, parameters: ZstdParameters, into out: UnsafeMutableRawBufferPointer
    ) throws -> (stored: Int, flags: UInt32) {
        precondition(out.count >= rawSize && rawSize % layout.blockBytes == 0)
        let blocks = rawSize / layout.blockBytes
        let streams: UnsafeRawPointer
        if layout.isIdentity {
            streams = UnsafeRawPointer(input.baseAddress!)
        } else {
            layout.split(input.baseAddress!, blocks: blocks, into: planes.baseAddress!)
            streams = UnsafeRawPointer(planes.baseAddress!)
        }
        let lengths = layout.streamBytesPerBlock.map { $0 * blocks }
        let table = lengths.count * Ingot.streamEntrySize
        var pos = table
        var src = 0
        var fits = table < rawSize
        if fits {
            let base = out.baseAddress!
            for (i, length) in lengths.enumerated() {
                let room = rawSize - pos
                // A frame is kept when it saves more than 1/64 of its stream: barely compressible
                // streams (random mantissa bytes) are cheaper to read as they are.
                let limit = min(length - length / 64 - 1, room)
                var size = length
                var codec = Ingot.codecRaw
                let stream = UnsafeRawBufferPointer(start: streams + src, count: length)
                if limit > 0, !IngotChunkEncoder.looksRandom(stream),
                    let n = try compressor.compress(
                        stream, into: UnsafeMutableRawBufferPointer(start: base + pos, count: limit), parameters: parameters)
                {
                    size = n
                    codec = Ingot.codecZstd
                } else {
                    guard length <= room else {
                        fits = false
                        break
                    }
                    (base + pos).copyMemory(from: streams + src, byteCount: length)
                }
                let entry = base + i * Ingot.streamEntrySize
                entry.storeBytes(of: UInt32(size).littleEndian, as: UInt32.self)
                entry.storeBytes(of: UInt32(codec).littleEndian, toByteOffset: 4, as: UInt32.self)
                pos += size
                src += length
            }
        }
        if !fits || pos >= rawSize {
            out.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: rawSize)
            return (rawSize, Ingot.chunkStoredRaw)
        }
        return (pos, 0)
    }
}

extension IngotChunkEncoder {
    /// Bytes sampled for `looksRandom`.
    static let entropySample = 16384
    /// Streams whose estimated order-0 entropy is above this many bits per byte are stored raw
    /// without trying zstd: its Huffman coder could save under 1.5%, less than a frame is kept for.
    static let randomBits = 7.9

    /// Whether `stream` looks like uniformly random bytes (mantissa planes, say), from the byte
    /// histogram of an evenly spaced sample (small-sample bias corrected). Deterministic.
    static func looksRandom(_ stream: UnsafeRawBufferPointer) -> Bool {
        let n = stream.count
        guard n >= 4 * entropySample, let base = stream.baseAddress else { return false }
        let step = n / entropySample
        var counts = [Int](repeating: 0, count: 256)
        counts.withUnsafeMutableBufferPointer { c in
            let p = base.assumingMemoryBound(to: UInt8.self)
            var i = 0
            for _ in 0..<entropySample {
                c[Int(p[i])] &+= 1
                i &+= step
            }
        }
        let total = Double(entropySample)
        var h = 0.0
        for c in counts where c > 0 {
            let q = Double(c) / total
            h -= q * log2(q)
        }
        h += 255 / (2 * total * 0.6931471805599453)
        return h > randomBits
    }
}

/// One thread's working memory for decoding chunks.
final class IngotChunkDecoder {
    let decompressor = ZstdDecompressor()
    private(set) var stored: UnsafeMutableRawBufferPointer
    private(set) var planes: UnsafeMutableRawBufferPointer

    init(storedCapacity: Int, rawCapacity: Int) {
        stored = .allocate(byteCount: max(storedCapacity, 1), alignment: 64)
        planes = .allocate(byteCount: max(rawCapacity, 1), alignment: 64)
    }

    deinit {
        stored.deallocate()
        planes.deallocate()
    }

    /// Grows the buffers to hold a chunk of these sizes.
    func reserve(stored s: Int, raw r: Int) {
        if s > stored.count {
            stored.deallocate()
            stored = .allocate(byteCount: s, alignment: 64)
        }
        if r > planes.count {
            planes.deallocate()
            planes = .allocate(byteCount: r, alignment: 64)
        }
    }

    /// Decodes a chunk's stored bytes (checksum already verified) into `dst`, which is exactly
    /// the chunk's raw size. Every stream decodes into a slot of exactly its declared size.
    func decode(
        _ input: UnsafeRawBufferPointer, chunk: IngotChunk, layout: IngotLayout, into dst: UnsafeMutableRawBufferPointer,
        file: String, tensor: String, index: Int
    ) throws(IngotError) {
        precondition(dst.count == chunk.rawSize && input.count == chunk.storedSize)
        if chunk.isStoredRaw {
            dst.copyMemory(from: input)
            return
        }
        let blocks = chunk.rawSize / layout.blockBytes
        let lengths = layout.streamBytesPerBlock.map { $0 * blocks }
        let table = lengths.count * Ingot.streamEntrySize
        guard table <= input.count else {
            throw .badStreamTable(
                file: file, tensor: tensor, chunk: index,
                reason: "stream table of \(lengths.count) streams needs \(table) bytes, the chunk has \(input.count)")
        }
        var sizes: [Int] = []
        var codecs: [UInt8] = []
        var total = table
        for i in 0..<lengths.count {
            let size = Int(UInt32(littleEndian: input.loadUnaligned(fromByteOffset: i * 8, as: UInt32.self)))
            let codec = input[i * 8 + 4]
            guard input[i * 8 + 5] == 0, input[i * 8 + 6] == 0, input[i * 8 + 7] == 0 else {
                throw .badStreamTable(file: file, tensor: tensor, chunk: index, reason: "stream \(i): reserved bytes are not zero")
            }
            switch codec {
            case Ingot.codecRaw:
                guard size == lengths[i] else {
                    throw .badStreamTable(
                        file: file, tensor: tensor, chunk: index,
                        reason: "stream \(i) is stored raw in \(size) bytes but holds \(lengths[i])")
                }
            case Ingot.codecZstd:
                guard size > 0 else {
                    throw .badStreamTable(file: file, tensor: tensor, chunk: index, reason: "stream \(i) is an empty zstd frame")
                }
            default:
                throw .badStreamTable(file: file, tensor: tensor, chunk: index, reason: "stream \(i) has unknown codec \(codec)")
            }
            sizes.append(size)
            codecs.append(codec)
            total += size
        }
        guard total == input.count else {
            throw .badStreamTable(
                file: file, tensor: tensor, chunk: index,
                reason: "stream table and streams add up to \(total) bytes, the chunk has \(input.count)")
        }
        let target = layout.isIdentity ? dst.baseAddress! : planes.baseAddress!
        var pos = table
        var out = 0
        for i in 0..<lengths.count {
            let src = UnsafeRawBufferPointer(rebasing: input[pos..<(pos + sizes[i])])
            let slot = UnsafeMutableRawBufferPointer(start: target + out, count: lengths[i])
            if codecs[i] == Ingot.codecRaw {
                slot.copyMemory(from: src)
            } else {
                do { try decompressor.decompress(src, into: slot) } catch {
                    throw .streamDecompression(file: file, tensor: tensor, chunk: index, stream: i, reason: error.description)
                }
            }
            pos += sizes[i]
            out += lengths[i]
        }
        if !layout.isIdentity { layout.merge(planes.baseAddress!, blocks: blocks, into: dst.baseAddress!) }
    }
}
