/// Where a tensor's bytes come from. Storage is lazy: nothing is read until a consumer asks for a
/// byte range, so a writer can stream a model of any size through a fixed buffer.
public protocol TensorStorage: Sendable {
    /// The number of bytes the tensor occupies.
    var byteCount: Int { get }
    /// Copies bytes `[offset, offset + buffer.count)` of the tensor into `buffer`.
    func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws
    /// The bytes in place, when they sit in a mapped file (zero-copy); `nil` otherwise.
    func mappedBytes() throws -> UnsafeRawBufferPointer?
}

extension TensorStorage {
    public func mappedBytes() throws -> UnsafeRawBufferPointer? { nil }

    /// Reads the whole tensor into memory (for small tensors and for transforms that need it all).
    public func readAll() throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        try out.withUnsafeMutableBytes { try read(offset: 0, into: $0) }
        return out
    }

    func checkRange(_ offset: Int, _ count: Int, _ what: @autoclosure () -> String) throws(StorageError) {
        guard offset >= 0, count >= 0, offset <= byteCount, count <= byteCount - offset else {
            throw .outOfRange(what: what(), offset: offset, count: count, size: byteCount)
        }
    }
}

/// A byte region of a file on disk.
public struct FileRegion: TensorStorage {
    public let file: ReadableFile
    public let offset: Int
    public let byteCount: Int

    public init(file: ReadableFile, offset: Int, byteCount: Int) {
        self.file = file
        self.offset = offset
        self.byteCount = byteCount
    }

    public func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkRange(offset, buffer.count, file.path)
        try file.read(at: self.offset + offset, into: buffer)
    }

    /// The region in place when the file permits mapping (`ReadableFile.permitMapping`), after
    /// checking that the file still holds it; `nil` otherwise (consumers then read with `pread`).
    public func mappedBytes() throws -> UnsafeRawBufferPointer? {
        guard file.isMappingPermitted else { return nil }
        try file.checkNotShrunk(below: offset + byteCount)
        let all = try file.mapped()
        return UnsafeRawBufferPointer(rebasing: all[offset..<(offset + byteCount)])
    }
}

/// Bytes held in memory (small tensors, test data, results of whole-tensor transforms).
public struct MemoryStorage: TensorStorage {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var byteCount: Int { bytes.count }

    public func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkRange(offset, buffer.count, "in-memory tensor")
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + buffer.count)]))
        }
    }
}

/// Bytes made on demand by a producer, range by range (casts, dequantization, permutations).
public struct ProducedStorage: TensorStorage {
    public typealias Producer = @Sendable (_ offset: Int, _ buffer: UnsafeMutableRawBufferPointer) throws -> Void
    public let byteCount: Int
    private let producer: Producer

    public init(byteCount: Int, producer: @escaping Producer) {
        self.byteCount = byteCount
        self.producer = producer
    }

    public func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkRange(offset, buffer.count, "produced tensor")
        try producer(offset, buffer)
    }
}
