import CZstd

/// One-shot zstd compression into bounded buffers.
public enum Zstd {
    public static var defaultLevel: Int32 { 3 }

    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = defaultLevel) throws(ZstdError) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in
            ZSTD_compress(o.baseAddress, bound, input.baseAddress, input.count, level)
        }
        if ZSTD_isError(n) != 0 { throw .failed(String(cString: ZSTD_getErrorName(n))) }
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses a frame into exactly `output.count` bytes; a frame that would produce more or
    /// fewer bytes is an error, and nothing is written past the buffer.
    public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(ZstdError) {
        let n = ZSTD_decompress(output.baseAddress, output.count, input.baseAddress, input.count)
        if ZSTD_isError(n) != 0 { throw .failed(String(cString: ZSTD_getErrorName(n))) }
        guard n == output.count else { throw .sizeMismatch(expected: output.count, got: n) }
    }

    public static var versionString: String { String(cString: ZSTD_versionString()) }
}

public enum ZstdError: Error, CustomStringConvertible, Equatable {
    case failed(String)
    case sizeMismatch(expected: Int, got: Int)
    public var description: String {
        switch self {
        case let .failed(m): return "zstd: \(m)"
        case let .sizeMismatch(e, g): return "zstd: frame decompressed to \(g) bytes, expected \(e)"
        }
    }
}
