import TensorGraph

/// Everything that can be wrong with an Ingot file, or with a request to write one, naming the
/// file, the tensor and the chunk, and giving the numbers involved.
public enum IngotError: Error, CustomStringConvertible, Equatable {
    // File structure.
    case notIngot(file: String, found: [UInt8])
    case truncated(file: String, size: Int, minimum: Int)
    case unsupportedVersion(file: String, major: UInt16, minor: UInt16)
    case badPrelude(file: String, reason: String)
    case noTrailer(file: String, found: [UInt8])
    case trailerChecksum(file: String, stored: UInt64, computed: UInt64)
    case badTrailer(file: String, reason: String)
    case headerOutOfRange(file: String, offset: UInt64, length: UInt64, fileSize: Int)
    case headerTooLarge(file: String, declared: UInt64, limit: Int)
    case headerChecksum(file: String, stored: UInt64, computed: UInt64)
    case headerDecompression(file: String, reason: String)
    // Header contents.
    case headerTruncated(file: String, what: String, offset: Int, needed: Int, available: Int)
    case badHeader(file: String, reason: String)
    case unknownRequiredSection(file: String, tag: String)
    case missingSection(file: String, tag: String)
    case countTooLarge(file: String, what: String, count: UInt64, available: Int)
    case duplicateKey(file: String, key: String)
    case duplicateTensor(file: String, tensor: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case badTensor(file: String, tensor: String, reason: String)
    case badLayout(file: String, tensor: String, reason: String)
    // The chunk index.
    case chunkSizesDoNotAddUp(file: String, tensor: String, sum: UInt64, expected: Int)
    case badChunk(file: String, tensor: String, chunk: Int, reason: String)
    case chunkOutOfRange(file: String, tensor: String, chunk: Int, offset: UInt64, length: UInt64, dataEnd: Int)
    case chunkNotContiguous(file: String, tensor: String, chunk: Int, offset: UInt64, expected: Int)
    case dataNotCovered(file: String, dataEnd: Int, chunksEnd: Int)
    // Chunk contents.
    case chunkChecksum(file: String, tensor: String, chunk: Int, offset: Int, stored: UInt64, computed: UInt64)
    case badStreamTable(file: String, tensor: String, chunk: Int, reason: String)
    case streamDecompression(file: String, tensor: String, chunk: Int, stream: Int, reason: String)
    case io(file: String, reason: String)
    // Writing.
    case badOption(file: String, reason: String)
    case cannotStore(file: String, tensor: String, reason: String)
    case badMetadata(file: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .notIngot(file, found):
            return "\(Echo.path(file)): not an Ingot file (starts with \(hex(found)), expected \(hex(Ingot.magic)))"
        case let .truncated(file, size, minimum):
            return "\(Echo.path(file)): truncated: \(size) bytes, an Ingot file has at least \(minimum)"
        case let .unsupportedVersion(file, major, minor):
            return "\(Echo.path(file)): Ingot version \(major).\(minor) is not supported (this reader reads \(Ingot.majorVersion).x)"
        case let .badPrelude(file, reason):
            return "\(Echo.path(file)): bad prelude: \(Echo.text(reason))"
        case let .noTrailer(file, found):
            return "\(Echo.path(file)): truncated or unfinished: no trailer at the end of the file (found \(hex(found)) where \(hex(Ingot.trailerMagic)) belongs)"
        case let .trailerChecksum(file, stored, computed):
            return "\(Echo.path(file)): trailer checksum mismatch (stored \(hex64(stored)), computed \(hex64(computed))): the prelude or trailer is corrupt"
        case let .badTrailer(file, reason):
            return "\(Echo.path(file)): bad trailer: \(Echo.text(reason))"
        case let .headerOutOfRange(file, offset, length, fileSize):
            return "\(Echo.path(file)): trailer points to a header of \(length) bytes at offset \(offset), outside the \(fileSize)-byte file (or not right before the trailer)"
        case let .headerTooLarge(file, declared, limit):
            return "\(Echo.path(file)): header of \(declared) bytes is above the \(limit)-byte limit"
        case let .headerChecksum(file, stored, computed):
            return "\(Echo.path(file)): header checksum mismatch (stored \(hex64(stored)), computed \(hex64(computed))): the header or tensor index is corrupt"
        case let .headerDecompression(file, reason):
            return "\(Echo.path(file)): header: \(Echo.text(reason))"
        case let .headerTruncated(file, what, offset, needed, available):
            return "\(Echo.path(file)): header: \(Echo.text(what)) at header byte \(offset) needs \(needed) bytes, \(available) left"
        case let .badHeader(file, reason):
            return "\(Echo.path(file)): header: \(Echo.text(reason))"
        case let .unknownRequiredSection(file, tag):
            return "\(Echo.path(file)): header: required section '\(Echo.value(tag))' is unknown to this reader (written by a newer Smelt?)"
        case let .missingSection(file, tag):
            return "\(Echo.path(file)): header: section '\(Echo.value(tag))' is missing"
        case let .countTooLarge(file, what, count, available):
            return "\(Echo.path(file)): header: \(count) \(Echo.text(what)) cannot fit in the \(available) bytes left"
        case let .duplicateKey(file, key):
            return "\(Echo.path(file)): header: metadata key '\(Echo.value(key))' appears more than once"
        case let .duplicateTensor(file, tensor):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' appears more than once"
        case let .unknownDType(file, tensor, dtype):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': unknown dtype '\(Echo.value(dtype))'"
        case let .badTensor(file, tensor, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': \(Echo.text(reason))"
        case let .badLayout(file, tensor, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': bad transform layout: \(Echo.text(reason))"
        case let .chunkSizesDoNotAddUp(file, tensor, sum, expected):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': its chunks hold \(sum) bytes, the tensor has \(expected)"
        case let .badChunk(file, tensor, chunk, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' chunk \(chunk): \(Echo.text(reason))"
        case let .chunkOutOfRange(file, tensor, chunk, offset, length, dataEnd):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' chunk \(chunk): \(length) bytes at offset \(offset) are outside the data section (which ends at \(dataEnd))"
        case let .chunkNotContiguous(file, tensor, chunk, offset, expected):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' chunk \(chunk): starts at offset \(offset), expected \(expected) (chunks are stored back to back in index order)"
        case let .dataNotCovered(file, dataEnd, chunksEnd):
            return "\(Echo.path(file)): chunks end at offset \(chunksEnd) but the data section ends at \(dataEnd)"
        case let .chunkChecksum(file, tensor, chunk, offset, stored, computed):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' chunk \(chunk) (at offset \(offset)): checksum mismatch (stored \(hex64(stored)), computed \(hex64(computed))): the chunk is corrupt"
        case let .badStreamTable(file, tensor, chunk, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' chunk \(chunk): \(Echo.text(reason))"
        case let .streamDecompression(file, tensor, chunk, stream, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' chunk \(chunk) stream \(stream): \(Echo.text(reason))"
        case let .io(file, reason):
            return "\(Echo.path(file)): \(Echo.text(reason))"
        case let .badOption(file, reason):
            return "\(Echo.path(file)): \(Echo.text(reason))"
        case let .cannotStore(file, tensor, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': \(Echo.text(reason))"
        case let .badMetadata(file, key, reason):
            return "\(Echo.path(file)): metadata key '\(Echo.value(key))': \(Echo.text(reason))"
        }
    }

    /// The tensor and chunk an error is about, when it is about one chunk.
    public var chunk: (tensor: String, chunk: Int)? {
        switch self {
        case let .badChunk(_, t, c, _), let .chunkOutOfRange(_, t, c, _, _, _), let .chunkNotContiguous(_, t, c, _, _),
            let .chunkChecksum(_, t, c, _, _, _), let .badStreamTable(_, t, c, _), let .streamDecompression(_, t, c, _, _):
            return (t, c)
        default: return nil
        }
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
}

func hex64(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - s.count) + s
}
