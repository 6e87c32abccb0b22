#if canImport(Glibc)
import Glibc
#endif
import CPlatform

/// How outputs reach their final names: built under a temporary name beside the destination
/// (`.NAME.partial-PID-N`, N counting this process's outputs), then renamed in one step.
///
/// - Without `replace`, publishing is `renameat2(RENAME_NOREPLACE)`: of two writers racing for
///   one path, the second fails with `OutputError.exists` and the first one's output stays.
///   (Where the file system lacks it: `link` + `unlink` for files, and for folders a check then
///   `rename`, which cannot replace a non-empty folder.)
/// - With `replace`, a file is renamed over the old one; a folder (or anything replacing a
///   folder) is swapped in with `RENAME_EXCHANGE` and the old one, now under the temporary
///   name, is removed afterwards.
/// - Temporary paths are registered with a signal handler (SIGINT, SIGTERM, SIGHUP) that
///   removes them before the process dies of the signal, and temporary names whose PID is no
///   longer a live process (kill -9, power loss) are removed by the next output made in that
///   folder (`sweep`).
public enum Publish {
    /// The temporary name for `path`, in the same folder (so the final rename stays on one file
    /// system).
    public static func temporaryPath(for path: String) -> String {
        let n = counter.next()
        return Paths.join(Paths.directory(of: path), ".\(Paths.fileName(of: path)).\(marker)\(getpid())-\(n)")
    }

    static let marker = "partial-"
    private static let counter = Counter()

    /// The PID a temporary name carries (`.NAME.partial-PID` or `.NAME.partial-PID-N`), or nil
    /// for any other name.
    public static func ownerPID(ofTemporaryName name: String) -> Int32? {
        let bytes = Array(name.utf8), key = Array(("." + marker).utf8)
        guard bytes.first == UInt8(ascii: "."), bytes.count > key.count else { return nil }
        guard let at = stride(from: bytes.count - key.count, through: 1, by: -1).first(where: {
            Array(bytes[$0..<($0 + key.count)]) == key
        }) else { return nil }
        let tail = String(decoding: bytes[(at + key.count)...], as: UTF8.self)
        let parts = tail.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
            let pid = Int32(parts[0]), pid > 0
        else { return nil }
        return pid
    }

    /// Whether a process with this PID exists (a zombie counts until its parent reaps it).
    public static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }

    /// Removes temporary outputs in `directory` left by processes that no longer exist. Run
    /// once per folder per process, before the first output is made there. Returns what it
    /// removed.
    @discardableResult
    public static func sweep(_ directory: String) -> [String] {
        guard swept.insert(directory) else { return [] }
        guard let d = opendir(directory) else { return [] }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            names.append(name)
        }
        closedir(d)
        var removed: [String] = []
        for name in names {
            guard let pid = ownerPID(ofTemporaryName: name), pid != getpid(), !processExists(pid) else { continue }
            let path = Paths.join(directory, name)
            if removeTree(path) { removed.append(path) }
        }
        return removed
    }

    private static let swept = SweptSet()

    /// Removes a file or a folder with everything in it (symbolic links are removed, not
    /// followed): a temporary output, or an old output that `--force` replaced.
    @discardableResult
    static func removeTree(_ path: String, depth: Int = 0) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return unlink(path) == 0 }
        guard depth < 64, let d = opendir(path) else { return false }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(d)
        for name in names { removeTree(Paths.join(path, name), depth: depth + 1) }
        return rmdir(path) == 0
    }

    /// Moves the finished `temporary` to `path` (see the type's documentation).
    public static func rename(_ temporary: String, to path: String, replace: Bool) throws(OutputError) {
        if replace {
            try renameReplacing(temporary, to: path)
        } else {
            try renameNoReplace(temporary, to: path)
        }
        syncDirectory(Paths.directory(of: path))
    }

    static func renameNoReplace(_ temporary: String, to path: String) throws(OutputError) {
        for attempt in 0..<2 {
            if smelt_rename_noreplace(temporary, path) == 0 { return }
            let err = errno
            if err == EEXIST || err == ENOTEMPTY {
                // An empty folder holds no output: take its place (once).
                if attempt == 0, Paths.isDirectory(path), rmdir(path) == 0 { continue }
                throw .exists(path: path)
            }
            if err == EINVAL || err == ENOSYS || err == ENOTSUP {
                try renameNoReplaceFallback(temporary, to: path)
                return
            }
            throw .write(file: path, reason: "rename: " + String(cString: strerror(err)))
        }
        throw .exists(path: path)
    }

    /// For file systems without RENAME_NOREPLACE: `link` fails if the name exists, atomically;
    /// folders cannot be linked, and `rename` replaces only an empty folder.
    static func renameNoReplaceFallback(_ temporary: String, to path: String) throws(OutputError) {
        if Paths.isDirectory(temporary) {
            if Paths.isDirectory(path) { rmdir(path) }
            if Paths.exists(path) { throw .exists(path: path) }
            guard Glibc.rename(temporary, path) == 0 else {
                let err = errno
                if err == EEXIST || err == ENOTEMPTY || err == ENOTDIR { throw .exists(path: path) }
                throw .write(file: path, reason: "rename: " + String(cString: strerror(err)))
            }
            return
        }
        guard link(temporary, path) == 0 else {
            let err = errno
            if err == EEXIST { throw .exists(path: path) }
            throw .write(file: path, reason: "link: " + String(cString: strerror(err)))
        }
        unlink(temporary)
    }

    static func renameReplacing(_ temporary: String, to path: String) throws(OutputError) {
        var st = stat()
        let old = lstat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
        if old == nil || (old != S_IFDIR && !Paths.isDirectory(temporary)) {
            // Nothing there, or a file replacing a file: one rename.
            guard Glibc.rename(temporary, path) == 0 else {
                throw .write(file: path, reason: "rename: " + String(cString: strerror(errno)))
            }
            return
        }
        // A folder, or a file replacing a folder: swap the names, then remove the old output
        // (now under the temporary name, so a crash here leaves only a stale temporary).
        guard smelt_rename_exchange(temporary, path) == 0 else {
            let err = errno
            guard err == EINVAL || err == ENOSYS || err == ENOTSUP else {
                throw .write(file: path, reason: "rename: " + String(cString: strerror(err)))
            }
            // No RENAME_EXCHANGE: move the old one aside, then rename (not atomic).
            let aside = temporaryPath(for: path)
            guard Glibc.rename(path, aside) == 0 else {
                throw .write(file: path, reason: "rename: " + String(cString: strerror(errno)))
            }
            guard Glibc.rename(temporary, path) == 0 else {
                let reason = String(cString: strerror(errno))
                _ = Glibc.rename(aside, path)
                throw .write(file: path, reason: "rename: " + reason)
            }
            removeTree(aside)
            return
        }
        removeTree(temporary)
    }

    /// Makes a rename durable (best effort: some file systems refuse fsync on folders).
    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Publishes finished files in the order given, each without replacing unless `replace`;
    /// when one fails, the ones this call already published are removed again, so a failed set
    /// leaves nothing under final names. Callers order sets so that the file readers open first
    /// (split 1, the index) comes last.
    public static func publishSet(_ outputs: [AtomicOutput], replace: Bool) throws(OutputError) {
        if !replace, let taken = outputs.first(where: { Paths.exists($0.path) }) {
            throw .exists(path: taken.path)
        }
        var done: [AtomicOutput] = []
        do {
            for out in outputs {
                try out.publish()
                done.append(out)
            }
        } catch {
            if !replace { for out in done { unlink(out.path) } }
            throw error
        }
    }
}

/// Registers a path with the signal handler for as long as it is temporary.
struct CleanupRegistration {
    private var slot: Int32 = -1

    init(path: String, isDirectory: Bool) {
        smelt_cleanup_install()
        slot = smelt_cleanup_add(path, isDirectory ? 1 : 0)
    }

    mutating func release() {
        smelt_cleanup_remove(slot)
        slot = -1
    }
}

private final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = PthreadLock()
    func next() -> Int { lock.with { value += 1; return value } }
}

private final class SweptSet: @unchecked Sendable {
    private var set: Set<String> = []
    private let lock = PthreadLock()
    func insert(_ s: String) -> Bool { lock.with { set.insert(s).inserted } }
}

final class PthreadLock: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func with<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return body()
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
