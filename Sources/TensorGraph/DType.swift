/// Every element type a tensor can have: plain numeric types (as safetensors names them) and the
/// ggml block types of GGUF. All sizes come from the single table in `DType.table`.
public enum DType: String, CaseIterable, Sendable, Codable, Hashable {
    // Plain element types.
    case f64, f32, f16, bf16, f8E4M3 = "f8_e4m3", f8E5M2 = "f8_e5m2"
    case i64, i32, i16, i8, u64, u32, u16, u8, bool
    // ggml block types (GGUF). Names follow ggml in lower case.
    case q4_0, q4_1, q5_0, q5_1, q8_0, q8_1
    case q2_K = "q2_k", q3_K = "q3_k", q4_K = "q4_k", q5_K = "q5_k", q6_K = "q6_k", q8_K = "q8_k"
    case iq2_XXS = "iq2_xxs", iq2_XS = "iq2_xs", iq3_XXS = "iq3_xxs", iq1_S = "iq1_s"
    case iq4_NL = "iq4_nl", iq3_S = "iq3_s", iq2_S = "iq2_s", iq4_XS = "iq4_xs", iq1_M = "iq1_m"
    case tq1_0, tq2_0, mxfp4, nvfp4, q1_0

    /// One named byte range of a ggml block, in block order. `kind` says how its bytes read:
    /// one f16 or f32 scale, an array of little-endian 16-bit integers, or plain bytes (packed
    /// codes, packed sub-block scales). Codecs find their offsets here by name, and Ingot's
    /// byte-plane layout is derived from the kinds.
    public struct BlockField: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case f16, f32, u16s, i16s, bytes }
        public let name: String
        public let kind: Kind
        /// Bytes the field takes in the block.
        public let length: Int

        public static func f16(_ name: String) -> BlockField { BlockField(name: name, kind: .f16, length: 2) }
        public static func f32(_ name: String) -> BlockField { BlockField(name: name, kind: .f32, length: 4) }
        public static func u16s(_ name: String, _ count: Int) -> BlockField { BlockField(name: name, kind: .u16s, length: 2 * count) }
        public static func i16s(_ name: String, _ count: Int) -> BlockField { BlockField(name: name, kind: .i16s, length: 2 * count) }
        public static func bytes(_ name: String, _ length: Int) -> BlockField { BlockField(name: name, kind: .bytes, length: length) }
    }

    /// One row of the dtype table.
    public struct Info: Sendable {
        /// Elements per block (1 for plain types).
        public let blockSize: Int
        /// Bytes per block (the element size for plain types; the fields' sum for block types).
        public let bytesPerBlock: Int
        /// The safetensors `dtype` string, when safetensors can hold the type.
        public let safetensorsName: String?
        /// The `ggml_type` id, when GGUF can hold the type.
        public let ggmlType: UInt32?
        /// Whether values are floating point (castable between f32/f16/bf16).
        public let isFloat: Bool
        /// A block type's byte layout, in order (empty for plain types).
        public let fields: [BlockField]

        init(blockSize: Int, bytesPerBlock: Int, safetensorsName: String?, ggmlType: UInt32?, isFloat: Bool) {
            self.blockSize = blockSize
            self.bytesPerBlock = bytesPerBlock
            self.safetensorsName = safetensorsName
            self.ggmlType = ggmlType
            self.isFloat = isFloat
            self.fields = []
        }

        /// A ggml block type: `elements` values stored as `fields` (bytes per block is their sum).
        static func block(ggml: UInt32, elements: Int, _ fields: [BlockField]) -> Info {
            Info(elements: elements, ggml: ggml, fields: fields)
        }

        private init(elements: Int, ggml: UInt32, fields: [BlockField]) {
            blockSize = elements
            bytesPerBlock = fields.reduce(0) { $0 + $1.length }
            safetensorsName = nil
            ggmlType = ggml
            isFloat = false
            self.fields = fields
        }

        /// The byte offset of the field called `name`, or nil.
        public func offset(of name: String) -> Int? {
            var at = 0
            for f in fields {
                if f.name == name { return at }
                at += f.length
            }
            return nil
        }
    }

    /// The table: block size, bytes per block, safetensors name, ggml type id; for ggml block
    /// types, the field layout (ggml's `block_*` structs in ggml-common.h) from which the bytes per
    /// block follow. ggml values checked against gguf-py's `GGML_QUANT_SIZES`.
    public static let table: [DType: Info] = [
        .f64: Info(blockSize: 1, bytesPerBlock: 8, safetensorsName: "F64", ggmlType: 28, isFloat: true),
        .f32: Info(blockSize: 1, bytesPerBlock: 4, safetensorsName: "F32", ggmlType: 0, isFloat: true),
        .f16: Info(blockSize: 1, bytesPerBlock: 2, safetensorsName: "F16", ggmlType: 1, isFloat: true),
        .bf16: Info(blockSize: 1, bytesPerBlock: 2, safetensorsName: "BF16", ggmlType: 30, isFloat: true),
        .f8E4M3: Info(blockSize: 1, bytesPerBlock: 1, safetensorsName: "F8_E4M3", ggmlType: nil, isFloat: true),
        .f8E5M2: Info(blockSize: 1, bytesPerBlock: 1, safetensorsName: "F8_E5M2", ggmlType: nil, isFloat: true),
        .i64: Info(blockSize: 1, bytesPerBlock: 8, safetensorsName: "I64", ggmlType: 27, isFloat: false),
        .i32: Info(blockSize: 1, bytesPerBlock: 4, safetensorsName: "I32", ggmlType: 26, isFloat: false),
        .i16: Info(blockSize: 1, bytesPerBlock: 2, safetensorsName: "I16", ggmlType: 25, isFloat: false),
        .i8: Info(blockSize: 1, bytesPerBlock: 1, safetensorsName: "I8", ggmlType: 24, isFloat: false),
        .u64: Info(blockSize: 1, bytesPerBlock: 8, safetensorsName: "U64", ggmlType: nil, isFloat: false),
        .u32: Info(blockSize: 1, bytesPerBlock: 4, safetensorsName: "U32", ggmlType: nil, isFloat: false),
        .u16: Info(blockSize: 1, bytesPerBlock: 2, safetensorsName: "U16", ggmlType: nil, isFloat: false),
        .u8: Info(blockSize: 1, bytesPerBlock: 1, safetensorsName: "U8", ggmlType: nil, isFloat: false),
        .bool: Info(blockSize: 1, bytesPerBlock: 1, safetensorsName: "BOOL", ggmlType: nil, isFloat: false),
        .q4_0: .block(ggml: 2, elements: 32, [.f16("d"), .bytes("qs", 16)]),
        .q4_1: .block(ggml: 3, elements: 32, [.f16("d"), .f16("m"), .bytes("qs", 16)]),
        .q5_0: .block(ggml: 6, elements: 32, [.f16("d"), .bytes("qh", 4), .bytes("qs", 16)]),
        .q5_1: .block(ggml: 7, elements: 32, [.f16("d"), .f16("m"), .bytes("qh", 4), .bytes("qs", 16)]),
        .q8_0: .block(ggml: 8, elements: 32, [.f16("d"), .bytes("qs", 32)]),
        .q8_1: .block(ggml: 9, elements: 32, [.f16("d"), .f16("s"), .bytes("qs", 32)]),
        .q2_K: .block(ggml: 10, elements: 256, [.bytes("scales", 16), .bytes("qs", 64), .f16("d"), .f16("dmin")]),
        .q3_K: .block(ggml: 11, elements: 256, [.bytes("hmask", 32), .bytes("qs", 64), .bytes("scales", 12), .f16("d")]),
        .q4_K: .block(ggml: 12, elements: 256, [.f16("d"), .f16("dmin"), .bytes("scales", 12), .bytes("qs", 128)]),
        .q5_K: .block(ggml: 13, elements: 256, [.f16("d"), .f16("dmin"), .bytes("scales", 12), .bytes("qh", 32), .bytes("qs", 128)]),
        .q6_K: .block(ggml: 14, elements: 256, [.bytes("ql", 128), .bytes("qh", 64), .bytes("scales", 16), .f16("d")]),
        .q8_K: .block(ggml: 15, elements: 256, [.f32("d"), .bytes("qs", 256), .i16s("bsums", 16)]),
        .iq2_XXS: .block(ggml: 16, elements: 256, [.f16("d"), .bytes("qs", 64)]),
        .iq2_XS: .block(ggml: 17, elements: 256, [.f16("d"), .bytes("qs", 64), .bytes("scales", 8)]),
        .iq3_XXS: .block(ggml: 18, elements: 256, [.f16("d"), .bytes("qs", 96)]),
        .iq1_S: .block(ggml: 19, elements: 256, [.f16("d"), .bytes("qs", 32), .bytes("qh", 16)]),
        .iq4_NL: .block(ggml: 20, elements: 32, [.f16("d"), .bytes("qs", 16)]),
        .iq3_S: .block(ggml: 21, elements: 256, [.f16("d"), .bytes("qs", 64), .bytes("qh", 8), .bytes("signs", 32), .bytes("scales", 4)]),
        .iq2_S: .block(ggml: 22, elements: 256, [.f16("d"), .bytes("qs", 64), .bytes("qh", 8), .bytes("scales", 8)]),
        .iq4_XS: .block(ggml: 23, elements: 256, [.f16("d"), .u16s("scales_h", 1), .bytes("scales_l", 4), .bytes("qs", 128)]),
        .iq1_M: .block(ggml: 29, elements: 256, [.bytes("qs", 32), .bytes("qh", 16), .bytes("scales", 8)]),
        .tq1_0: .block(ggml: 34, elements: 256, [.bytes("qs", 48), .bytes("qh", 4), .f16("d")]),
        .tq2_0: .block(ggml: 35, elements: 256, [.bytes("qs", 64), .f16("d")]),
        .mxfp4: .block(ggml: 39, elements: 32, [.bytes("e", 1), .bytes("qs", 16)]),
        .nvfp4: .block(ggml: 40, elements: 64, [.bytes("d", 4), .bytes("qs", 32)]),
        .q1_0: .block(ggml: 41, elements: 128, [.f16("d"), .bytes("qs", 16)]),
    ]

    public var info: Info { DType.table[self]! }
    public var blockSize: Int { info.blockSize }
    public var bytesPerBlock: Int { info.bytesPerBlock }
    public var isQuantized: Bool { info.blockSize > 1 }
    public var isFloat: Bool { info.isFloat }

    /// The name shown to people: safetensors style for plain types, ggml style for block types.
    public var displayName: String { info.safetensorsName ?? rawValue.uppercased() }

    private static let bySafetensorsName: [String: DType] = Dictionary(
        uniqueKeysWithValues: table.compactMap { key, info in info.safetensorsName.map { ($0, key) } })
    private static let byGGMLType: [UInt32: DType] = Dictionary(
        uniqueKeysWithValues: table.compactMap { key, info in info.ggmlType.map { ($0, key) } })

    public init?(safetensorsName: String) {
        guard let t = DType.bySafetensorsName[safetensorsName] else { return nil }
        self = t
    }

    public init?(ggmlType: UInt32) {
        guard let t = DType.byGGMLType[ggmlType] else { return nil }
        self = t
    }

    /// Parses a user-facing name such as `f16`, `BF16`, `q4_0`, `Q4_K`.
    public init?(name: String) {
        let lower = name.lowercased()
        if let t = DType(rawValue: lower) { self = t; return }
        if let t = DType.bySafetensorsName[name.uppercased()] { self = t; return }
        return nil
    }

    /// Bytes needed for a tensor of this type and `shape` (outermost dimension first). Every
    /// multiplication is overflow-checked; block types need the innermost dimension to be a
    /// multiple of the block size.
    public func byteCount(shape: [Int]) throws(ShapeError) -> Int {
        let elements = try DType.elementCount(shape)
        if blockSize == 1 {
            let (bytes, o) = elements.multipliedReportingOverflow(by: bytesPerBlock)
            if o { throw .overflow(shape: shape, dtype: self) }
            return bytes
        }
        let inner = shape.last ?? 1
        guard inner % blockSize == 0 else {
            throw .notBlockAligned(shape: shape, dtype: self, blockSize: blockSize)
        }
        let (bytes, o) = (elements / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        if o { throw .overflow(shape: shape, dtype: self) }
        return bytes
    }

    /// The product of `shape`, checked for negative dimensions and overflow.
    public static func elementCount(_ shape: [Int]) throws(ShapeError) -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw .negativeDimension(shape: shape) }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { throw .overflow(shape: shape, dtype: nil) }
            n = p
        }
        return n
    }
}

/// Shape arithmetic failures, carrying the numbers involved.
public enum ShapeError: Error, Equatable, CustomStringConvertible {
    case overflow(shape: [Int], dtype: DType?)
    case negativeDimension(shape: [Int])
    case notBlockAligned(shape: [Int], dtype: DType, blockSize: Int)

    public var description: String {
        switch self {
        case let .overflow(shape, dtype):
            let t = dtype.map { " of \($0.displayName)" } ?? ""
            return "shape \(shape)\(t) overflows: its size does not fit in 64 bits"
        case let .negativeDimension(shape):
            return "shape \(shape) has a negative dimension"
        case let .notBlockAligned(shape, dtype, blockSize):
            return "shape \(shape): innermost dimension \(shape.last ?? 0) is not a multiple of \(dtype.displayName)'s block size \(blockSize)"
        }
    }
}
