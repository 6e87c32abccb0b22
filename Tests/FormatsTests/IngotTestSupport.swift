import Codecs
@testable import Formats
import Foundation
import TensorGraph
import XCTest

/// Fixtures and file surgery for the Ingot tests.
enum IngotFixtures {
    /// Deterministic pseudo-random bytes (splitmix64).
    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var out = [UInt8]()
        out.reserveCapacity(n + 8)
        while out.count < n {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            withUnsafeBytes(of: z) { out.append(contentsOf: $0) }
        }
        return Array(out.prefix(n))
    }

    /// Weights-like floats: a sum of uniforms (roughly normal), scaled by `scale`.
    static func floats(_ n: Int, seed: UInt64, scale: Float = 0.05) -> [Float] {
        let raw = bytes(n * 4, seed: seed)
        return (0..<n).map { i in
            let s = Int(raw[4 * i]) + Int(raw[4 * i + 1]) + Int(raw[4 * i + 2]) - 382
            return Float(s) / 110 * scale + Float(raw[4 * i + 3]) / 1e5
        }
    }

    static func tensor(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) throws -> Tensor {
        try Tensor(name: name, dtype: dtype, shape: shape, storage: MemoryStorage(bytes))
    }

    static func floatBytes(_ values: [Float], as dtype: DType) -> [UInt8] {
        var out: [UInt8] = []
        for v in values {
            switch dtype {
            case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .f64: withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .f16: withUnsafeBytes(of: Half.f16Bits(v).littleEndian) { out.append(contentsOf: $0) }
            case .bf16: withUnsafeBytes(of: Half.bf16Bits(v).littleEndian) { out.append(contentsOf: $0) }
            default: fatalError("not a float type")
            }
        }
        return out
    }

    /// Metadata with every value type, nested arrays, GGUF tokenizer keys, in a deliberate order.
    static func metadata() -> Metadata {
        var m = Metadata()
        m["zeta.first"] = .string("keys keep their order")
        m["general.architecture"] = .string("llama")
        m["general.alignment"] = .uint32(64)
        m["t.u8"] = .uint8(200)
        m["t.i8"] = .int8(-7)
        m["t.u16"] = .uint16(65535)
        m["t.i16"] = .int16(-32768)
        m["t.u32"] = .uint32(4_000_000_000)
        m["t.i32"] = .int32(-123_456)
        m["t.u64"] = .uint64(UInt64.max)
        m["t.i64"] = .int64(Int64.min)
        m["t.f32"] = .float32(-0.0)
        m["t.f64"] = .float64(1e-300)
        m["t.bool"] = .bool(true)
        m["t.string.unicode"] = .string("héllo, 世界 \u{1F600}\n\t\"q\"")
        m["t.string.empty"] = .string("")
        m["t.array.empty"] = .array(elementType: .string, values: [])
        m["t.array.f32"] = .array(elementType: .float32, values: [.float32(1.5), .float32(.infinity), .float32(-2)])
        m["t.array.nested"] = .array(elementType: .array, values: [
            .array(elementType: .int32, values: [.int32(1), .int32(-2)]),
            .array(elementType: .string, values: [.string("a"), .string("")]),
            .array(elementType: .array, values: [.array(elementType: .uint8, values: [.uint8(9)])]),
            .array(elementType: .bool, values: []),
        ])
        m["tokenizer.ggml.model"] = .string("gpt2")
        m["tokenizer.ggml.tokens"] = .array(elementType: .string, values: ["<s>", "a", "b", "ab", "Ġx"].map { .string($0) })
        m["tokenizer.ggml.token_type"] = .array(elementType: .int32, values: [3, 1, 1, 1, 1].map { .int32($0) })
        m["tokenizer.ggml.merges"] = .array(elementType: .string, values: [.string("a b")])
        m["tokenizer.ggml.bos_token_id"] = .uint32(0)
        m["tokenizer.chat_template"] = .string("{{ messages }}")
        m["llama.block_count"] = .uint32(2)
        return m
    }

    /// A graph with a tensor of every dtype (random bytes; block types too, the container does not
    /// interpret them), float tensors with weight-like values over several chunks, an empty tensor,
    /// full metadata, hyperparameters and a tokenizer (lists equal to the metadata's).
    static func graph(storableInSafetensors: Bool = false, big: Bool = true) throws -> TensorGraph {
        var tensors: [Tensor] = []
        var seed: UInt64 = 1
        if big {
            for dtype in [DType.f32, .bf16, .f16, .f64] {
                let shape = dtype == .f64 ? [50, 100] : [120, 100]
                let n = shape.reduce(1, *)
                tensors.append(try tensor("big.\(dtype.rawValue)", dtype, shape, floatBytes(floats(n, seed: seed), as: dtype)))
                seed += 1
            }
        }
        for dtype in DType.allCases {
            if storableInSafetensors && dtype.info.safetensorsName == nil { continue }
            let shape = dtype.isQuantized ? [3, dtype.blockSize * 2] : [5, 7]
            let n = try dtype.byteCount(shape: shape)
            var b = bytes(n, seed: seed)
            if dtype == .bool { b = b.map { $0 & 1 } }
            tensors.append(try tensor("small.\(dtype.rawValue)", dtype, shape, b))
            seed += 1
        }
        tensors.append(try tensor("empty", .f32, [0, 3], []))
        var h = Hyperparameters()
        h.contextLength = 2048
        h.embeddingLength = 64
        h.blockCount = 2
        h.feedForwardLength = 256
        h.headCount = 4
        h.headCountKV = 2
        h.ropeFreqBase = 10000.5
        h.ropeDimensionCount = 16
        h.layerNormEpsilon = 1e-5
        h.rmsNormEpsilon = 1e-6
        h.vocabSize = 5
        var t = Tokenizer()
        t.model = "gpt2"
        t.preTokenizer = "smollm"
        t.tokens = ["<s>", "a", "b", "ab", "Ġx"]
        t.tokenTypes = [3, 1, 1, 1, 1]
        t.merges = ["a b"]
        t.bosTokenID = 0
        t.eosTokenID = 4
        t.paddingTokenID = 2
        t.addBOS = false
        t.chatTemplate = "{{ messages }}"
        return try TensorGraph(architecture: "llama", hyperparameters: h, metadata: metadata(), tokenizer: t, tensors: tensors)
    }

    static func readFile(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func writeFile(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Asserts two graphs have the same fields, metadata (order, types, values) and tensor bytes.
    static func assertSame(_ a: TensorGraph, _ b: TensorGraph, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.architecture, b.architecture, file: file, line: line)
        XCTAssertEqual(a.hyperparameters, b.hyperparameters, file: file, line: line)
        XCTAssertEqual(a.tokenizer, b.tokenizer, file: file, line: line)
        XCTAssertEqual(a.metadata.keys, b.metadata.keys, file: file, line: line)
        for k in a.metadata.keys {
            XCTAssertEqual(describe(a.metadata[k]!), describe(b.metadata[k]!), "metadata \(k)", file: file, line: line)
        }
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), file: file, line: line)
        for (x, y) in zip(a.tensors, b.tensors) {
            XCTAssertEqual(x.dtype, y.dtype, x.name, file: file, line: line)
            XCTAssertEqual(x.shape, y.shape, x.name, file: file, line: line)
            XCTAssertTrue(try x.storage.readAll() == y.storage.readAll(), "bytes of \(x.name)", file: file, line: line)
        }
    }

    /// A value with its types spelled out, bit patterns for floats (NaN-safe, -0 distinct).
    static func describe(_ v: MetadataValue) -> String {
        switch v {
        case let .float32(f): return "f32:\(f.bitPattern)"
        case let .float64(f): return "f64:\(f.bitPattern)"
        case let .array(t, values): return "[\(t.name):" + values.map(describe).joined(separator: ",") + "]"
        default: return "\(v.type.name):\(v)"
        }
    }
}

/// An Ingot file taken apart: prelude version, each chunk's stored bytes, and the decoded
/// header. `assemble` puts it back with fresh offsets, sizes and checksums (unless told not
/// to), so a test can change one thing and have everything else consistent.
struct IngotParts {
    var major: UInt16 = Ingot.majorVersion
    var minor: UInt16 = Ingot.minorVersion
    var flags: UInt32 = 0
    var payloads: [[[UInt8]]]
    var header: IngotHeader

    init(_ bytes: [UInt8]) throws {
        let size = bytes.count
        let trailer = Array(bytes[(size - Ingot.trailerSize)...])
        let hOffset = Int(trailer.u64(0)), hStored = Int(trailer.u64(8)), hRaw = Int(trailer.u64(16))
        let stored = Array(bytes[hOffset..<(hOffset + hStored)])
        var raw = stored
        if trailer.u32(24) == Ingot.headerZstd {
            raw = [UInt8](repeating: 0, count: hRaw)
            try stored.withUnsafeBytes { s in try raw.withUnsafeMutableBytes { try ZstdDecompressor().decompress(s, into: $0) } }
        }
        header = try IngotHeader.decode(raw, file: "parts")
        payloads = header.tensors.map { t in t.chunks.map { c in Array(bytes[c.offset..<(c.offset + c.storedSize)]) } }
    }

    /// The file bytes. `editHeader` sees the encoded header before compression, `editTrailer`
    /// the trailer's first 56 bytes before the trailer checksum.
    func assemble(
        fixChunks: Bool = true, compressHeader: Bool = true, extraSections: [(tag: String, required: Bool, payload: [UInt8])] = [],
        editHeader: (inout [UInt8]) -> Void = { _ in }, editTrailer: (inout [UInt8]) -> Void = { _ in },
        fixTrailerChecksum: Bool = true
    ) throws -> [UInt8] {
        var e = IngotEncoder()
        e.bytes = Ingot.magic
        e.u16(major)
        e.u16(minor)
        e.u32(flags)
        let prelude = e.bytes
        var out = prelude
        var h = header
        for (t, chunks) in payloads.enumerated() {
            for (k, p) in chunks.enumerated() {
                if fixChunks {
                    h.tensors[t].chunks[k].offset = out.count
                    h.tensors[t].chunks[k].storedSize = p.count
                    h.tensors[t].chunks[k].checksum = XXHash64.hash(p)
                }
                out += p
            }
        }
        let headerOffset = out.count
        var raw = try h.encode(file: "parts")
        var sections = IngotEncoder()
        for s in extraSections { sections.section(s.tag, required: s.required, s.payload) }
        raw += sections.bytes
        editHeader(&raw)
        var stored = raw
        if compressHeader {
            stored = [UInt8](repeating: 0, count: raw.count + 1000)
            let n = try raw.withUnsafeBytes { s in
                try stored.withUnsafeMutableBytes { try ZstdCompressor().compress(s, into: $0, parameters: ZstdParameters(level: 3)) }
            }
            stored = Array(stored.prefix(n!))
        }
        out += stored
        var t = IngotEncoder()
        t.u64(UInt64(headerOffset))
        t.u64(UInt64(stored.count))
        t.u64(UInt64(raw.count))
        t.u32(compressHeader ? Ingot.headerZstd : Ingot.headerRaw)
        t.u32(0)
        t.u64(XXHash64.hash(stored))
        t.u16(major)
        t.u16(minor)
        t.u32(0)
        t.bytes += Ingot.trailerMagic
        editTrailer(&t.bytes)
        t.u64(fixTrailerChecksum ? XXHash64.hash(prelude + t.bytes) : 0)
        return out + t.bytes
    }

    /// A stream table for a chunk: (stored length, codec) per stream.
    static func streamTable(_ entries: [(Int, UInt8)]) -> [UInt8] {
        var e = IngotEncoder()
        for (n, codec) in entries {
            e.u32(UInt32(n))
            e.u8(codec)
            e.u8(0)
            e.u16(0)
        }
        return e.bytes
    }

    /// `bytes` compressed as one zstd frame.
    static func zstdFrame(_ bytes: [UInt8], contentSize: Bool = true) throws -> [UInt8] {
        var p = ZstdParameters(level: 3)
        p.contentSize = contentSize
        var out = [UInt8](repeating: 0, count: bytes.count + 1000)
        let n = try bytes.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try ZstdCompressor().compress(s, into: $0, parameters: p) } }
        return Array(out.prefix(n!))
    }
}
