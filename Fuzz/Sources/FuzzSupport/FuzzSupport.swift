import Quantization
import TensorGraph

#if canImport(Glibc)
import Glibc
#endif

/// Reads every tensor of a graph a reader accepted, checks the byte count, and decodes the types
/// that have a decoder, checking the value count against the shape.
public func fuzzReadAllTensors(_ graph: TensorGraph) throws {
    for t in graph.tensors {
        let bytes = try t.storage.readAll()
        fuzzCheck(bytes.count == t.storage.byteCount, "tensor \(t.name): read \(bytes.count) of \(t.storage.byteCount)")
        if Dequantize.isSupported(t.dtype) {
            let values = try bytes.withUnsafeBytes { try Dequantize.toF32(t.dtype, $0) }
            fuzzCheck(values.count == t.shape.reduce(1, *), "tensor \(t.name): \(values.count) values for shape \(t.shape)")
        }
    }
}

/// The readers under test take paths, so each input is written to one file per process in
/// /dev/shm (memory, not disk) and read back from there.
public enum FuzzInput {
    nonisolated(unsafe) private static var dir: String?

    /// The per-process scratch folder (created on first use).
    public static var scratch: String {
        if let dir { return dir }
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        let d = "\(base)/smelt-fuzz-\(getpid())"
        mkdir(d, 0o700)
        dir = d
        return d
    }

    /// Writes `bytes` to `scratch/name` (replacing it) and returns the path.
    @discardableResult
    public static func write(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> String {
        write(UnsafeRawBufferPointer(start: data, count: size), name: name)
    }

    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, name: String) -> String {
        let path = scratch + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "cannot create \(path)")
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            precondition(n > 0, "cannot write \(path)")
            done += n
        }
        close(fd)
        return path
    }

    /// The repository's `golden/` folder (found from this source file's place in the checkout).
    public static let golden: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        // …/Fuzz/Sources/FuzzSupport/FuzzSupport.swift → …/golden
        parts.removeLast(4)
        return parts.joined(separator: "/") + "/golden"
    }()

    /// A whole file's bytes (for fixed inputs such as golden vocabularies).
    public static func contents(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        precondition(fd >= 0, "cannot open \(path)")
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            precondition(n >= 0, "cannot read \(path)")
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }
}

/// A failed property: libFuzzer saves the input and stops (a crash, as any other).
public func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        let text = "fuzz property failed: \(message())\n"
        _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
        abort()
    }
}

/// What every error a reader throws must look like: one line, no control bytes, bounded length,
/// and (`path` given) naming the file or folder it is about.
public func checkError(_ error: any Error, path: String?, limit: Int = 2000) {
    let text = "\(error)"
    fuzzCheck(!text.isEmpty, "empty error message")
    fuzzCheck(text.utf8.count <= limit, "error message of \(text.utf8.count) bytes: \(text.prefix(300))")
    fuzzCheck(
        !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f || (0x80..<0xa0).contains($0.value) },
        "control character in error message: \(text.debugDescription.prefix(600))")
    fuzzCheck(!text.contains("Formats.") && !text.contains("TensorGraph."), "Swift type name in error message: \(text.prefix(600))")
    if let path { fuzzCheck(text.contains(path), "error message does not name \(path): \(text.prefix(600))") }
}

/// libFuzzer's driver: runs `callback` on the inputs and options in argv (as libFuzzer's own
/// `main` would).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The program's entry: SwiftPM links executables with `main` renamed to `<module>_main`, which
/// each target defines (with `@_cdecl`) as a call to this.
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    warmUp(argc, argv, callback)
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}

/// Runs the target once on the empty input and on up to 20 files of each corpus folder named on
/// the command line, before libFuzzer starts: lazily built tables (pre-tokenizer patterns, golden
/// vocabularies) are made here and not during the first input, where LeakSanitizer would take
/// them for a leak (Swift keeps enum tags in pointers' spare bits, so it cannot see that the
/// globals still reach them).
func warmUp(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) {
    var one: UInt8 = 0
    _ = callback(&one, 0)
    guard let argv else { return }
    for i in 1..<Int(argc) {
        guard let arg = argv[i], arg[0] != 45 /* - */, let dir = opendir(arg) else { continue }
        defer { closedir(dir) }
        var used = 0
        while used < 20, let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !name.hasPrefix(".") else { continue }
            let bytes = FuzzInput.contents(String(cString: arg) + "/" + name)
            bytes.withUnsafeBufferPointer { _ = callback($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
            used += 1
        }
    }
}
