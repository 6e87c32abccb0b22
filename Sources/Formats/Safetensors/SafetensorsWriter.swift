import TensorGraph

/// Writes a tensor graph as safetensors: one file, or shards plus an index. Streaming: each tensor
/// goes through one fixed buffer, so memory does not grow with the model.
public enum SafetensorsWriter {
    /// The buffer each tensor is streamed through.
    public static let copyBufferSize = 8 << 20

    /// Writes `graph` to `path`. With `maxShardSize`, tensors are grouped greedily into shards of
    /// at most that many data bytes (a larger tensor gets a shard of its own); when more than one
    /// shard results they are named `STEM-00001-of-0000N.safetensors` beside `path` with
    /// `STEM.safetensors.index.json`. Returns the files written.
    ///
    /// Every file is written under a temporary name; shards are published first and the index,
    /// the file readers open first, last, so an index always names complete shards. Without
    /// `replace`, an existing file at any of the names is an error (`OutputError.exists`).
    @discardableResult
    public static func write(
        _ graph: TensorGraph, to path: String, maxShardSize: Int? = nil, replace: Bool = false,
        progress: @escaping (Int) -> Void = { _ in }
    ) throws -> [String] {
        for t in graph.tensors where t.dtype.info.safetensorsName == nil {
            throw SafetensorsError.cannotStore(file: path, tensor: t.name, dtype: t.dtype)
        }
        let metadata = safetensorsMetadata(graph.metadata)
        let shards = plan(graph.tensors, maxShardSize: maxShardSize)
        if shards.count <= 1 {
            let out = try AtomicOutput(path: path, replace: replace)
            try writeShard(graph.tensors, metadata: metadata, to: out, progress: progress)
            try out.commit()
            return [path]
        }
        let dir = Paths.directory(of: path)
        var stem = Paths.fileName(of: path)
        if stem.hasSuffix(".safetensors") { stem.removeLast(".safetensors".count) }
        let n = shards.count
        var outputs: [AtomicOutput] = []
        var weightMap: [(String, JSONValue)] = []
        for (i, shard) in shards.enumerated() {
            let name = "\(stem)-\(pad5(i + 1))-of-\(pad5(n)).safetensors"
            let out = try AtomicOutput(path: Paths.join(dir, name), replace: replace)
            try writeShard(shard, metadata: metadata, to: out, progress: progress)
            try out.finish()
            outputs.append(out)
            for t in shard { weightMap.append((t.name, .string(name))) }
        }
        let total = graph.tensors.reduce(0) { $0 + $1.byteCount }
        let index: JSONValue = .object([
            ("metadata", .object([("total_size", .int(total))])),
            ("weight_map", .object(weightMap)),
        ])
        let indexOut = try AtomicOutput(path: Paths.join(dir, "\(stem).safetensors.index.json"), replace: replace)
        try indexOut.write(Array((JSONWriter.write(index, indent: 2) + "\n").utf8))
        try indexOut.finish()
        try Publish.publishSet(outputs + [indexOut], replace: replace)
        return outputs.map(\.path) + [indexOut.path]
    }

    /// Groups tensors into shards of at most `maxShardSize` data bytes, in graph order.
    public static func plan(_ tensors: [Tensor], maxShardSize: Int?) -> [[Tensor]] {
        guard let limit = maxShardSize else { return [tensors] }
        var shards: [[Tensor]] = []
        var current: [Tensor] = []
        var size = 0
        for t in tensors {
            if !current.isEmpty && size + t.byteCount > limit {
                shards.append(current)
                current = []
                size = 0
            }
            current.append(t)
            size += t.byteCount
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    /// The header bytes (length prefix included) for `tensors` laid out back to back.
    public static func header(_ tensors: [Tensor], metadata: [(String, String)]) -> [UInt8] {
        var entries: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            entries.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) })))
        }
        var offset = 0
        for t in tensors {
            entries.append((t.name, .object([
                ("dtype", .string(t.dtype.info.safetensorsName!)),
                ("shape", .array(t.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + t.byteCount)])),
            ])))
            offset += t.byteCount
        }
        var json = Array(JSONWriter.write(.object(entries)).utf8)
        // Pad with spaces so the data section starts on an 8-byte boundary.
        while json.count % 8 != 0 { json.append(0x20) }
        var out = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        out.append(contentsOf: json)
        return out
    }

    static func writeShard(
        _ tensors: [Tensor], metadata: [(String, String)], to out: AtomicOutput, progress: (Int) -> Void
    ) throws {
        try out.write(header(tensors, metadata: metadata))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: copyBufferSize, alignment: 64)
        defer { buffer.deallocate() }
        for t in tensors {
            do {
                try out.copy(t.storage, buffer: buffer, progress: progress)
            } catch let e as OutputError {
                throw e
            } catch {
                throw GraphError.badTensor(name: t.name, reason: "\(error)")
            }
        }
    }

    /// The string metadata safetensors can carry: keys under `safetensors.` from a safetensors
    /// source, and `format` passed through.
    static func safetensorsMetadata(_ metadata: Metadata) -> [(String, String)] {
        metadata.entries.compactMap { key, value in
            guard key.hasPrefix(SafetensorsGraph.metadataPrefix), let s = value.stringValue else { return nil }
            return (String(key.dropFirst(SafetensorsGraph.metadataPrefix.count)), s)
        }
    }

    static func pad5(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }
}
