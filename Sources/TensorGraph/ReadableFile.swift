#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPlatform

/// An open, read-only file that tensors point into. Reads use `pread`: a file that shrinks while
/// it is read (truncated by another process) gives `StorageError.shrank` naming the file and
/// offset, never a signal. Mapping (`mapped()`, zero-copy) is refused until `permitMapping()`:
/// only the evaluation commands (perplexity, drift, calibrate) opt in; conversion and
/// quantization never map. A mapping is registered with a SIGBUS guard (`CPlatform`): a read
/// past an end that shrank under it reads zeros instead of killing the process, and the next
/// `checkNotShrunk` throws.
public final class ReadableFile: @unchecked Sendable {
    public let path: String
    /// The size when the file was opened.
    public let size: Int
    private let fd: Int32
    private var mapping: UnsafeRawBufferPointer?
    private var mappingPermitted = false
    private var mappingSlot: Int32 = -1
    private let lock = Mutex()

    public init(path: String) throws(StorageError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .open(file: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .open(file: path, reason: reason)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .open(file: path, reason: "not a regular file")
        }
        self.fd = fd
        self.size = Int(st.st_size)
    }

    deinit {
        smelt_mapping_remove(mappingSlot)
        if let m = mapping, let base = m.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), m.count) }
        close(fd)
    }

    /// Fills `buffer` with the bytes at `offset`; a file shorter than asked is an error.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(file: path, offset: offset + done, reason: String(cString: strerror(errno)))
            }
            if n == 0 {
                if let now = currentSize(), now < size {
                    throw .shrank(file: path, offset: offset + done, wanted: buffer.count - done, size: now, openedSize: size)
                }
                throw .shortRead(file: path, offset: offset, wanted: buffer.count, got: done)
            }
            done += n
        }
    }

    /// Reads `count` bytes at `offset` into a new array.
    public func readBytes(at offset: Int, count: Int) throws(StorageError) -> [UInt8] {
        guard count > 0 else { return [] }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        defer { buf.deallocate() }
        try read(at: offset, into: buf)
        return Array(buf)
    }

    /// The file's size now (fstat), nil if fstat fails.
    public func currentSize() -> Int? {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int(st.st_size) : nil
    }

    /// Allows `mapped()` for this file (see the type's documentation for the risk).
    public func permitMapping() { lock.withLock { mappingPermitted = true } }

    public var isMappingPermitted: Bool { lock.withLock { mappingPermitted } }

    /// Throws `.shrank` when the file is now shorter than `end` bytes, or a read of its mapping
    /// faulted past a shrunk end (and read zeros). Checked before each mapped access.
    public func checkNotShrunk(below end: Int) throws(StorageError) {
        let faulted = lock.withLock { smelt_mapping_faulted(mappingSlot) != 0 }
        if let now = currentSize(), now < end || faulted {
            throw .shrank(file: path, offset: now, wanted: max(0, end - now), size: now, openedSize: size)
        }
    }

    /// The whole file mapped read-only (mapped on first use, kept until the file is released).
    /// Only after `permitMapping()`.
    public func mapped() throws(StorageError) -> UnsafeRawBufferPointer {
        try lock.withLock { () throws(StorageError) -> UnsafeRawBufferPointer in
            guard mappingPermitted else {
                throw .io(file: path, offset: 0, reason: "mapping not permitted for this file")
            }
            if let m = mapping { return m }
            if size == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else {
                throw .io(file: path, offset: 0, reason: "mmap: " + String(cString: strerror(errno)))
            }
            let m = UnsafeRawBufferPointer(start: p, count: size)
            mapping = m
            mappingSlot = smelt_mapping_add(p, UInt(size))
            return m
        }
    }
}

/// A small pthread mutex (Foundation-free, usable from Swift 6 strict concurrency).
final class Mutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

/// Failures reading tensor bytes.
public enum StorageError: Error, CustomStringConvertible {
    case open(file: String, reason: String)
    case io(file: String, offset: Int, reason: String)
    case shortRead(file: String, offset: Int, wanted: Int, got: Int)
    case outOfRange(what: String, offset: Int, count: Int, size: Int)
    case producer(String)
    /// The file became shorter while open: `wanted` bytes at `offset` lie past its new end.
    case shrank(file: String, offset: Int, wanted: Int, size: Int, openedSize: Int)

    public var description: String {
        switch self {
        case let .open(file, reason): return "\(Echo.path(file)): cannot open: \(Echo.text(reason))"
        case let .io(file, offset, reason): return "\(Echo.path(file)): read error at byte \(offset): \(Echo.text(reason))"
        case let .shortRead(file, offset, wanted, got):
            // `got` is what this read obtained before the end of the file, not the file's size.
            return "\(Echo.path(file)): truncated: wanted \(wanted) bytes at offset \(offset), but the file ends at byte \(offset + got) (got \(got))"
        case let .outOfRange(what, offset, count, size):
            return "\(Echo.text(what)): read of \(count) bytes at \(offset) is outside its \(size) bytes"
        case let .producer(message): return message
        case let .shrank(file, offset, wanted, size, openedSize):
            return "\(Echo.path(file)): the file changed while being read: it is now \(size) bytes (it was \(openedSize) when opened), "
                + "so \(wanted) bytes at offset \(offset) are gone"
        }
    }
}
