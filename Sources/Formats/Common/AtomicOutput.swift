#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPlatform
import TensorGraph

/// An output file written under a temporary name beside its target and published under its
/// real name only by `commit()` (see `Publish`). Dropped without a commit, the temporary file is
/// removed; a signal removes it too, and one left by a killed process is removed by the next
/// output made in that folder. The real name never holds a partial file.
public final class AtomicOutput {
    public let path: String
    public let temporaryPath: String
    /// Whether publishing may replace an existing file or folder at `path` (`--force`).
    public let replace: Bool
    private var fd: Int32
    private var finished = false
    private var published = false
    private var registration: CleanupRegistration
    public private(set) var bytesWritten = 0

    public init(path: String, replace: Bool = false) throws(OutputError) {
        self.path = path
        self.replace = replace
        let dir = Paths.directory(of: path)
        Publish.sweep(dir)
        temporaryPath = Publish.temporaryPath(for: path)
        registration = CleanupRegistration(path: temporaryPath, isDirectory: false)
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            registration.release()
            throw .create(file: path, reason: reason)
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !published { unlink(temporaryPath) }
        registration.release()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .write(file: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
        bytesWritten += bytes.count
        if bytesWritten - writebackStart >= Self.writebackStep {
            smelt_start_writeback(fd, Int64(writebackStart), Int64(bytesWritten - writebackStart))
            // The window before it: wait for it on disk and drop its pages (write-behind), so
            // dirty pages never pile up to where the kernel throttles every write.
            if writebackStart > previousWindowStart {
                smelt_finish_writeback(fd, Int64(previousWindowStart), Int64(writebackStart - previousWindowStart))
            }
            previousWindowStart = writebackStart
            writebackStart = bytesWritten
        }
    }

    /// Writeback of what is written is started every this many bytes, so that the fsync before
    /// publishing overlaps with the work instead of following it; the window before is then
    /// waited for and dropped from the page cache.
    static let writebackStep = 16 << 20
    private var writebackStart = 0
    private var previousWindowStart = 0

    public func write(_ bytes: [UInt8]) throws(OutputError) {
        let r = bytes.withUnsafeBytes { b in Result { () throws(OutputError) in try write(b) } }
        try r.get()
    }

    /// Writes `count` zero bytes (padding).
    public func writeZeros(_ count: Int) throws(OutputError) {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// Flushes the file to disk and closes it; it stays under its temporary name.
    public func finish() throws(OutputError) {
        guard !finished else { return }
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw .write(file: path, reason: "fsync: " + String(cString: strerror(errno)))
        }
        let r = close(fd)
        fd = -1
        guard r == 0 else { throw .write(file: path, reason: String(cString: strerror(errno))) }
        finished = true
    }

    /// Moves the finished file to its real name (without replacing unless `replace`).
    public func publish() throws(OutputError) {
        try finish()
        try Publish.rename(temporaryPath, to: path, replace: replace)
        published = true
        registration.release()
    }

    /// Finishes the file and publishes it.
    public func commit() throws(OutputError) {
        try publish()
    }

    /// Copies a tensor's bytes into the file through `buffer`, chunk by chunk.
    public func copy(_ storage: any TensorStorage, buffer: UnsafeMutableRawBufferPointer, progress: (Int) -> Void = { _ in })
        throws
    {
        var offset = 0
        while offset < storage.byteCount {
            let n = min(buffer.count, storage.byteCount - offset)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            try storage.read(offset: offset, into: chunk)
            try write(UnsafeRawBufferPointer(chunk))
            offset += n
            progress(n)
        }
    }
}

/// An output folder built under a temporary name beside its target (`.NAME.partial-PID-N/`)
/// and published under its real name in one rename by `commit()`: a folder at the real name is
/// always complete. Writers put their files in `temporaryPath`. Dropped without a commit, the
/// temporary folder and everything in it is removed (signals and stale sweeps as for files).
public final class AtomicFolder {
    public let path: String
    public let temporaryPath: String
    public let replace: Bool
    private var published = false
    private var registration: CleanupRegistration
    private let createdParent: String?

    public init(path: String, replace: Bool = false) throws(OutputError) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
        self.replace = replace
        let parent = Paths.directory(of: trimmed)
        createdParent = try Paths.makeDirectories(parent)
        Publish.sweep(parent)
        temporaryPath = Publish.temporaryPath(for: trimmed)
        registration = CleanupRegistration(path: temporaryPath, isDirectory: true)
        guard mkdir(temporaryPath, 0o755) == 0 else {
            let reason = String(cString: strerror(errno))
            registration.release()
            throw .create(file: trimmed, reason: reason)
        }
    }

    deinit {
        if !published {
            Publish.removeTree(temporaryPath)
            // Parents this output created, when still empty.
            if let top = createdParent {
                var dir = Paths.directory(of: path)
                while rmdir(dir) == 0 && dir != top { dir = Paths.directory(of: dir) }
            }
        }
        registration.release()
    }

    /// The path of `name` inside the folder being built.
    public func file(_ name: String) -> String { Paths.join(temporaryPath, name) }

    /// Publishes the folder under its real name (without replacing unless `replace`).
    public func commit() throws(OutputError) {
        Publish.syncDirectory(temporaryPath)
        try Publish.rename(temporaryPath, to: path, replace: replace)
        published = true
        registration.release()
    }
}

/// Failures writing output.
public enum OutputError: Error, CustomStringConvertible {
    case create(file: String, reason: String)
    case write(file: String, reason: String)
    case exists(path: String)

    public var description: String {
        switch self {
        case let .create(file, reason): return "\(file): cannot create: \(reason)"
        case let .write(file, reason): return "\(file): write failed: \(reason)"
        case let .exists(path): return "\(path) already exists (use --force to replace it)"
        }
    }
}

/// Path helpers without Foundation's URL machinery.
public enum Paths {
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
    public static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
    public static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
    /// Creates `path` and any missing parents; returns the topmost folder it created (`nil` when
    /// `path` already existed), so a failed writer can remove what it made.
    @discardableResult
    public static func makeDirectories(_ path: String) throws(OutputError) -> String? {
        if isDirectory(path) { return nil }
        let parent = directory(of: path)
        var top: String? = nil
        if parent != path && !isDirectory(parent) { top = try makeDirectories(parent) }
        guard mkdir(path, 0o755) == 0 || isDirectory(path) else {
            throw .create(file: path, reason: String(cString: strerror(errno)))
        }
        return top ?? path
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }
    public static func fileSize(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }
}
