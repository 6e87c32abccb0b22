import Foundation
import Formats
import TensorGraph

/// An importance matrix: for every linear layer's weight, the sum over calibration tokens of each
/// input column's squared activation, and the number of tokens. The file layout is the one
/// llama.cpp's `llama-imatrix` writes in its GGUF mode, so each tool reads the other's:
///
///     general.type         string     "imatrix"
///     imatrix.datasets     [string]   the calibration text file(s)
///     imatrix.chunk_count  uint32     chunks evaluated
///     imatrix.chunk_size   uint32     tokens per chunk
///     <weight>.in_sum2     F32 [columns]   Σ x² per input column
///     <weight>.counts      F32 [1]         tokens seen
///
/// An expert weight ([experts, rows, columns]) has `in_sum2` [experts, columns] and `counts`
/// [experts, 1]: each expert's sums and the tokens routed to it, as llama-imatrix writes them.
///
/// entries sorted by weight name. The legacy `.dat` layout (an int32 entry count; per entry the
/// name, the call count and the values already divided by the token count and multiplied by the
/// call count; then the chunk count and dataset name) is read too.
public struct ImportanceMatrix: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// Σ x² per input column (the matrices of an expert tensor one after another).
        public var sums: [Float]
        /// Tokens seen, one per matrix (one for a dense weight).
        public var counts: [Float]

        public init(sums: [Float], counts: [Float]) {
            self.sums = sums
            self.counts = counts
        }

        /// The mean square of each column (sums / count), what quantizers weigh errors by; a
        /// matrix (an expert calibration never routed to) that saw no token gets 1 everywhere, a
        /// neutral prior, so the tensor keeps its other experts' importances.
        public var meanSquares: [Float] {
            let n = max(1, counts.count)
            let per = sums.count / n
            var out = [Float](repeating: 1, count: sums.count)
            for m in 0..<n where m < counts.count && counts[m] > 0 {
                for i in 0..<per { out[m * per + i] = sums[m * per + i] / counts[m] }
            }
            return out
        }
    }

    public var entries: [String: Entry]
    public var datasets: [String]
    public var chunkCount: Int
    public var chunkSize: Int

    public init(entries: [String: Entry] = [:], datasets: [String] = [], chunkCount: Int = 0, chunkSize: Int = 0) {
        self.entries = entries
        self.datasets = datasets
        self.chunkCount = chunkCount
        self.chunkSize = chunkSize
    }

    /// The importance of `weight`'s input columns (mean squares), when the matrix has an entry.
    public func importance(for weight: String) -> [Float]? { entries[weight]?.meanSquares }

    // MARK: - GGUF

    public static let sumsSuffix = ".in_sum2"
    public static let countsSuffix = ".counts"

    /// The matrix as a graph for `GGUFWriter` (tensors sorted by weight name, as llama-imatrix
    /// writes them; `in_sum2` is 1-D [columns] and `counts` 1-D [1] for a dense weight, the way
    /// ggml stores a [columns × 1] tensor).
    public func graph() throws -> TensorGraph {
        var metadata = Metadata()
        metadata["general.type"] = .string("imatrix")
        metadata["imatrix.datasets"] = .array(elementType: .string, values: datasets.map { .string($0) })
        metadata["imatrix.chunk_count"] = .uint32(UInt32(clamping: chunkCount))
        metadata["imatrix.chunk_size"] = .uint32(UInt32(clamping: chunkSize))
        var graph = try TensorGraph(metadata: metadata)
        for name in entries.keys.sorted() {
            let e = entries[name]!
            let n = max(1, e.counts.count)
            let sumsShape = n == 1 ? [e.sums.count] : [n, e.sums.count / n]
            // llama-imatrix: counts ne = (1, n), i.e. [n, 1] for an expert weight.
            let countsShape = n == 1 ? [1] : [n, 1]
            try graph.append(Tensor(name: name + Self.sumsSuffix, dtype: .f32, shape: sumsShape, storage: MemoryStorage(Self.bytes(e.sums))))
            try graph.append(Tensor(name: name + Self.countsSuffix, dtype: .f32, shape: countsShape, storage: MemoryStorage(Self.bytes(e.counts))))
        }
        return graph
    }

    /// Writes the matrix as an imatrix GGUF (published atomically; an existing file is an error
    /// unless `replace`).
    public func write(to path: String, replace: Bool = false) throws {
        try GGUFWriter.write(graph(), to: path, replace: replace)
    }

    /// Reads an imatrix GGUF (llama-imatrix's or ours) or a legacy `.dat` file.
    public static func read(_ path: String) throws -> ImportanceMatrix {
        let file = try ReadableFile(path: path)
        if file.size >= 4, try file.readBytes(at: 0, count: 4) == Array("GGUF".utf8) {
            return try readGGUF(path)
        }
        return try readLegacy(path, file: file)
    }

    static func readGGUF(_ path: String) throws -> ImportanceMatrix {
        let g = try GGUFReader.read(path)
        var m = ImportanceMatrix()
        if case let .array(_, values)? = g.metadata["imatrix.datasets"] {
            m.datasets = values.compactMap(\.stringValue)
        }
        m.chunkCount = g.metadata["imatrix.chunk_count"]?.intValue ?? 0
        m.chunkSize = g.metadata["imatrix.chunk_size"]?.intValue ?? 0
        var sums: [String: [Float]] = [:], counts: [String: [Float]] = [:]
        for t in g.tensors {
            guard t.dtype == .f32 else {
                throw CalibrationError.badImportanceMatrix(path: path, reason: "tensor '\(t.name)' is \(t.dtype.displayName), not F32")
            }
            if t.name.hasSuffix(sumsSuffix) {
                sums[String(t.name.dropLast(sumsSuffix.count))] = try floats(t)
            } else if t.name.hasSuffix(countsSuffix) {
                counts[String(t.name.dropLast(countsSuffix.count))] = try floats(t).map { Float(Int(($0).rounded())) }
            }
        }
        for (name, s) in sums {
            guard let c = counts[name], !c.isEmpty, s.count % c.count == 0 else {
                throw CalibrationError.badImportanceMatrix(path: path, reason: "'\(name)' has sums but no matching counts")
            }
            m.entries[name] = Entry(sums: s, counts: c)
        }
        guard !m.entries.isEmpty else {
            throw CalibrationError.badImportanceMatrix(path: path, reason: "no <weight>.in_sum2 / <weight>.counts tensors")
        }
        return m
    }

    static func readLegacy(_ path: String, file: ReadableFile) throws -> ImportanceMatrix {
        var offset = 0
        func int32() throws -> Int32 {
            guard offset + 4 <= file.size else {
                throw CalibrationError.badImportanceMatrix(path: path, reason: "truncated at byte \(offset)")
            }
            let b = try file.readBytes(at: offset, count: 4)
            offset += 4
            return Int32(bitPattern: UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24)
        }
        func string(_ n: Int32) throws -> String {
            guard n >= 0, offset + Int(n) <= file.size else {
                throw CalibrationError.badImportanceMatrix(path: path, reason: "bad string length \(n) at byte \(offset)")
            }
            let b = try file.readBytes(at: offset, count: Int(n))
            offset += Int(n)
            return String(decoding: b, as: UTF8.self)
        }
        let n = try int32()
        guard n >= 1, n < 1 << 20 else {
            throw CalibrationError.badImportanceMatrix(path: path, reason: "not an imatrix GGUF, and not a legacy file (\(n) entries)")
        }
        var m = ImportanceMatrix()
        for _ in 0..<n {
            let name = try string(int32())
            let ncall = try int32()
            let nval = try int32()
            guard nval >= 1, offset + Int(nval) * 4 <= file.size else {
                throw CalibrationError.badImportanceMatrix(path: path, reason: "entry '\(name)': bad value count \(nval)")
            }
            let bytes = try file.readBytes(at: offset, count: Int(nval) * 4)
            offset += Int(nval) * 4
            let values = stride(from: 0, to: bytes.count, by: 4).map {
                Float(bitPattern: UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24)
            }
            // Legacy values are mean squares × ncall: keep them as sums over `ncall` "tokens",
            // so that sums / counts is the mean square again.
            m.entries[name] = Entry(sums: values, counts: [Float(max(0, ncall))])
        }
        if offset + 4 <= file.size {
            m.chunkCount = Int(try int32())
            if offset + 4 <= file.size {
                let len = try int32()
                if len > 0 { m.datasets = [try string(len)] }
            }
        }
        return m
    }

    static func floats(_ t: Tensor) throws -> [Float] {
        let raw = try t.storage.readAll()
        return stride(from: 0, to: raw.count, by: 4).map {
            Float(bitPattern: UInt32(raw[$0]) | UInt32(raw[$0 + 1]) << 8 | UInt32(raw[$0 + 2]) << 16 | UInt32(raw[$0 + 3]) << 24)
        }
    }

    static func bytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }
}

/// Failures of calibration and calibrated quantization.
public enum CalibrationError: Error, CustomStringConvertible {
    case badImportanceMatrix(path: String, reason: String)
    case badRecipe(path: String, reason: String)
    case badInput(String)
    case numerical(tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .badImportanceMatrix(path, reason): return "\(path): not a usable importance matrix: \(reason)"
        case let .badRecipe(path, reason): return "\(path): bad quantization recipe: \(reason)"
        case let .badInput(what): return what
        case let .numerical(tensor, reason): return "tensor '\(tensor)': \(reason)"
        }
    }
}
