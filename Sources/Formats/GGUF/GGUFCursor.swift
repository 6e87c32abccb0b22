import TensorGraph

/// A bounded forward cursor over a file, read with `pread` through a window of at most
/// `windowSize` bytes (more only when one item is larger). Every read checks the bytes it needs
/// against the file size first, so a hostile length can neither read past the end nor make us
/// allocate more than the file holds.
struct GGUFCursor {
    static let windowSize = 1 << 20

    let file: ReadableFile
    /// The absolute file offset of the next byte.
    private(set) var offset: Int
    private var window: [UInt8] = []
    private var windowStart = 0

    init(file: ReadableFile, offset: Int = 0) {
        self.file = file
        self.offset = offset
    }

    var path: String { file.path }
    var fileSize: Int { file.size }
    /// Bytes between the cursor and the end of the file.
    var remaining: Int { file.size - offset }

    /// Makes `[offset, offset + n)` available in the window and returns its start in the window.
    private mutating func ensure(_ n: Int, _ what: () -> String) throws -> Int {
        guard n >= 0, n <= file.size - offset else {
            throw GGUFError.truncated(file: file.path, what: what(), offset: offset, needed: n, fileSize: file.size)
        }
        if offset >= windowStart && offset + n <= windowStart + window.count { return offset - windowStart }
        let count = min(max(n, GGUFCursor.windowSize), file.size - offset)
        window = try file.readBytes(at: offset, count: count)
        windowStart = offset
        return 0
    }

    /// Reads one little-endian integer.
    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let i = try ensure(MemoryLayout<T>.size, what)
        let v = window.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: T.self) }
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    /// Reads `n` raw bytes (`n` already checked by the caller or bounded by the file).
    mutating func bytes(_ n: Int, _ what: @autoclosure () -> String) throws -> ArraySlice<UInt8> {
        let i = try ensure(n, what)
        offset += n
        return window[i..<(i + n)]
    }

    /// Reads a GGUF string: a u64 byte length, then that many bytes of UTF-8.
    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let at = offset
        let length = try read(UInt64.self, what())
        guard length <= UInt64(remaining) else {
            throw GGUFError.stringTooLong(file: path, what: what(), offset: at, length: length, remaining: remaining)
        }
        let raw = try bytes(Int(length), what())
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw GGUFError.invalidUTF8(file: path, what: what(), offset: at)
        }
        return s
    }

    /// Moves the cursor forward to `target` (used for the padding before the data section; the
    /// bytes are not read, so padding past the end of a file without tensors is not an error).
    mutating func skip(to target: Int) {
        offset = max(offset, target)
    }
}
