import TensorGraph

/// Reads safetensors files: one file, or a sharded set through its `*.safetensors.index.json`.
/// Every header is validated in full before any tensor is handed out.
public enum SafetensorsReader {
    /// Headers larger than this are refused (the Rust reference uses the same bound).
    public static let maxHeaderSize = 100_000_000

    /// One parsed file: tensors in data order, and its `__metadata__` strings.
    public struct File {
        public let path: String
        public var tensors: [Tensor]
        public var metadata: [(String, String)]
    }

    /// Reads one `.safetensors` file.
    public static func readFile(_ path: String) throws -> File {
        let file = try ReadableFile(path: path)
        guard file.size >= 8 else { throw SafetensorsError.tooSmall(file: path, size: file.size) }
        let lengthBytes = try file.readBytes(at: 0, count: 8)
        let declared = lengthBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard declared <= UInt64(maxHeaderSize) else {
            throw SafetensorsError.headerTooLarge(file: path, declared: declared, limit: maxHeaderSize)
        }
        guard declared <= UInt64(file.size - 8) else {
            throw SafetensorsError.headerPastEnd(file: path, declared: declared, fileSize: file.size)
        }
        let headerSize = Int(declared)
        let headerBytes = try file.readBytes(at: 8, count: headerSize)
        let header: JSONValue
        do {
            header = try JSONParser.parse(headerBytes)
        } catch {
            if let key = error.duplicateKey { throw SafetensorsError.duplicateTensor(file: path, tensor: key) }
            throw SafetensorsError.invalidJSON(file: path, error)
        }
        guard let entries = header.objectEntries else { throw SafetensorsError.headerNotObject(file: path) }

        let dataStart = 8 + headerSize
        let dataSize = file.size - dataStart
        var metadata: [(String, String)] = []
        var pending: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        for (name, entry) in entries {
            if name == "__metadata__" {
                guard let pairs = entry.objectEntries else {
                    throw SafetensorsError.badMetadata(file: path, reason: "is not an object")
                }
                for (k, v) in pairs {
                    guard let s = v.stringValue else {
                        throw SafetensorsError.badMetadata(file: path, reason: "value of '\(Echo.value(k))' is not a string")
                    }
                    metadata.append((k, s))
                }
                continue
            }
            guard entry.objectEntries != nil else {
                throw SafetensorsError.badEntry(file: path, tensor: name, reason: "entry is not an object")
            }
            guard let dtypeName = entry["dtype"]?.stringValue else {
                throw SafetensorsError.badEntry(file: path, tensor: name, reason: "missing or non-string 'dtype'")
            }
            guard let dtype = DType(safetensorsName: dtypeName) else {
                throw SafetensorsError.unknownDType(file: path, tensor: name, dtype: dtypeName)
            }
            guard let dims = entry["shape"]?.arrayValue else {
                throw SafetensorsError.badEntry(file: path, tensor: name, reason: "missing or non-array 'shape'")
            }
            var shape: [Int] = []
            for d in dims {
                guard let v = d.intValue, v >= 0 else {
                    throw SafetensorsError.badEntry(
                        file: path, tensor: name, reason: "shape has a dimension that is not a non-negative integer (\(Echo.value(JSONWriter.write(d))))")
                }
                shape.append(v)
            }
            guard let offs = entry["data_offsets"]?.arrayValue, offs.count == 2,
                let begin = offs[0].intValue, let end = offs[1].intValue
            else {
                throw SafetensorsError.badEntry(file: path, tensor: name, reason: "'data_offsets' must be two integers")
            }
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw SafetensorsError.offsetsOutOfRange(
                    file: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
            }
            let expected: Int
            do { expected = try dtype.byteCount(shape: shape) } catch {
                throw SafetensorsError.shape(file: path, tensor: name, error)
            }
            guard expected == end - begin else {
                throw SafetensorsError.sizeMismatch(
                    file: path, tensor: name, dtype: dtype, shape: shape, expected: expected, actual: end - begin)
            }
            pending.append((name, dtype, shape, begin, end))
        }

        // The data section must be covered exactly: tensors back to back, no overlap, no gap.
        pending.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        var previous: String?
        var tensors: [Tensor] = []
        tensors.reserveCapacity(pending.count)
        for p in pending {
            if p.begin < cursor {
                throw SafetensorsError.overlap(file: path, tensor: p.name, begin: p.begin, previous: previous!, previousEnd: cursor)
            }
            if p.begin > cursor {
                throw SafetensorsError.gap(file: path, tensor: p.name, begin: p.begin, previous: previous, previousEnd: cursor)
            }
            cursor = p.end
            previous = p.name
            let region = FileRegion(file: file, offset: dataStart + p.begin, byteCount: p.end - p.begin)
            tensors.append(try Tensor(name: p.name, dtype: p.dtype, shape: p.shape, storage: region))
        }
        guard cursor == dataSize else {
            throw SafetensorsError.trailingBytes(file: path, dataEnd: cursor, dataSize: dataSize)
        }
        return File(path: path, tensors: tensors, metadata: metadata)
    }

    /// Reads a sharded set from its index (`model.safetensors.index.json`): shards in the order
    /// the index first names them, tensors in each shard's data order. Every tensor the index maps
    /// must be in its shard.
    public static func readIndex(_ indexPath: String) throws -> (tensors: [Tensor], metadata: [(String, String)], shards: [String]) {
        let file = try ReadableFile(path: indexPath)
        let bytes = try file.readBytes(at: 0, count: file.size)
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            throw SafetensorsError.invalidJSON(file: indexPath, error)
        }
        guard let weightMap = json["weight_map"]?.objectEntries else {
            throw SafetensorsError.badIndex(file: indexPath, reason: "no 'weight_map' object")
        }
        let dir = Paths.directory(of: indexPath)
        var shardOrder: [String] = []
        var wanted: [String: [String]] = [:]
        for (tensor, shardValue) in weightMap {
            guard let shard = shardValue.stringValue else {
                throw SafetensorsError.badIndex(file: indexPath, reason: "weight_map entry for '\(Echo.value(tensor))' is not a string")
            }
            guard !shard.contains("/"), shard != "..", !shard.isEmpty else {
                throw SafetensorsError.badIndex(file: indexPath, reason: "shard name '\(Echo.value(shard))' must be a file name in the index's folder")
            }
            if wanted[shard] == nil {
                shardOrder.append(shard)
                guard Paths.exists(Paths.join(dir, shard)) else {
                    throw SafetensorsError.missingShard(index: indexPath, shard: shard, tensor: tensor)
                }
            }
            wanted[shard, default: []].append(tensor)
        }
        var tensors: [Tensor] = []
        var metadata: [(String, String)] = []
        var seen = Set<String>()
        for shard in shardOrder {
            let f = try readFile(Paths.join(dir, shard))
            let names = Set(f.tensors.map(\.name))
            for t in wanted[shard]! where !names.contains(t) {
                throw SafetensorsError.tensorNotInShard(index: indexPath, tensor: t, shard: shard)
            }
            for t in f.tensors {
                guard seen.insert(t.name).inserted else {
                    throw SafetensorsError.duplicateTensor(file: f.path, tensor: t.name)
                }
                tensors.append(t)
            }
            for (k, v) in f.metadata where !metadata.contains(where: { $0.0 == k }) { metadata.append((k, v)) }
        }
        return (tensors, metadata, shardOrder.map { Paths.join(dir, $0) })
    }
}
