import CZstd

/// Compression parameters for one zstd frame: a level, optionally with some of its parameters
/// overridden (zstd's advanced API).
public struct ZstdParameters: Sendable, Hashable, CustomStringConvertible {
    public var level: Int32
    /// 1 = fast, 2 = dfast, 3 = greedy, … 9 = btultra2 (`ZSTD_strategy`).
    public var strategy: Int32?
    public var windowLog: Int32?
    public var hashLog: Int32?
    public var minMatch: Int32?
    /// Whether the frame header states the content size (always, except to test readers).
    public var contentSize = true

    public init(level: Int32, strategy: Int32? = nil, windowLog: Int32? = nil, hashLog: Int32? = nil, minMatch: Int32? = nil) {
        self.level = level
        self.strategy = strategy
        self.windowLog = windowLog
        self.hashLog = hashLog
        self.minMatch = minMatch
    }

    /// Parameters for streams that are mostly literals (byte planes of floats, scale and packed
    /// integer streams of block types): the fast strategy with the longest minimum match and a
    /// tiny hash table finds only long repeats, so nearly everything goes to zstd's Huffman
    /// literal coder (128 KiB blocks, each with its own table). On such data this is both much
    /// faster and smaller than levels 3–15, whose short matches cost more than the literals.
    public static let literals = ZstdParameters(level: 1, strategy: 1, windowLog: 17, hashLog: 6, minMatch: 7)

    public var description: String {
        var s = "level \(level)"
        if let strategy { s += " strategy \(strategy)" }
        if let windowLog { s += " wlog \(windowLog)" }
        if let hashLog { s += " hlog \(hashLog)" }
        if let minMatch { s += " mml \(minMatch)" }
        return s
    }
}

/// A reusable zstd compression context (one per thread).
public final class ZstdCompressor {
    private let cctx: OpaquePointer
    private var current: ZstdParameters?

    public init() {
        guard let c = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx: out of memory") }
        cctx = c
    }

    deinit { ZSTD_freeCCtx(cctx) }

    private func set(_ p: ZSTD_cParameter, _ v: Int32) throws(ZstdError) {
        let r = ZSTD_CCtx_setParameter(cctx, p, v)
        if ZSTD_isError(r) != 0 { throw .failed(String(cString: ZSTD_getErrorName(r))) }
    }

    private func apply(_ params: ZstdParameters) throws(ZstdError) {
        if current == params { return }
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters)
        current = nil
        try set(ZSTD_c_compressionLevel, params.level)
        if let v = params.strategy { try set(ZSTD_c_strategy, v) }
        if let v = params.windowLog { try set(ZSTD_c_windowLog, v) }
        if let v = params.hashLog { try set(ZSTD_c_hashLog, v) }
        if let v = params.minMatch { try set(ZSTD_c_minMatch, v) }
        try set(ZSTD_c_checksumFlag, 0)
        try set(ZSTD_c_contentSizeFlag, params.contentSize ? 1 : 0)
        current = params
    }

    /// Compresses `input` as one frame into `output`; returns the frame's size, or `nil` when it
    /// does not fit in `output` (the caller then stores the bytes as they are).
    public func compress(
        _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, parameters: ZstdParameters
    ) throws(ZstdError) -> Int? {
        try apply(parameters)
        let n = ZSTD_compress2(cctx, output.baseAddress, output.count, input.baseAddress, input.count)
        if ZSTD_isError(n) != 0 {
            let name = String(cString: ZSTD_getErrorName(n))
            if name.contains("too small") { return nil }
            throw .failed(name)
        }
        return n
    }
}

/// A reusable zstd decompression context (one per thread). Frames always decode into a buffer of
/// exactly the size the caller expects; nothing is written past it.
public final class ZstdDecompressor {
    private let dctx: OpaquePointer

    public init() {
        guard let d = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx: out of memory") }
        dctx = d
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Decodes `input`, which must be exactly one frame, into exactly `output.count` bytes.
    public func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(ZstdFrameError) {
        guard input.count > 0, let src = input.baseAddress else { throw .notAFrame("empty input") }
        let declared = ZSTD_getFrameContentSize(src, input.count)
        if declared == ZSTD_CONTENTSIZE_ERROR_VALUE { throw .notAFrame("no valid zstd frame header") }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN_VALUE && declared != UInt64(output.count) {
            throw .declaredSize(declared: declared, expected: output.count)
        }
        let frame = ZSTD_findFrameCompressedSize(src, input.count)
        if ZSTD_isError(frame) != 0 { throw .corrupt(String(cString: ZSTD_getErrorName(frame))) }
        guard frame == input.count else { throw .trailingBytes(frame: frame, input: input.count) }
        let n = ZSTD_decompressDCtx(dctx, output.baseAddress, output.count, src, input.count)
        if ZSTD_isError(n) != 0 {
            let name = String(cString: ZSTD_getErrorName(n))
            if name.contains("too small") { throw .expands(limit: output.count) }
            throw .corrupt(name)
        }
        guard n == output.count else { throw .shortOutput(got: n, expected: output.count) }
    }
}

let ZSTD_CONTENTSIZE_UNKNOWN_VALUE: UInt64 = 0 &- 1
let ZSTD_CONTENTSIZE_ERROR_VALUE: UInt64 = 0 &- 2

/// Why a frame could not be decoded into its declared size.
public enum ZstdFrameError: Error, Equatable, CustomStringConvertible {
    case notAFrame(String)
    case declaredSize(declared: UInt64, expected: Int)
    case trailingBytes(frame: Int, input: Int)
    case corrupt(String)
    case expands(limit: Int)
    case shortOutput(got: Int, expected: Int)

    public var description: String {
        switch self {
        case let .notAFrame(why): return "not a zstd frame: \(why)"
        case let .declaredSize(declared, expected):
            return "zstd frame declares \(declared) bytes of content, \(expected) expected"
        case let .trailingBytes(frame, input):
            return "zstd frame ends after \(frame) of its \(input) bytes"
        case let .corrupt(name): return "zstd: \(name)"
        case let .expands(limit): return "zstd frame expands beyond the declared \(limit) bytes"
        case let .shortOutput(got, expected): return "zstd frame decompressed to \(got) bytes, \(expected) expected"
        }
    }
}

extension Zstd {
    /// The highest compression level this libzstd offers.
    public static var maxLevel: Int32 { ZSTD_maxCLevel() }
    /// The lowest (fastest, negative) level.
    public static var minLevel: Int32 { ZSTD_minCLevel() }
}
