#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorGraph

/// An output file written under a temporary name beside its target and renamed into place only by
/// `commit()`. Dropped without a commit, the temporary file is removed: a failed or interrupted
/// conversion never leaves a half-written output under the real name.
public final class AtomicOutput {
    public let path: String
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false
    public private(set) var bytesWritten = 0

    public init(path: String) throws(OutputError) {
        self.path = path
        let dir = Paths.directory(of: path)
        let base = Paths.fileName(of: path)
        temporaryPath = Paths.join(dir, ".\(base).partial-\(getpid())")
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .create(file: path, reason: String(cString: strerror(errno))) }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
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
    }

    public func write(_ bytes: [UInt8]) throws(OutputError) {
        let r = bytes.withUnsafeBytes { b in Result { () throws(OutputError) in try write(b) } }
        try r.get()
    }

    /// Writes `count` zero bytes (padding).
    public func writeZeros(_ count: Int) throws(OutputError) {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// Closes the file and renames it to its real name.
    public func commit() throws(OutputError) {
        guard close(fd) == 0 else {
            fd = -1
            throw .write(file: path, reason: String(cString: strerror(errno)))
        }
        fd = -1
        guard rename(temporaryPath, path) == 0 else {
            throw .write(file: path, reason: "rename: " + String(cString: strerror(errno)))
        }
        committed = true
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
