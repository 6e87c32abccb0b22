import TensorGraph

/// Everything that can be wrong with a GGUF file, a split set, or a graph being written as GGUF.
/// Each case names the file and where (byte offset, key, tensor) with the numbers involved.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    // Reading: header.
    case truncated(file: String, what: String, offset: Int, needed: Int, fileSize: Int)
    case badMagic(file: String, found: [UInt8])
    case unsupportedVersion(file: String, version: UInt32)
    case countTooLarge(file: String, what: String, count: UInt64, minimumBytes: Int, available: Int)
    // Reading: metadata.
    case emptyKey(file: String, index: Int, offset: Int)
    case duplicateKey(file: String, key: String, offset: Int)
    case unknownValueType(file: String, key: String, offset: Int, type: UInt32)
    case stringTooLong(file: String, what: String, offset: Int, length: UInt64, remaining: Int)
    case arrayTooLong(file: String, key: String, offset: Int, count: UInt64, elementType: String, remaining: Int)
    case nestingTooDeep(file: String, key: String, offset: Int, limit: Int)
    case invalidUTF8(file: String, what: String, offset: Int)
    case invalidBool(file: String, key: String, offset: Int, byte: UInt8)
    case badAlignment(file: String, value: String)
    // Reading: tensor infos and data.
    case tooManyDimensions(file: String, tensor: String, nDims: UInt32, limit: Int)
    case zeroDimension(file: String, tensor: String, ne: [UInt64])
    case shapeOverflow(file: String, tensor: String, ne: [UInt64])
    case unknownTensorType(file: String, tensor: String, type: UInt32)
    case shape(file: String, tensor: String, ShapeError)
    case duplicateTensor(file: String, tensor: String)
    case misalignedOffset(file: String, tensor: String, offset: UInt64, alignment: Int)
    case dataPastEnd(file: String, tensor: String, start: UInt64, byteCount: Int, fileSize: Int)
    case overlap(file: String, tensor: String, start: UInt64, previous: String, previousEnd: UInt64)
    // Split sets.
    case badSplitKey(file: String, key: String, value: String)
    case splitNameUnrecognized(file: String, count: Int)
    case missingSplit(file: String, expected: String)
    case splitMismatch(file: String, key: String, expected: Int, found: Int)
    case splitTensorCount(file: String, declared: Int, found: Int)
    // Writing.
    case cannotStore(file: String, tensor: String, dtype: DType)
    case cannotWriteShape(file: String, tensor: String, shape: [Int], reason: String)
    case badMetadata(file: String, key: String, reason: String)
    case badSplitLimit(file: String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(file, what, offset, needed, fileSize):
            return "\(file): truncated: \(what) needs \(needed) bytes at offset \(offset), the file has \(fileSize) bytes"
        case let .badMagic(file, found):
            let shown = found.map { $0 >= 0x20 && $0 < 0x7f ? String(UnicodeScalar($0)) : "?" }.joined()
            let hex = found.map { hex2($0) }.joined(separator: " ")
            return "\(file): not a GGUF file: magic is '\(shown)' (\(hex)), expected 'GGUF' (47 47 55 46)"
        case let .unsupportedVersion(file, version):
            let swapped = version & 0xffff == 0 ? " (byte-swapped: a big-endian file?)" : ""
            return "\(file): GGUF version \(version) is not supported (versions 2 and 3 are)\(swapped)"
        case let .countTooLarge(file, what, count, minimumBytes, available):
            return "\(file): header declares \(count) \(what)s, which need at least \(minimumBytes) bytes each, but only \(available) bytes follow the header"
        case let .emptyKey(file, index, offset):
            return "\(file): metadata key \(index) at offset \(offset) is empty"
        case let .duplicateKey(file, key, offset):
            return "\(file): metadata key '\(key)' at offset \(offset) appears more than once"
        case let .unknownValueType(file, key, offset, type):
            return "\(file): metadata key '\(key)': unknown value type \(type) at offset \(offset)"
        case let .stringTooLong(file, what, offset, length, remaining):
            return "\(file): \(what): string length \(length) at offset \(offset) is longer than the \(remaining) bytes left in the file"
        case let .arrayTooLong(file, key, offset, count, elementType, remaining):
            return "\(file): metadata key '\(key)': array of \(count) \(elementType) values at offset \(offset) cannot fit in the \(remaining) bytes left in the file"
        case let .nestingTooDeep(file, key, offset, limit):
            return "\(file): metadata key '\(key)': arrays nested deeper than \(limit) levels at offset \(offset)"
        case let .invalidUTF8(file, what, offset):
            return "\(file): \(what): string at offset \(offset) is not valid UTF-8"
        case let .invalidBool(file, key, offset, byte):
            return "\(file): metadata key '\(key)': bool at offset \(offset) is \(byte), not 0 or 1"
        case let .badAlignment(file, value):
            return "\(file): general.alignment must be a uint32 nonzero power of two, not \(value)"
        case let .tooManyDimensions(file, tensor, nDims, limit):
            return "\(file): tensor '\(tensor)' has \(nDims) dimensions, more than the \(limit) ggml allows"
        case let .zeroDimension(file, tensor, ne):
            return "\(file): tensor '\(tensor)' has a zero dimension: ne \(ne)"
        case let .shapeOverflow(file, tensor, ne):
            return "\(file): tensor '\(tensor)': dimensions ne \(ne) overflow: their product does not fit in 63 bits"
        case let .unknownTensorType(file, tensor, type):
            return "\(file): tensor '\(tensor)' has unknown ggml type \(type)"
        case let .shape(file, tensor, e):
            return "\(file): tensor '\(tensor)': \(e)"
        case let .duplicateTensor(file, tensor):
            return "\(file): tensor '\(tensor)' appears more than once"
        case let .misalignedOffset(file, tensor, offset, alignment):
            return "\(file): tensor '\(tensor)': data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .dataPastEnd(file, tensor, start, byteCount, fileSize):
            return "\(file): tensor '\(tensor)': \(byteCount) bytes at file offset \(start) run past the end of the \(fileSize)-byte file"
        case let .overlap(file, tensor, start, previous, previousEnd):
            return "\(file): tensor '\(tensor)' data starts at offset \(start), overlapping tensor '\(previous)' which ends at \(previousEnd)"
        case let .badSplitKey(file, key, value):
            return "\(file): split key '\(key)' has an invalid value \(value)"
        case let .splitNameUnrecognized(file, count):
            return "\(file): declares split.count \(count) but is not named like STEM-00001-of-\(GGUF.pad5(count)).gguf, so the other files cannot be found"
        case let .missingSplit(file, expected):
            return "\(file): belongs to a split set but '\(expected)' does not exist"
        case let .splitMismatch(file, key, expected, found):
            return "\(file): \(key) is \(found), expected \(expected)"
        case let .splitTensorCount(file, declared, found):
            return "\(file): split.tensors.count is \(declared) but the split files hold \(found) tensors"
        case let .cannotStore(file, tensor, dtype):
            return "\(file): tensor '\(tensor)': GGUF cannot hold \(dtype.displayName) (it has no ggml type; cast it first, e.g. --dtype f16)"
        case let .cannotWriteShape(file, tensor, shape, reason):
            return "\(file): tensor '\(tensor)' shape \(shape): \(reason)"
        case let .badMetadata(file, key, reason):
            return "\(file): metadata key '\(key)': \(reason)"
        case let .badSplitLimit(file, reason):
            return "\(file): \(reason)"
        }
    }

    private func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }
}
