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
            return "\(Echo.path(file)): truncated: \(Echo.text(what)) needs \(needed) bytes at offset \(offset), the file has \(fileSize) bytes"
        case let .badMagic(file, found):
            let shown = found.map { $0 >= 0x20 && $0 < 0x7f ? String(UnicodeScalar($0)) : "?" }.joined()
            let hex = found.map { hex2($0) }.joined(separator: " ")
            return "\(Echo.path(file)): not a GGUF file: magic is '\(shown)' (\(hex)), expected 'GGUF' (47 47 55 46)"
        case let .unsupportedVersion(file, version):
            let swapped = version & 0xffff == 0 ? " (byte-swapped: a big-endian file?)" : ""
            return "\(Echo.path(file)): GGUF version \(version) is not supported (versions 2 and 3 are)\(swapped)"
        case let .countTooLarge(file, what, count, minimumBytes, available):
            return "\(Echo.path(file)): header declares \(count) \(Echo.text(what))s, which need at least \(minimumBytes) bytes each, but only \(available) bytes follow the header"
        case let .emptyKey(file, index, offset):
            return "\(Echo.path(file)): metadata key \(index) at offset \(offset) is empty"
        case let .duplicateKey(file, key, offset):
            return "\(Echo.path(file)): metadata key '\(Echo.value(key))' at offset \(offset) appears more than once"
        case let .unknownValueType(file, key, offset, type):
            return "\(Echo.path(file)): metadata key '\(Echo.value(key))': unknown value type \(type) at offset \(offset)"
        case let .stringTooLong(file, what, offset, length, remaining):
            return "\(Echo.path(file)): \(Echo.text(what)): string length \(length) at offset \(offset) is longer than the \(remaining) bytes left in the file"
        case let .arrayTooLong(file, key, offset, count, elementType, remaining):
            return "\(Echo.path(file)): metadata key '\(Echo.value(key))': array of \(count) \(elementType) values at offset \(offset) cannot fit in the \(remaining) bytes left in the file"
        case let .nestingTooDeep(file, key, offset, limit):
            return "\(Echo.path(file)): metadata key '\(Echo.value(key))': arrays nested deeper than \(limit) levels at offset \(offset)"
        case let .invalidUTF8(file, what, offset):
            return "\(Echo.path(file)): \(Echo.text(what)): string at offset \(offset) is not valid UTF-8"
        case let .invalidBool(file, key, offset, byte):
            return "\(Echo.path(file)): metadata key '\(Echo.value(key))': bool at offset \(offset) is \(byte), not 0 or 1"
        case let .badAlignment(file, value):
            return "\(Echo.path(file)): general.alignment must be a uint32 nonzero power of two, not \(Echo.text(value))"
        case let .tooManyDimensions(file, tensor, nDims, limit):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' has \(nDims) dimensions, more than the \(limit) ggml allows"
        case let .zeroDimension(file, tensor, ne):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' has a zero dimension: ne \(ne)"
        case let .shapeOverflow(file, tensor, ne):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': dimensions ne \(ne) overflow: their product does not fit in 63 bits"
        case let .unknownTensorType(file, tensor, type):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' has unknown ggml type \(type)"
        case let .shape(file, tensor, e):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': \(e)"
        case let .duplicateTensor(file, tensor):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' appears more than once"
        case let .misalignedOffset(file, tensor, offset, alignment):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .dataPastEnd(file, tensor, start, byteCount, fileSize):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': \(byteCount) bytes at file offset \(start) run past the end of the \(fileSize)-byte file"
        case let .overlap(file, tensor, start, previous, previousEnd):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' data starts at offset \(start), overlapping tensor '\(Echo.value(previous))' which ends at \(previousEnd)"
        case let .badSplitKey(file, key, value):
            return "\(Echo.path(file)): split key '\(Echo.value(key))' has an invalid value \(Echo.text(value))"
        case let .splitNameUnrecognized(file, count):
            return "\(Echo.path(file)): declares split.count \(count) but is not named like STEM-00001-of-\(GGUF.pad5(count)).gguf, so the other files cannot be found"
        case let .missingSplit(file, expected):
            return "\(Echo.path(file)): belongs to a split set but '\(Echo.path(expected))' does not exist"
        case let .splitMismatch(file, key, expected, found):
            return "\(Echo.path(file)): \(Echo.value(key)) is \(found), expected \(expected)"
        case let .splitTensorCount(file, declared, found):
            return "\(Echo.path(file)): split.tensors.count is \(declared) but the split files hold \(found) tensors"
        case let .cannotStore(file, tensor, dtype):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': GGUF cannot hold \(dtype.displayName) (it has no ggml type; cast it first, e.g. --dtype f16)"
        case let .cannotWriteShape(file, tensor, shape, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' shape \(shape): \(Echo.text(reason))"
        case let .badMetadata(file, key, reason):
            return "\(Echo.path(file)): metadata key '\(Echo.value(key))': \(Echo.text(reason))"
        case let .badSplitLimit(file, reason):
            return "\(Echo.path(file)): \(Echo.text(reason))"
        }
    }

    private func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }
}
