import TensorGraph

/// One tensor's entry in a GGUF file's tensor info table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// The raw `ggml_type` id and the dtype it names.
    public let ggmlType: UInt32
    public let dtype: DType
    /// Dimensions as stored (`ne`, innermost first).
    public let ne: [UInt64]
    /// Dimensions in graph order (outermost first): `ne.reversed()`.
    public let shape: [Int]
    /// The data's offset from the start of the data section.
    public let offset: UInt64
    public let byteCount: Int
}

/// One parsed GGUF file, exactly as stored: every metadata key (split keys included), tensor infos
/// in file order, the data section's start, and tensors whose storage points into the file.
public struct GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let alignment: Int
    public let metadata: Metadata
    public let tensorInfos: [GGUFTensorInfo]
    /// Absolute offset of the data section (the end of the header rounded up to `alignment`).
    public let dataOffset: Int
    /// One tensor per info, in file order; storage is a lazy `FileRegion`.
    public let tensors: [Tensor]
}

/// Reads GGUF files (versions 2 and 3): the header is parsed from a bounded cursor over the file
/// and validated in full before any tensor is handed out; tensor bytes stay on disk (`FileRegion`)
/// until a consumer reads them.
public enum GGUFReader {
    /// Reads `path` as a graph. A file of a split set (`STEM-0000i-of-0000N.gguf` with `split.*`
    /// keys) opens the whole set, whichever file is named: tensors are concatenated in file order,
    /// metadata comes from the first file, and the `split.*` keys are dropped (from a lone file
    /// too). With `mergeSplits: false` only `path` itself is read, its metadata kept as it is.
    public static func read(_ path: String, mergeSplits: Bool = true) throws -> TensorGraph {
        let opened = try readFile(path)
        var files = [opened]
        if mergeSplits, let count = try splitCount(opened), count > 1 {
            files = try readSplitSet(from: opened, count: count)
        }
        var metadata = opened.metadata
        if mergeSplits {
            metadata = Metadata()
            for (k, v) in files[0].metadata.entries where !k.hasPrefix(GGUFKeys.splitPrefix) { metadata[k] = v }
        }
        var tensors: [Tensor] = []
        var seen = Set<String>()
        for f in files {
            for t in f.tensors {
                guard seen.insert(t.name).inserted else {
                    throw GGUFError.duplicateTensor(file: f.path, tensor: t.name)
                }
                tensors.append(t)
            }
        }
        let view = GGUFMetadata.view(metadata)
        return try TensorGraph(
            architecture: view.architecture, hyperparameters: view.hyperparameters, metadata: metadata,
            tokenizer: view.tokenizer, tensors: tensors)
    }

    /// The file paths of the split set `path` belongs to (just `[path]` for a lone file).
    public static func splitPaths(_ path: String) throws -> [String] {
        let opened = try readFile(path)
        guard let count = try splitCount(opened), count > 1 else { return [path] }
        return try readSplitSet(from: opened, count: count).map(\.path)
    }

    /// Parses one file (no split handling).
    public static func readFile(_ path: String) throws -> GGUFFile {
        let file = try ReadableFile(path: path)
        var c = GGUFCursor(file: file)

        let magic = try c.bytes(4, "magic")
        guard Array(magic) == GGUF.magic else { throw GGUFError.badMagic(file: path, found: Array(magic)) }
        let version = try c.read(UInt32.self, "version")
        guard GGUF.readableVersions.contains(version) else {
            throw GGUFError.unsupportedVersion(file: path, version: version)
        }
        let tensorCount = try c.read(UInt64.self, "tensor count")
        let keyCount = try c.read(UInt64.self, "metadata key count")
        // Smallest possible entries: a key is a u64 length, at least one byte, a u32 type and a
        // one-byte value; a tensor info a u64 name length, u32 n_dims, u32 type and u64 offset.
        let minKey = 14, minTensor = 24
        if keyCount > UInt64(c.remaining / minKey) {
            throw GGUFError.countTooLarge(
                file: path, what: "metadata key", count: keyCount, minimumBytes: minKey, available: c.remaining)
        }
        if tensorCount > UInt64(c.remaining / minTensor) {
            throw GGUFError.countTooLarge(
                file: path, what: "tensor info", count: tensorCount, minimumBytes: minTensor, available: c.remaining)
        }

        var metadata = Metadata()
        for i in 0..<Int(keyCount) {
            let at = c.offset
            let key = try c.string("metadata key \(i) name")
            guard !key.isEmpty else { throw GGUFError.emptyKey(file: path, index: i, offset: at) }
            guard metadata[key] == nil else { throw GGUFError.duplicateKey(file: path, key: key, offset: at) }
            let typeAt = c.offset
            let type = try c.read(UInt32.self, "metadata key '\(Echo.value(key))' type")
            metadata[key] = try readValue(&c, type: type, typeOffset: typeAt, key: key, depth: 0)
        }

        let alignment = try alignmentOf(metadata, file: path)

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(Int(tensorCount))
        var names = Set<String>()
        for i in 0..<Int(tensorCount) {
            let name = try c.string("tensor info \(i) name")
            let nDims = try c.read(UInt32.self, "tensor '\(Echo.value(name))' n_dims")
            guard nDims <= UInt32(GGUF.maxDimensions) else {
                throw GGUFError.tooManyDimensions(file: path, tensor: name, nDims: nDims, limit: GGUF.maxDimensions)
            }
            var ne: [UInt64] = []
            for d in 0..<Int(nDims) { ne.append(try c.read(UInt64.self, "tensor '\(Echo.value(name))' ne[\(d)]")) }
            let typeID = try c.read(UInt32.self, "tensor '\(Echo.value(name))' type")
            let offset = try c.read(UInt64.self, "tensor '\(Echo.value(name))' offset")

            guard names.insert(name).inserted else { throw GGUFError.duplicateTensor(file: path, tensor: name) }
            if ne.contains(0) { throw GGUFError.zeroDimension(file: path, tensor: name, ne: ne) }
            var product: UInt64 = 1
            for d in ne {
                let (p, o) = product.multipliedReportingOverflow(by: d)
                guard !o, p <= UInt64(Int64.max) else { throw GGUFError.shapeOverflow(file: path, tensor: name, ne: ne) }
                product = p
            }
            guard let dtype = DType(ggmlType: typeID) else {
                throw GGUFError.unknownTensorType(file: path, tensor: name, type: typeID)
            }
            let shape = ne.reversed().map { Int($0) }
            let byteCount: Int
            do { byteCount = try dtype.byteCount(shape: shape) } catch {
                throw GGUFError.shape(file: path, tensor: name, error)
            }
            infos.append(GGUFTensorInfo(
                name: name, ggmlType: typeID, dtype: dtype, ne: ne, shape: shape, offset: offset, byteCount: byteCount))
        }

        let dataOffset = alignUp(c.offset, alignment)
        // Check every tensor's bytes lie inside the file, aligned, and that no two overlap.
        for info in infos {
            guard info.offset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedOffset(file: path, tensor: info.name, offset: info.offset, alignment: alignment)
            }
            let (start, o) = UInt64(dataOffset).addingReportingOverflow(info.offset)
            guard !o, start <= UInt64(file.size), UInt64(info.byteCount) <= UInt64(file.size) - start else {
                throw GGUFError.dataPastEnd(
                    file: path, tensor: info.name, start: o ? UInt64.max : start, byteCount: info.byteCount,
                    fileSize: file.size)
            }
        }
        let order = infos.indices.sorted { (infos[$0].offset, $0) < (infos[$1].offset, $1) }
        for (a, b) in zip(order, order.dropFirst()) {
            let end = infos[a].offset + UInt64(infos[a].byteCount)
            if infos[b].offset < end {
                throw GGUFError.overlap(
                    file: path, tensor: infos[b].name, start: UInt64(dataOffset) + infos[b].offset,
                    previous: infos[a].name, previousEnd: UInt64(dataOffset) + end)
            }
        }

        let tensors = try infos.map { info in
            try Tensor(
                name: info.name, dtype: info.dtype, shape: info.shape,
                storage: FileRegion(file: file, offset: dataOffset + Int(info.offset), byteCount: info.byteCount))
        }
        return GGUFFile(
            path: path, version: version, alignment: alignment, metadata: metadata, tensorInfos: infos,
            dataOffset: dataOffset, tensors: tensors)
    }

    // MARK: - Values

    /// The fewest bytes one value of `type` can take (strings: the length; arrays: type and count).
    static func minimumSize(_ type: MetadataType) -> Int {
        switch type {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }

    /// Reads one value of raw type `type`; `depth` is the number of arrays it sits in.
    static func readValue(
        _ c: inout GGUFCursor, type raw: UInt32, typeOffset: Int, key: String, depth: Int
    ) throws -> MetadataValue {
        guard let type = MetadataType(rawValue: raw) else {
            throw GGUFError.unknownValueType(file: c.path, key: key, offset: typeOffset, type: raw)
        }
        let what = { "metadata key '\(Echo.value(key))' value" }
        switch type {
        case .uint8: return .uint8(try c.read(UInt8.self, what()))
        case .int8: return .int8(try c.read(Int8.self, what()))
        case .uint16: return .uint16(try c.read(UInt16.self, what()))
        case .int16: return .int16(try c.read(Int16.self, what()))
        case .uint32: return .uint32(try c.read(UInt32.self, what()))
        case .int32: return .int32(try c.read(Int32.self, what()))
        case .uint64: return .uint64(try c.read(UInt64.self, what()))
        case .int64: return .int64(try c.read(Int64.self, what()))
        case .float32: return .float32(Float(bitPattern: try c.read(UInt32.self, what())))
        case .float64: return .float64(Double(bitPattern: try c.read(UInt64.self, what())))
        case .bool:
            let at = c.offset
            let b = try c.read(UInt8.self, what())
            guard b <= 1 else { throw GGUFError.invalidBool(file: c.path, key: key, offset: at, byte: b) }
            return .bool(b == 1)
        case .string:
            return .string(try c.string(what()))
        case .array:
            guard depth < GGUF.maxArrayDepth else {
                throw GGUFError.nestingTooDeep(file: c.path, key: key, offset: typeOffset, limit: GGUF.maxArrayDepth)
            }
            let elementAt = c.offset
            let rawElement = try c.read(UInt32.self, "metadata key '\(Echo.value(key))' array element type")
            guard let element = MetadataType(rawValue: rawElement) else {
                throw GGUFError.unknownValueType(file: c.path, key: key, offset: elementAt, type: rawElement)
            }
            let countAt = c.offset
            let count = try c.read(UInt64.self, "metadata key '\(Echo.value(key))' array length")
            guard count <= UInt64(c.remaining / minimumSize(element)) else {
                throw GGUFError.arrayTooLong(
                    file: c.path, key: key, offset: countAt, count: count, elementType: element.name,
                    remaining: c.remaining)
            }
            var values: [MetadataValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                // A nested array element is a full array value: its element type, count, items.
                values.append(try readValue(&c, type: rawElement, typeOffset: elementAt, key: key, depth: depth + 1))
            }
            return .array(elementType: element, values: values)
        }
    }

    static func alignmentOf(_ metadata: Metadata, file: String) throws(GGUFError) -> Int {
        guard let v = metadata[GGUFKeys.alignment] else { return GGUF.defaultAlignment }
        guard case let .uint32(a) = v, a != 0, a & (a - 1) == 0 else {
            throw .badAlignment(file: file, value: "\(v.type.name) \(Echo.value(v.description))")
        }
        return Int(a)
    }

    static func alignUp(_ n: Int, _ alignment: Int) -> Int {
        (n + alignment - 1) / alignment * alignment
    }

    // MARK: - Split sets

    /// `split.count` of a file when it has split keys; validates their values.
    static func splitCount(_ f: GGUFFile) throws -> Int? {
        guard let v = f.metadata[GGUFKeys.splitCount] else { return nil }
        guard let n = v.intValue, n >= 1, n <= GGUF.maxSplitCount else {
            throw GGUFError.badSplitKey(file: f.path, key: GGUFKeys.splitCount, value: "\(v.type.name) \(Echo.value(v.description))")
        }
        return n
    }

    /// Every file of the set `known` belongs to, in order, each checked for its `split.no`,
    /// `split.count` and, over the set, `split.tensors.count`.
    static func readSplitSet(from known: GGUFFile, count: Int) throws -> [GGUFFile] {
        let dir = Paths.directory(of: known.path)
        guard let parsed = GGUF.parseSplitFileName(Paths.fileName(of: known.path)), parsed.count == count else {
            throw GGUFError.splitNameUnrecognized(file: known.path, count: count)
        }
        var files: [GGUFFile] = []
        for i in 1...count {
            let name = GGUF.splitFileName(stem: parsed.stem, index: i, count: count)
            let path = known.path.contains("/") ? Paths.join(dir, name) : name
            let f: GGUFFile
            if i == parsed.index {
                f = known
            } else {
                guard Paths.exists(path) else { throw GGUFError.missingSplit(file: known.path, expected: path) }
                f = try readFile(path)
            }
            let c = try splitCount(f) ?? 0
            guard c == count else { throw GGUFError.splitMismatch(file: f.path, key: GGUFKeys.splitCount, expected: count, found: c) }
            guard let noValue = f.metadata[GGUFKeys.splitNo], let no = noValue.intValue else {
                let shown = f.metadata[GGUFKeys.splitNo].map { "\($0.type.name) \(Echo.value($0.description))" } ?? "(missing)"
                throw GGUFError.badSplitKey(file: f.path, key: GGUFKeys.splitNo, value: shown)
            }
            guard no == i - 1 else { throw GGUFError.splitMismatch(file: f.path, key: GGUFKeys.splitNo, expected: i - 1, found: no) }
            files.append(f)
        }
        let found = files.reduce(0) { $0 + $1.tensors.count }
        for f in files {
            guard let v = f.metadata[GGUFKeys.splitTensorsCount] else { continue }
            guard let declared = v.intValue else {
                throw GGUFError.badSplitKey(file: f.path, key: GGUFKeys.splitTensorsCount, value: "\(v.type.name) \(Echo.value(v.description))")
            }
            guard declared == found else { throw GGUFError.splitTensorCount(file: f.path, declared: declared, found: found) }
        }
        return files
    }
}
