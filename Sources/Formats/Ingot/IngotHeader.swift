import Codecs
import TensorGraph

/// Constants of the Ingot container (`formats/ingot.md` is the specification).
public enum Ingot {
    /// The first eight bytes of every Ingot file: 0x89 "INGOT" CR LF.
    public static let magic: [UInt8] = [0x89, 0x49, 0x4E, 0x47, 0x4F, 0x54, 0x0D, 0x0A]
    /// The eight bytes before the trailer checksum, at the end of every finished file.
    public static let trailerMagic: [UInt8] = Array("INGOTEND".utf8)
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    public static let preludeSize = 16
    public static let trailerSize = 64
    public static let chunkEntrySize = 32
    public static let streamEntrySize = 8

    public static let defaultLevel = 3
    public static let defaultChunkSize = 1 << 20
    public static let minChunkSize = 4096
    public static let maxChunkSize = 64 << 20
    /// Headers (after decompression) larger than this are refused.
    public static let maxHeaderSize = 1 << 30
    public static let maxDimensions = 16
    public static let maxArrayDepth = 16

    /// Chunk flag: the stored bytes are the raw tensor bytes (no transform, no compression).
    public static let chunkStoredRaw: UInt32 = 1
    /// Stream codecs in a chunk's stream table.
    public static let codecRaw: UInt8 = 0
    public static let codecZstd: UInt8 = 1
    /// Header codecs in the trailer.
    static let headerRaw: UInt32 = 0
    static let headerZstd: UInt32 = 1
    /// Section flag: a reader that does not know the section must refuse the file.
    static let sectionRequired: UInt32 = 1

    static let graphSection = "GRPH"
    static let metadataSection = "META"
    static let tensorSection = "TENS"
}

/// One chunk's index entry.
public struct IngotChunk: Sendable, Equatable {
    /// Absolute file offset of the stored bytes.
    public var offset: Int
    public var storedSize: Int
    public var rawSize: Int
    public var flags: UInt32
    /// XXH64 (seed 0) of the stored bytes.
    public var checksum: UInt64
    /// Offset of the chunk's raw bytes within its tensor (derived when reading, not stored).
    public var rawOffset: Int = 0

    public var isStoredRaw: Bool { flags & Ingot.chunkStoredRaw != 0 }
}

/// One tensor's entry: what it is and where its chunks are.
public struct IngotTensor: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var byteCount: Int
    /// The raw bytes per chunk the writer used (every chunk but the last has this size).
    public var chunkSize: Int
    public var layout: IngotLayout
    public var chunks: [IngotChunk]

    public var storedBytes: Int { chunks.reduce(0) { $0 + $1.storedSize } }
}

/// The decoded header: graph fields, metadata, tensors with their chunk tables.
struct IngotHeader {
    var graph: [(key: String, value: MetadataValue)] = []
    var metadata = Metadata()
    var tensors: [IngotTensor] = []
    /// Optional sections this reader does not know (kept for tests and tools; ignored otherwise).
    var unknownSections: [String] = []
}

// MARK: - Encoding

/// Little-endian byte building for the header.
struct IngotEncoder {
    var bytes: [UInt8] = []
    /// The file being written, for error messages.
    var file = ""

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u64(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// A value's payload (GGUF's encoding): scalars little-endian, strings length-prefixed,
    /// arrays as element type, count and the elements' payloads.
    mutating func value(_ v: MetadataValue, key: String) throws(IngotError) {
        switch v {
        case let .uint8(x): u8(x)
        case let .int8(x): u8(UInt8(bitPattern: x))
        case let .uint16(x): u16(x)
        case let .int16(x): u16(UInt16(bitPattern: x))
        case let .uint32(x): u32(x)
        case let .int32(x): u32(UInt32(bitPattern: x))
        case let .uint64(x): u64(x)
        case let .int64(x): u64(UInt64(bitPattern: x))
        case let .float32(x): u32(x.bitPattern)
        case let .float64(x): u64(x.bitPattern)
        case let .bool(b): u8(b ? 1 : 0)
        case let .string(s): string(s)
        case let .array(element, values):
            u32(element.rawValue)
            u64(UInt64(values.count))
            for e in values {
                guard e.type == element else {
                    throw .badMetadata(file: file, key: key, reason: "an array of \(element.name) holds a \(e.type.name)")
                }
                try value(e, key: key)
            }
        }
    }

    /// A key/value list: count, then each key, type and value.
    mutating func keyValues(_ entries: [(key: String, value: MetadataValue)]) throws(IngotError) {
        u64(UInt64(entries.count))
        for (k, v) in entries {
            string(k)
            u32(v.type.rawValue)
            try value(v, key: k)
        }
    }

    /// A section: tag, flags, length, payload.
    mutating func section(_ tag: String, required: Bool, _ payload: [UInt8]) {
        bytes.append(contentsOf: Array(tag.utf8))
        u32(required ? Ingot.sectionRequired : 0)
        u64(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }
}

extension IngotHeader {
    /// The header bytes (before compression).
    func encode(file: String) throws(IngotError) -> [UInt8] {
        var g = IngotEncoder(file: file)
        try g.keyValues(graph)
        var m = IngotEncoder(file: file)
        try m.keyValues(metadata.entries)
        var t = IngotEncoder()
        t.u64(UInt64(tensors.count))
        t.u32(UInt32(Ingot.chunkEntrySize))
        t.u32(0)
        for tensor in tensors {
            var d = IngotEncoder()
            d.string(tensor.name)
            d.string(tensor.dtype.rawValue)
            d.u32(UInt32(tensor.shape.count))
            for dim in tensor.shape { d.u64(UInt64(dim)) }
            d.u64(UInt64(tensor.byteCount))
            d.u64(UInt64(tensor.chunkSize))
            d.u64(UInt64(tensor.chunks.count))
            d.u32(UInt32(tensor.layout.blockBytes))
            d.u32(UInt32(tensor.layout.fields.count))
            for f in tensor.layout.fields {
                d.u32(UInt32(f.offset))
                d.u32(UInt32(f.length))
                d.u8(UInt8(f.width))
                d.u8(UInt8(f.rotate))
                d.u16(0)
            }
            t.u64(UInt64(d.bytes.count))
            t.bytes.append(contentsOf: d.bytes)
            for c in tensor.chunks {
                t.u64(UInt64(c.offset))
                t.u32(UInt32(c.storedSize))
                t.u32(UInt32(c.rawSize))
                t.u32(c.flags)
                t.u32(0)
                t.u64(c.checksum)
            }
        }
        var out = IngotEncoder()
        out.section(Ingot.graphSection, required: true, g.bytes)
        out.section(Ingot.metadataSection, required: true, m.bytes)
        out.section(Ingot.tensorSection, required: true, t.bytes)
        return out.bytes
    }
}

// MARK: - Decoding

/// A bounds-checked cursor over the decompressed header.
struct IngotCursor {
    let file: String
    let bytes: [UInt8]
    var offset: Int
    let end: Int

    init(file: String, bytes: [UInt8], offset: Int = 0, end: Int? = nil) {
        self.file = file
        self.bytes = bytes
        self.offset = offset
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - offset }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws(IngotError) {
        guard n >= 0, n <= remaining else {
            throw .headerTruncated(file: file, what: what(), offset: offset, needed: n, available: remaining)
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(IngotError) -> T {
        try need(MemoryLayout<T>.size, what())
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    /// A u64 that must fit an `Int` and be at most `limit`.
    mutating func count(_ what: @autoclosure () -> String, limit: Int) throws(IngotError) -> Int {
        let at = offset
        let v = try read(UInt64.self, what())
        guard v <= UInt64(limit) else {
            throw .badHeader(file: file, reason: "\(what()) at header byte \(at) is \(v), above \(limit)")
        }
        return Int(v)
    }

    mutating func raw(_ n: Int, _ what: @autoclosure () -> String) throws(IngotError) -> ArraySlice<UInt8> {
        try need(n, what())
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func string(_ what: @autoclosure () -> String) throws(IngotError) -> String {
        let at = offset
        let length = try read(UInt64.self, what())
        guard length <= UInt64(remaining) else {
            throw .headerTruncated(file: file, what: what(), offset: at, needed: Int(clamping: length), available: remaining)
        }
        let slice = try raw(Int(length), what())
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw .badHeader(file: file, reason: "\(what()) at header byte \(at) is not valid UTF-8")
        }
        return s
    }

    static func minimumSize(_ type: MetadataType) -> Int {
        switch type {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }

    mutating func value(type raw: UInt32, key: String, depth: Int) throws(IngotError) -> MetadataValue {
        guard let type = MetadataType(rawValue: raw) else {
            throw .badHeader(file: file, reason: "metadata key '\(Echo.value(key))': unknown value type \(raw)")
        }
        let what = "value of '\(Echo.value(key))'"
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
        case .bool:
            let b = try read(UInt8.self, what)
            guard b <= 1 else { throw .badHeader(file: file, reason: "metadata key '\(Echo.value(key))': bool byte \(b)") }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .array:
            guard depth < Ingot.maxArrayDepth else {
                throw .badHeader(file: file, reason: "metadata key '\(Echo.value(key))': arrays nested deeper than \(Ingot.maxArrayDepth)")
            }
            let elementRaw = try read(UInt32.self, "element type of '\(Echo.value(key))'")
            guard let element = MetadataType(rawValue: elementRaw) else {
                throw .badHeader(file: file, reason: "metadata key '\(Echo.value(key))': unknown array element type \(elementRaw)")
            }
            let n = try read(UInt64.self, "length of '\(Echo.value(key))'")
            guard n <= UInt64(remaining / IngotCursor.minimumSize(element)) else {
                throw .countTooLarge(file: file, what: "\(element.name) elements of '\(Echo.value(key))'", count: n, available: remaining)
            }
            var values: [MetadataValue] = []
            values.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { values.append(try value(type: elementRaw, key: key, depth: depth + 1)) }
            return .array(elementType: element, values: values)
        }
    }

    mutating func keyValues(_ what: String) throws(IngotError) -> [(key: String, value: MetadataValue)] {
        let n = try read(UInt64.self, "\(what) count")
        // A key is at least its 8-byte length, a 4-byte type and a 1-byte value.
        guard n <= UInt64(remaining / 13) else {
            throw .countTooLarge(file: file, what: "\(what) entries", count: n, available: remaining)
        }
        var out: [(key: String, value: MetadataValue)] = []
        var seen = Set<String>()
        for i in 0..<Int(n) {
            let key = try string("\(what) key \(i)")
            guard seen.insert(key).inserted else { throw .duplicateKey(file: file, key: key) }
            let type = try read(UInt32.self, "type of '\(Echo.value(key))'")
            out.append((key, try value(type: type, key: key, depth: 0)))
        }
        return out
    }
}

extension IngotHeader {
    /// Parses decompressed header bytes: sections, then their contents, all bounds-checked.
    static func decode(_ bytes: [UInt8], file: String) throws(IngotError) -> IngotHeader {
        var c = IngotCursor(file: file, bytes: bytes)
        var sections: [String: (start: Int, end: Int)] = [:]
        var header = IngotHeader()
        while c.remaining > 0 {
            let tagBytes = try c.raw(4, "section tag")
            let tag = String(decoding: tagBytes, as: UTF8.self)
            let flags = try c.read(UInt32.self, "flags of section '\(Echo.value(tag))'")
            let at = c.offset
            let length = try c.read(UInt64.self, "length of section '\(Echo.value(tag))'")
            guard length <= UInt64(c.remaining) else {
                throw .headerTruncated(
                    file: file, what: "section '\(Echo.value(tag))'", offset: at, needed: Int(clamping: length), available: c.remaining)
            }
            let start = c.offset
            c.offset += Int(length)
            guard sections[tag] == nil else { throw .badHeader(file: file, reason: "section '\(Echo.value(tag))' appears twice") }
            sections[tag] = (start, c.offset)
            if ![Ingot.graphSection, Ingot.metadataSection, Ingot.tensorSection].contains(tag) {
                if flags & Ingot.sectionRequired != 0 { throw .unknownRequiredSection(file: file, tag: tag) }
                header.unknownSections.append(tag)
            }
        }
        func section(_ tag: String) throws(IngotError) -> IngotCursor {
            guard let s = sections[tag] else { throw .missingSection(file: file, tag: tag) }
            return IngotCursor(file: file, bytes: bytes, offset: s.start, end: s.end)
        }
        var g = try section(Ingot.graphSection)
        header.graph = try g.keyValues("graph field")
        var m = try section(Ingot.metadataSection)
        for (k, v) in try m.keyValues("metadata") { header.metadata[k] = v }
        var t = try section(Ingot.tensorSection)
        header.tensors = try decodeTensors(&t)
        return header
    }

    static func decodeTensors(_ c: inout IngotCursor) throws(IngotError) -> [IngotTensor] {
        let file = c.file
        let count = try c.read(UInt64.self, "tensor count")
        let entrySize = Int(try c.read(UInt32.self, "chunk entry size"))
        let reserved = try c.read(UInt32.self, "tensor index reserved field")
        guard reserved == 0 else {
            throw .badHeader(file: file, reason: "the tensor index's reserved field (after the chunk entry size) is \(hex64(UInt64(reserved))), not 0")
        }
        guard entrySize >= Ingot.chunkEntrySize else {
            throw .badHeader(file: file, reason: "chunk entries of \(entrySize) bytes, at least \(Ingot.chunkEntrySize) expected")
        }
        // The smallest tensor record: its 8-byte descriptor length and a descriptor of two empty
        // strings, rank, sizes, chunk count and a one-field layout.
        let minRecord = 8 + 8 + 8 + 4 + 8 + 8 + 8 + 4 + 4 + 12
        guard count <= UInt64(c.remaining / minRecord) else {
            throw .countTooLarge(file: file, what: "tensors", count: count, available: c.remaining)
        }
        var tensors: [IngotTensor] = []
        tensors.reserveCapacity(Int(count))
        var names = Set<String>()
        for i in 0..<Int(count) {
            let descriptorLength = try c.read(UInt64.self, "tensor \(i) descriptor length")
            guard descriptorLength <= UInt64(c.remaining) else {
                throw .headerTruncated(
                    file: file, what: "tensor \(i) descriptor", offset: c.offset, needed: Int(clamping: descriptorLength),
                    available: c.remaining)
            }
            let descriptorEnd = c.offset + Int(descriptorLength)
            var d = IngotCursor(file: file, bytes: c.bytes, offset: c.offset, end: descriptorEnd)
            let name = try d.string("tensor \(i) name")
            guard names.insert(name).inserted else { throw .duplicateTensor(file: file, tensor: name) }
            let dtypeName = try d.string("tensor '\(Echo.value(name))' dtype")
            guard let dtype = DType(rawValue: dtypeName) else {
                throw .unknownDType(file: file, tensor: name, dtype: dtypeName)
            }
            let rank = try d.read(UInt32.self, "tensor '\(Echo.value(name))' rank")
            guard rank <= UInt32(Ingot.maxDimensions) else {
                throw .badTensor(file: file, tensor: name, reason: "\(rank) dimensions (at most \(Ingot.maxDimensions))")
            }
            var shape: [Int] = []
            for k in 0..<Int(rank) {
                shape.append(try d.count("tensor '\(Echo.value(name))' dimension \(k)", limit: Int.max))
            }
            let byteCount = try d.count("tensor '\(Echo.value(name))' byte count", limit: Int.max)
            let expected: Int
            do { expected = try dtype.byteCount(shape: shape) } catch {
                throw .badTensor(file: file, tensor: name, reason: error.description)
            }
            guard expected == byteCount else {
                throw .badTensor(
                    file: file, tensor: name,
                    reason: "\(dtype.displayName) \(shape) needs \(expected) bytes, the index says \(byteCount)")
            }
            let chunkSize = try d.count("tensor '\(Echo.value(name))' chunk size", limit: Ingot.maxChunkSize)
            let chunkCount = try d.read(UInt64.self, "tensor '\(Echo.value(name))' chunk count")
            let blockBytes = Int(try d.read(UInt32.self, "tensor '\(Echo.value(name))' block size"))
            let fieldCount = try d.read(UInt32.self, "tensor '\(Echo.value(name))' field count")
            guard fieldCount <= UInt32(IngotLayout.maxFields) else {
                throw .badLayout(file: file, tensor: name, reason: "\(fieldCount) fields (at most \(IngotLayout.maxFields))")
            }
            var fields: [IngotLayout.Field] = []
            for k in 0..<Int(fieldCount) {
                let offset = Int(try d.read(UInt32.self, "tensor '\(Echo.value(name))' field \(k) offset"))
                let length = Int(try d.read(UInt32.self, "tensor '\(Echo.value(name))' field \(k) length"))
                let width = Int(try d.read(UInt8.self, "tensor '\(Echo.value(name))' field \(k) width"))
                let rotate = Int(try d.read(UInt8.self, "tensor '\(Echo.value(name))' field \(k) rotation"))
                let reserved = try d.read(UInt16.self, "tensor '\(Echo.value(name))' field \(k) reserved")
                guard reserved == 0 else {
                    throw .badLayout(file: file, tensor: name, reason: "field \(k)'s reserved bytes are \(hex64(UInt64(reserved))), not 0")
                }
                fields.append(.init(offset: offset, length: length, width: width, rotate: rotate))
            }
            let layout = IngotLayout(blockBytes: blockBytes, fields: fields)
            if let problem = layout.problem { throw .badLayout(file: file, tensor: name, reason: problem) }
            guard byteCount % blockBytes == 0 else {
                throw .badLayout(file: file, tensor: name, reason: "\(byteCount) bytes are not whole \(blockBytes)-byte blocks")
            }
            // Later minor versions may append descriptor fields: skip what is left.
            c.offset = descriptorEnd

            guard chunkCount <= UInt64(c.remaining / entrySize) else {
                throw .countTooLarge(file: file, what: "chunks of tensor '\(Echo.value(name))'", count: chunkCount, available: c.remaining)
            }
            var chunks: [IngotChunk] = []
            chunks.reserveCapacity(Int(chunkCount))
            var rawOffset = 0
            for k in 0..<Int(chunkCount) {
                let entryEnd = c.offset + entrySize
                let offset = try c.read(UInt64.self, "chunk entry")
                let stored = try c.read(UInt32.self, "chunk entry")
                let raw = try c.read(UInt32.self, "chunk entry")
                let flags = try c.read(UInt32.self, "chunk entry")
                let reserved = try c.read(UInt32.self, "chunk entry")
                let checksum = try c.read(UInt64.self, "chunk entry")
                c.offset = entryEnd
                guard offset <= UInt64(Int.max) else {
                    throw .badChunk(file: file, tensor: name, chunk: k, reason: "offset \(offset) is out of range")
                }
                guard reserved == 0 else {
                    throw .badChunk(file: file, tensor: name, chunk: k, reason: "reserved field \(hex64(UInt64(reserved))) is not 0")
                }
                guard flags & ~Ingot.chunkStoredRaw == 0 else {
                    throw .badChunk(file: file, tensor: name, chunk: k, reason: "unknown flags \(hex64(UInt64(flags)))")
                }
                guard raw > 0, Int(raw) <= Ingot.maxChunkSize, Int(raw) % blockBytes == 0 else {
                    throw .badChunk(
                        file: file, tensor: name, chunk: k,
                        reason: "raw size \(raw) is not a positive multiple of the \(blockBytes)-byte block up to \(Ingot.maxChunkSize)")
                }
                guard stored > 0, stored <= raw else {
                    throw .badChunk(
                        file: file, tensor: name, chunk: k, reason: "stored size \(stored) is not in 1...\(raw) (its raw size)")
                }
                if flags & Ingot.chunkStoredRaw != 0, stored != raw {
                    throw .badChunk(
                        file: file, tensor: name, chunk: k,
                        reason: "stored raw, but its stored size \(stored) differs from its raw size \(raw)")
                }
                chunks.append(IngotChunk(
                    offset: Int(offset), storedSize: Int(stored), rawSize: Int(raw), flags: flags, checksum: checksum,
                    rawOffset: rawOffset))
                rawOffset &+= Int(raw)
            }
            let sum = chunks.reduce(UInt64(0)) { $0 + UInt64($1.rawSize) }
            guard sum == UInt64(byteCount) else {
                throw .chunkSizesDoNotAddUp(file: file, tensor: name, sum: sum, expected: byteCount)
            }
            tensors.append(IngotTensor(
                name: name, dtype: dtype, shape: shape, byteCount: byteCount, chunkSize: chunkSize, layout: layout,
                chunks: chunks))
        }
        return tensors
    }
}
