import TensorGraph

/// Writes a tensor graph as GGUF v3: the graph's metadata exactly as given (order and types; the
/// `split.*` keys, which describe files rather than the model, are replaced by the writer's own),
/// then the tensor infos, padding, and each tensor's bytes streamed through one fixed buffer, every
/// tensor starting on the alignment `general.alignment` asks for (32 without it). Outputs are
/// written under a temporary name and renamed into place when every file is complete.
///
/// For a graph from another format, `GGUFMetadata.apply(to:)` first writes its typed fields
/// (architecture, hyperparameters, tokenizer) into the GGUF keys llama.cpp expects.
public enum GGUFWriter {
    /// The buffer each tensor is streamed through.
    public static let copyBufferSize = 8 << 20

    /// Writes `graph` to `path`. With `splitMaxSize` (tensor data bytes per file) and/or
    /// `splitMaxTensors`, tensors are grouped greedily in graph order the way gguf-py's
    /// `GGUFWriter` does (a tensor larger than the size limit gets a file of its own); when more
    /// than one file results they are named `STEM-00001-of-0000N.gguf` beside `path` (STEM is
    /// `path` without `.gguf`). Every file of a split set carries `split.no` (uint16),
    /// `split.count` (uint16) and `split.tensors.count` (int32); the first also carries all the
    /// metadata, later ones only `general.alignment` (when set) and the split keys, as llama.cpp's
    /// gguf-split does. Returns the files written.
    ///
    /// Every file is written under a temporary name; a split set is published from the last
    /// split down to split 1, the file readers open first, so a set whose split 1 exists is
    /// complete. Without `replace`, an existing file at any of the names is an error
    /// (`OutputError.exists`), checked atomically as each file is published.
    /// The header bytes (magic to the padding before the first tensor) and the alignment of the
    /// single file `write` makes of `graph`: the file is the header plus each tensor's bytes rounded
    /// up to the alignment. Tensor infos hold no byte counts, so the header does not depend on the
    /// tensors' types.
    public static func layout(_ graph: TensorGraph) throws -> (headerBytes: Int, alignment: Int) {
        let alignment = try checkAlignment(graph.metadata, file: "(output)")
        var metadata = Metadata()
        for (k, v) in graph.metadata.entries where !k.hasPrefix(GGUFKeys.splitPrefix) { metadata[k] = v }
        return (header(metadata: metadata, tensors: graph.tensors, alignment: alignment).count, alignment)
    }

    @discardableResult
    public static func write(
        _ graph: TensorGraph, to path: String, splitMaxSize: Int? = nil, splitMaxTensors: Int? = nil,
        replace: Bool = false, progress: @escaping (Int) -> Void = { _ in }
    ) throws -> [String] {
        if let s = splitMaxSize, s <= 0 {
            throw GGUFError.badSplitLimit(file: path, reason: "split maximum size must be positive, not \(s)")
        }
        if let n = splitMaxTensors, n <= 0 {
            throw GGUFError.badSplitLimit(file: path, reason: "split maximum tensor count must be positive, not \(n)")
        }
        let alignment = try checkAlignment(graph.metadata, file: path)
        try validate(graph.metadata, file: path)
        for t in graph.tensors { try validate(t, file: path) }

        var metadata = Metadata()
        for (k, v) in graph.metadata.entries where !k.hasPrefix(GGUFKeys.splitPrefix) { metadata[k] = v }

        let splits = plan(graph.tensors, splitMaxSize: splitMaxSize, splitMaxTensors: splitMaxTensors)
        if splits.count <= 1 {
            let out = try AtomicOutput(path: path, replace: replace)
            try writeFile(graph.tensors, metadata: metadata, alignment: alignment, to: out, progress: progress)
            try out.commit()
            return [path]
        }
        guard splits.count <= GGUF.maxSplitCount else {
            throw GGUFError.badSplitLimit(
                file: path, reason: "\(splits.count) split files would be needed, more than \(GGUF.maxSplitCount)")
        }
        let dir = Paths.directory(of: path)
        var stem = Paths.fileName(of: path)
        if stem.hasSuffix(".gguf") { stem.removeLast(".gguf".count) }
        let n = splits.count
        let total = graph.tensors.count
        guard total <= Int(Int32.max) else {
            throw GGUFError.badSplitLimit(file: path, reason: "\(total) tensors do not fit split.tensors.count (int32)")
        }
        var outputs: [AtomicOutput] = []
        for (i, tensors) in splits.enumerated() {
            var m = Metadata()
            if i == 0 {
                m = metadata
            } else if let a = metadata[GGUFKeys.alignment] {
                m[GGUFKeys.alignment] = a
            }
            m[GGUFKeys.splitNo] = .uint16(UInt16(i))
            m[GGUFKeys.splitCount] = .uint16(UInt16(n))
            m[GGUFKeys.splitTensorsCount] = .int32(Int32(total))
            let name = GGUF.splitFileName(stem: stem, index: i + 1, count: n)
            let out = try AtomicOutput(path: path.contains("/") ? Paths.join(dir, name) : name, replace: replace)
            try writeFile(tensors, metadata: m, alignment: alignment, to: out, progress: progress)
            try out.finish()
            outputs.append(out)
        }
        try Publish.publishSet(outputs.reversed(), replace: replace)
        return outputs.map(\.path)
    }

    /// Groups tensors into files, in graph order: a new file starts when the current one already
    /// holds `splitMaxTensors` tensors, or when adding the next tensor's bytes would take it past
    /// `splitMaxSize` (gguf-py's rule; a file always gets at least one tensor).
    public static func plan(_ tensors: [Tensor], splitMaxSize: Int?, splitMaxTensors: Int?) -> [[Tensor]] {
        var splits: [[Tensor]] = []
        var current: [Tensor] = []
        var size = 0
        for t in tensors {
            if !current.isEmpty {
                let tooMany = splitMaxTensors.map { current.count >= $0 } ?? false
                let tooBig = splitMaxSize.map { size + t.byteCount > $0 } ?? false
                if tooMany || tooBig {
                    splits.append(current)
                    current = []
                    size = 0
                }
            }
            current.append(t)
            size += t.byteCount
        }
        if !current.isEmpty || splits.isEmpty { splits.append(current) }
        return splits
    }

    /// The header bytes of a file holding `tensors` with `metadata`: magic, version, counts,
    /// key/values, tensor infos, and zero padding up to `alignment`. Tensor offsets are laid out
    /// back to back, each rounded up to `alignment`. Expects what `write` has validated.
    static func header(metadata: Metadata, tensors: [Tensor], alignment: Int) -> [UInt8] {
        var b = ByteWriter()
        b.bytes(GGUF.magic)
        b.u32(GGUF.version)
        b.u64(UInt64(tensors.count))
        b.u64(UInt64(metadata.count))
        for (k, v) in metadata.entries {
            b.string(k)
            b.u32(v.type.rawValue)
            b.value(v)
        }
        var offset = 0
        for t in tensors {
            b.string(t.name)
            b.u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { b.u64(UInt64(d)) }
            b.u32(t.dtype.info.ggmlType!)
            b.u64(UInt64(offset))
            offset += GGUFReader.alignUp(t.byteCount, alignment)
        }
        b.zeros(GGUFReader.alignUp(b.out.count, alignment) - b.out.count)
        return b.out
    }

    static func writeFile(
        _ tensors: [Tensor], metadata: Metadata, alignment: Int, to out: AtomicOutput, progress: (Int) -> Void
    ) throws {
        try out.write(header(metadata: metadata, tensors: tensors, alignment: alignment))
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
            try out.writeZeros(GGUFReader.alignUp(t.byteCount, alignment) - t.byteCount)
        }
    }

    // MARK: - Validation (so that whatever we write, our reader and llama.cpp read back)

    static func checkAlignment(_ metadata: Metadata, file: String) throws(GGUFError) -> Int {
        try GGUFReader.alignmentOf(metadata, file: file)
    }

    static func validate(_ tensor: Tensor, file: String) throws(GGUFError) {
        guard tensor.dtype.info.ggmlType != nil else {
            throw .cannotStore(file: file, tensor: tensor.name, dtype: tensor.dtype)
        }
        guard tensor.shape.count <= GGUF.maxDimensions else {
            throw .cannotWriteShape(
                file: file, tensor: tensor.name, shape: tensor.shape,
                reason: "\(tensor.shape.count) dimensions, more than the \(GGUF.maxDimensions) ggml allows")
        }
        guard !tensor.shape.contains(0) else {
            throw .cannotWriteShape(
                file: file, tensor: tensor.name, shape: tensor.shape, reason: "GGUF cannot hold a zero dimension")
        }
    }

    static func validate(_ metadata: Metadata, file: String) throws(GGUFError) {
        for (k, v) in metadata.entries {
            guard !k.isEmpty else { throw .badMetadata(file: file, key: k, reason: "empty key") }
            try validate(v, key: k, depth: 0, file: file)
        }
    }

    static func validate(_ v: MetadataValue, key: String, depth: Int, file: String) throws(GGUFError) {
        guard case let .array(elementType, values) = v else { return }
        guard depth < GGUF.maxArrayDepth else {
            throw .badMetadata(file: file, key: key, reason: "arrays nested deeper than \(GGUF.maxArrayDepth) levels")
        }
        for (i, e) in values.enumerated() {
            guard e.type == elementType else {
                throw .badMetadata(
                    file: file, key: key,
                    reason: "array of \(elementType.name) holds a \(e.type.name) at index \(i)")
            }
            try validate(e, key: key, depth: depth + 1, file: file)
        }
    }
}

/// Little-endian serialization of GGUF header items.
struct ByteWriter {
    var out: [UInt8] = []

    mutating func bytes<S: Sequence>(_ s: S) where S.Element == UInt8 { out.append(contentsOf: s) }
    mutating func zeros(_ n: Int) { out.append(contentsOf: repeatElement(0, count: n)) }
    mutating func int<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            u64(UInt64(u.count))
            out.append(contentsOf: u)
        }
    }

    /// A value without its type tag (arrays: element type, count, elements).
    mutating func value(_ v: MetadataValue) {
        switch v {
        case let .uint8(x): int(x)
        case let .int8(x): int(x)
        case let .uint16(x): int(x)
        case let .int16(x): int(x)
        case let .uint32(x): int(x)
        case let .int32(x): int(x)
        case let .uint64(x): int(x)
        case let .int64(x): int(x)
        case let .float32(x): int(x.bitPattern)
        case let .float64(x): int(x.bitPattern)
        case let .bool(x): out.append(x ? 1 : 0)
        case let .string(s): string(s)
        case let .array(elementType, values):
            u32(elementType.rawValue)
            u64(UInt64(values.count))
            for e in values { value(e) }
        }
    }
}
