import TensorGraph

/// Everything that can be wrong with a safetensors file or a sharded set, with the numbers involved.
public enum SafetensorsError: Error, CustomStringConvertible {
    case tooSmall(file: String, size: Int)
    case headerTooLarge(file: String, declared: UInt64, limit: Int)
    case headerPastEnd(file: String, declared: UInt64, fileSize: Int)
    case invalidJSON(file: String, JSONError)
    case headerNotObject(file: String)
    case duplicateTensor(file: String, tensor: String)
    case badEntry(file: String, tensor: String, reason: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case shape(file: String, tensor: String, ShapeError)
    case sizeMismatch(file: String, tensor: String, dtype: DType, shape: [Int], expected: Int, actual: Int)
    case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlap(file: String, tensor: String, begin: Int, previous: String, previousEnd: Int)
    case gap(file: String, tensor: String, begin: Int, previous: String?, previousEnd: Int)
    case trailingBytes(file: String, dataEnd: Int, dataSize: Int)
    case badMetadata(file: String, reason: String)
    case badIndex(file: String, reason: String)
    case missingShard(index: String, shard: String, tensor: String)
    case tensorNotInShard(index: String, tensor: String, shard: String)
    case cannotStore(file: String, tensor: String, dtype: DType)

    public var description: String {
        switch self {
        case let .tooSmall(file, size):
            return "\(Echo.path(file)): not a safetensors file: \(size) bytes, less than the 8-byte header length"
        case let .headerTooLarge(file, declared, limit):
            return "\(Echo.path(file)): header length \(declared) bytes is above the \(limit)-byte limit"
        case let .headerPastEnd(file, declared, fileSize):
            return "\(Echo.path(file)): header length \(declared) bytes runs past the end of the \(fileSize)-byte file"
        case let .invalidJSON(file, e):
            return "\(Echo.path(file)): header is not valid: \(e)"
        case let .headerNotObject(file):
            return "\(Echo.path(file)): header is not a JSON object"
        case let .duplicateTensor(file, tensor):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' is listed more than once"
        case let .badEntry(file, tensor, reason):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': \(Echo.text(reason))"
        case let .unknownDType(file, tensor, dtype):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': unknown dtype '\(Echo.value(dtype))'"
        case let .shape(file, tensor, e):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': \(e)"
        case let .sizeMismatch(file, tensor, dtype, shape, expected, actual):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': data_offsets span \(actual) bytes but \(dtype.displayName) \(shape) needs \(expected)"
        case let .offsetsOutOfRange(file, tensor, begin, end, dataSize):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': data_offsets [\(begin), \(end)] are outside the \(dataSize)-byte data section"
        case let .overlap(file, tensor, begin, previous, previousEnd):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' starts at \(begin), overlapping '\(Echo.value(previous))' which ends at \(previousEnd)"
        case let .gap(file, tensor, begin, previous, previousEnd):
            let after = previous.map { "'\($0)' ends" } ?? "the data section starts"
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))' starts at \(begin) but \(after) at \(previousEnd): gap of \(begin - previousEnd) bytes"
        case let .trailingBytes(file, dataEnd, dataSize):
            return "\(Echo.path(file)): tensors end at data byte \(dataEnd) but the data section has \(dataSize) bytes"
        case let .badMetadata(file, reason):
            return "\(Echo.path(file)): __metadata__: \(Echo.text(reason))"
        case let .badIndex(file, reason):
            return "\(Echo.path(file)): \(Echo.text(reason))"
        case let .missingShard(index, shard, tensor):
            return "\(Echo.path(index)): shard '\(Echo.value(shard))' (named for tensor '\(Echo.value(tensor))') does not exist"
        case let .tensorNotInShard(index, tensor, shard):
            return "\(Echo.path(index)): tensor '\(Echo.value(tensor))' is mapped to '\(Echo.value(shard))', which does not contain it"
        case let .cannotStore(file, tensor, dtype):
            return "\(Echo.path(file)): tensor '\(Echo.value(tensor))': safetensors cannot hold \(dtype.displayName) (convert to GGUF or Ingot, or dequantize with --dtype)"
        }
    }
}
