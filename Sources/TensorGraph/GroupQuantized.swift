/// Integer-coded matrices with a scale and zero point per (row, group of columns): the shape GPTQ,
/// compressed-tensors and AWQ checkpoints share once their packing is undone.
///
/// A matrix of `rows` × `cols` (outermost first, the `[out, in]` of a linear layer) holds one
/// unsigned code per value, `0 ..< 2^bits`. Column `c` belongs to group `groupIndex[c]` (or
/// `c / groupSize` when the groups are contiguous); its value is
/// `scale[r, g] · (code[r, c] − zero[r, g])`, computed in f32 (exact: a 16-bit float scale times a
/// difference of at most 9 bits fits f32's mantissa).
public struct GroupQuantizedLayout: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var bits: Int
    /// Columns per group (`cols` for one group per row, GPTQ's `group_size: -1`).
    public var groupSize: Int
    /// Groups per row (`scales`/`zeros` hold `rows × groups` values).
    public var groups: Int
    /// Whether the source declares symmetric quantization (every zero at `2^(bits−1)`).
    public var symmetric: Bool

    public init(rows: Int, cols: Int, bits: Int, groupSize: Int, groups: Int, symmetric: Bool) {
        self.rows = rows
        self.cols = cols
        self.bits = bits
        self.groupSize = groupSize
        self.groups = groups
        self.symmetric = symmetric
    }

    /// The zero point of a symmetric grid: the middle code.
    public var midpoint: Int32 { Int32(1) << (bits - 1) }
}

/// The per-group values of a group-quantized matrix, decoded from the source's own packing.
public struct GroupQuantizedParts: Sendable {
    /// `rows × groups` scales, `[r * groups + g]`, as f32 (exactly the stored values).
    public var scales: [Float]
    /// `rows × groups` zero points in the unsigned code domain, `[r * groups + g]`.
    public var zeros: [Int32]
    /// Per column, its group; `nil` when column `c` is in group `c / groupSize`.
    public var groupIndex: [Int32]?
    /// How the source stores its scales (f16, bf16 or f32).
    public var scaleType: DType
    /// `rows × groups` biases of an affine grid (MLX's `scale · code + bias`); when set, a value
    /// is `scale · code + bias` and `zeros` only records the code the bias stands nearest.
    public var biases: [Float]?

    public init(scales: [Float], zeros: [Int32], groupIndex: [Int32]?, scaleType: DType, biases: [Float]? = nil) {
        self.scales = scales
        self.zeros = zeros
        self.groupIndex = groupIndex
        self.scaleType = scaleType
        self.biases = biases
    }

    /// The group of column `c`.
    @inline(__always)
    public func group(ofColumn c: Int, groupSize: Int) -> Int {
        if let groupIndex { return Int(groupIndex[c]) }
        return c / groupSize
    }

    /// Whether every column is in group `c / groupSize` (true for `groupIndex == nil`).
    public func isContiguous(groupSize: Int) -> Bool {
        guard let groupIndex else { return true }
        for (c, g) in groupIndex.enumerated() where Int(g) != c / groupSize { return false }
        return true
    }
}

/// Where a group-quantized matrix comes from: a checkpoint's packed tensors (read lazily) or codes
/// made in memory. `format` names the source's flavour for messages and summaries.
public protocol GroupQuantizedSource: Sendable {
    var layout: GroupQuantizedLayout { get }
    var format: String { get }
    /// The scales, zeros and group index, read and checked.
    func parts() throws -> GroupQuantizedParts
    /// Every code of the matrix, row-major (`rows × cols`), unsigned.
    func codes() throws -> [UInt8]
}

/// Codes and parts already in memory (a quantizer's output, or tests).
public struct GroupQuantizedMatrix: GroupQuantizedSource {
    public let layout: GroupQuantizedLayout
    public let format: String
    public let storedParts: GroupQuantizedParts
    public let storedCodes: [UInt8]

    public init(layout: GroupQuantizedLayout, parts: GroupQuantizedParts, codes: [UInt8], format: String = "memory") {
        self.layout = layout
        self.storedParts = parts
        self.storedCodes = codes
        self.format = format
    }

    public func parts() throws -> GroupQuantizedParts { storedParts }
    public func codes() throws -> [UInt8] { storedCodes }
}

/// A group-quantized matrix with its rows reordered: row `r` is row `sourceRow(r)` of `base`.
public struct PermutedRowsSource: GroupQuantizedSource {
    public let base: any GroupQuantizedSource
    public let sourceRow: @Sendable (Int) -> Int
    public var layout: GroupQuantizedLayout { base.layout }
    public var format: String { base.format }

    public func parts() throws -> GroupQuantizedParts {
        var p = try base.parts()
        let l = layout
        let (scales, zeros, biases) = (p.scales, p.zeros, p.biases)
        for r in 0..<l.rows {
            let s = sourceRow(r)
            for g in 0..<l.groups {
                p.scales[r * l.groups + g] = scales[s * l.groups + g]
                p.zeros[r * l.groups + g] = zeros[s * l.groups + g]
                if let biases { p.biases![r * l.groups + g] = biases[s * l.groups + g] }
            }
        }
        return p
    }

    public func codes() throws -> [UInt8] {
        let c = try base.codes()
        let l = layout
        var out = [UInt8](repeating: 0, count: c.count)
        for r in 0..<l.rows {
            let s = sourceRow(r)
            for i in 0..<l.cols { out[r * l.cols + i] = c[s * l.cols + i] }
        }
        return out
    }
}

extension GroupQuantizedParts {
    /// `scale · (code − zero)` (or, with `biases`, `scale · code + bias`) for every value of the
    /// matrix, row-major.
    public func decode(codes: [UInt8], layout l: GroupQuantizedLayout) -> [Float] {
        var out = [Float](repeating: 0, count: l.rows * l.cols)
        out.withUnsafeMutableBufferPointer { o in
            codes.withUnsafeBufferPointer { q in
                for r in 0..<l.rows {
                    let base = r * l.cols, gBase = r * l.groups
                    for c in 0..<l.cols {
                        let g = gBase + group(ofColumn: c, groupSize: l.groupSize)
                        if let biases {
                            o[base + c] = scales[g] * Float(q[base + c]) + biases[g]
                        } else {
                            o[base + c] = scales[g] * Float(Int32(q[base + c]) - zeros[g])
                        }
                    }
                }
            }
        }
        return out
    }
}

/// A group-quantized matrix as an f32 tensor's storage: reading any range decodes the whole
/// matrix once (kept in a small cache shared by all such storages, so row-by-row readers such as
/// the Q/K permutation do not decode it again per row). The source stays reachable, so an exact
/// move (GGUF Q4_0/Q8_0/Q4_1) or a writer of the same flavour can take the codes as they are.
public struct GroupQuantizedStorage: TensorStorage {
    public let source: any GroupQuantizedSource
    private let token = WholeTensorCache.Token()

    public init(source: any GroupQuantizedSource) { self.source = source }

    public var byteCount: Int { source.layout.rows * source.layout.cols * 4 }

    public func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkRange(offset, buffer.count, "\(source.format) matrix")
        guard buffer.count > 0 else { return }
        let source = self.source
        let bytes = try WholeTensorCache.shared.bytes(for: token) {
            let l = source.layout
            let values = try source.parts().decode(codes: try source.codes(), layout: l)
            return values.withUnsafeBytes { Array($0) }
        }
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + buffer.count)]))
        }
    }

    /// The f32 tensor `name` whose values this source decodes to.
    public static func tensor(name: String, source: any GroupQuantizedSource) throws -> Tensor {
        try Tensor(
            name: name, dtype: .f32, shape: [source.layout.rows, source.layout.cols],
            storage: GroupQuantizedStorage(source: source))
    }
}

extension Tensor {
    /// The group-quantized source behind this tensor, when it is one read as it was stored.
    public var groupQuantizedSource: (any GroupQuantizedSource)? {
        (storage as? GroupQuantizedStorage)?.source
    }
}

/// Whole tensors made on demand and kept for the next few reads: bytes for the two most recently
/// used tokens (a matrix being streamed out row by row, and one more in flight).
public final class WholeTensorCache: @unchecked Sendable {
    public final class Token: Sendable {
        public init() {}
    }
    public static let shared = WholeTensorCache(slots: 2)

    private let lock = Mutex()
    /// Entries hold their token strongly, so a token's address cannot be reused by another
    /// token while its bytes are cached.
    private var entries: [(token: Token, bytes: [UInt8])] = []
    private let slots: Int

    public init(slots: Int) { self.slots = slots }

    /// The bytes for `token`, made by `make` when not cached. `make` runs outside the lock.
    public func bytes(for token: Token, make: () throws -> [UInt8]) throws -> [UInt8] {
        if let hit = lock.withLock({ () -> [UInt8]? in
            guard let i = entries.firstIndex(where: { $0.token === token }) else { return nil }
            let e = entries.remove(at: i)
            entries.insert(e, at: 0)
            return e.bytes
        }) {
            return hit
        }
        let made = try make()
        lock.withLock {
            entries.removeAll { $0.token === token }
            entries.insert((token, made), at: 0)
            if entries.count > slots { entries.removeLast(entries.count - slots) }
        }
        return made
    }
}

/// A tensor's bytes made whole by `make` on first read and served from `WholeTensorCache`.
public struct WholeProducedStorage: TensorStorage {
    public let byteCount: Int
    private let make: @Sendable () throws -> [UInt8]
    private let token = WholeTensorCache.Token()

    public init(byteCount: Int, make: @escaping @Sendable () throws -> [UInt8]) {
        self.byteCount = byteCount
        self.make = make
    }

    public func read(offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkRange(offset, buffer.count, "produced tensor")
        guard buffer.count > 0 else { return }
        let expected = byteCount
        let make = self.make
        let bytes = try WholeTensorCache.shared.bytes(for: token) {
            let b = try make()
            precondition(b.count == expected, "WholeProducedStorage: producer made \(b.count) bytes, expected \(expected)")
            return b
        }
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + buffer.count)]))
        }
    }
}
