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

    /// One row of the dtype table.
    public struct Info: Sendable {
        /// Elements per block (1 for plain types).
        public let blockSize: Int
        /// Bytes per block (the element size for plain types).
        public let bytesPerBlock: Int
        /// The safetensors `dtype` string, when safetensors can hold the type.
        public let safetensorsName: String?
        /// The `ggml_type` id, when GGUF can hold the type.
        public let ggmlType: UInt32?
        /// Whether values are floating point (castable between f32/f16/bf16).
        public let isFloat: Bool
    }

    /// The table: block size, bytes per block, safetensors name, ggml type id.
    /// Mirrored in `formats/dtypes.md`; ggml values checked against gguf-py's `GGML_QUANT_SIZES`.
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
        .q4_0: Info(blockSize: 32, bytesPerBlock: 18, safetensorsName: nil, ggmlType: 2, isFloat: false),
        .q4_1: Info(blockSize: 32, bytesPerBlock: 20, safetensorsName: nil, ggmlType: 3, isFloat: false),
        .q5_0: Info(blockSize: 32, bytesPerBlock: 22, safetensorsName: nil, ggmlType: 6, isFloat: false),
        .q5_1: Info(blockSize: 32, bytesPerBlock: 24, safetensorsName: nil, ggmlType: 7, isFloat: false),
        .q8_0: Info(blockSize: 32, bytesPerBlock: 34, safetensorsName: nil, ggmlType: 8, isFloat: false),
        .q8_1: Info(blockSize: 32, bytesPerBlock: 36, safetensorsName: nil, ggmlType: 9, isFloat: false),
        .q2_K: Info(blockSize: 256, bytesPerBlock: 84, safetensorsName: nil, ggmlType: 10, isFloat: false),
        .q3_K: Info(blockSize: 256, bytesPerBlock: 110, safetensorsName: nil, ggmlType: 11, isFloat: false),
        .q4_K: Info(blockSize: 256, bytesPerBlock: 144, safetensorsName: nil, ggmlType: 12, isFloat: false),
        .q5_K: Info(blockSize: 256, bytesPerBlock: 176, safetensorsName: nil, ggmlType: 13, isFloat: false),
        .q6_K: Info(blockSize: 256, bytesPerBlock: 210, safetensorsName: nil, ggmlType: 14, isFloat: false),
        .q8_K: Info(blockSize: 256, bytesPerBlock: 292, safetensorsName: nil, ggmlType: 15, isFloat: false),
        .iq2_XXS: Info(blockSize: 256, bytesPerBlock: 66, safetensorsName: nil, ggmlType: 16, isFloat: false),
        .iq2_XS: Info(blockSize: 256, bytesPerBlock: 74, safetensorsName: nil, ggmlType: 17, isFloat: false),
        .iq3_XXS: Info(blockSize: 256, bytesPerBlock: 98, safetensorsName: nil, ggmlType: 18, isFloat: false),
        .iq1_S: Info(blockSize: 256, bytesPerBlock: 50, safetensorsName: nil, ggmlType: 19, isFloat: false),
        .iq4_NL: Info(blockSize: 32, bytesPerBlock: 18, safetensorsName: nil, ggmlType: 20, isFloat: false),
        .iq3_S: Info(blockSize: 256, bytesPerBlock: 110, safetensorsName: nil, ggmlType: 21, isFloat: false),
        .iq2_S: Info(blockSize: 256, bytesPerBlock: 82, safetensorsName: nil, ggmlType: 22, isFloat: false),
        .iq4_XS: Info(blockSize: 256, bytesPerBlock: 136, safetensorsName: nil, ggmlType: 23, isFloat: false),
        .iq1_M: Info(blockSize: 256, bytesPerBlock: 56, safetensorsName: nil, ggmlType: 29, isFloat: false),
        .tq1_0: Info(blockSize: 256, bytesPerBlock: 54, safetensorsName: nil, ggmlType: 34, isFloat: false),
        .tq2_0: Info(blockSize: 256, bytesPerBlock: 66, safetensorsName: nil, ggmlType: 35, isFloat: false),
        .mxfp4: Info(blockSize: 32, bytesPerBlock: 17, safetensorsName: nil, ggmlType: 39, isFloat: false),
        .nvfp4: Info(blockSize: 64, bytesPerBlock: 36, safetensorsName: nil, ggmlType: 40, isFloat: false),
        .q1_0: Info(blockSize: 128, bytesPerBlock: 18, safetensorsName: nil, ggmlType: 41, isFloat: false),
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
