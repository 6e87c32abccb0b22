import Foundation
import Formats
import Quantization
import TensorGraph

/// Conversions between Hugging Face and GGUF tensors that are not one for one (a table's
/// `tensor_groups`): two source tensors → one (an MXFP4 blocks + scales pair → one ggml MXFP4
/// tensor), one → two (gate and up interleaved in one tensor → `ffn_gate_exps` and
/// `ffn_up_exps`), and back. Every result is lazy: its bytes are made range by range as a writer
/// reads them, from the mapped source when it is mapped.
public enum TensorGroups {
    public enum Transform: String, Sendable {
        /// Hugging Face MXFP4 pair — `blocks` u8 [E, R, G, 16] (two fp4 codes a byte, element
        /// 2j in the low nibble of byte j) and `scales` u8 [E, R, G] (E8M0) — ↔ N ggml MXFP4
        /// tensors [E, R/N, G·32] (block: E8M0 byte, then byte j = element j | element j+16 << 4).
        /// Hugging Face rows alternate between the N outputs (row r → output r mod N). The codes
        /// and the exponent byte move unchanged: no values are computed.
        case mxfp4Pair = "mxfp4_pair"
        /// Float experts [E, in, N·out], [in, out] per expert with the outputs' columns
        /// alternating, ↔ N × [E, out, in] (GGUF's [out, in] rows per expert).
        case expertsTransposed = "experts_transposed"
        /// [..., N·k] with the last axis alternating between the outputs ↔ N × [..., k].
        case interleavedLast = "interleaved_last"
    }

    public enum GroupError: Error, CustomStringConvertible {
        case missingPartner(tensor: String, partner: String)
        case badType(tensor: String, dtype: DType, expected: String)
        case badShape(tensor: String, shape: [Int], reason: String)
        case mismatch(tensor: String, shape: [Int], other: String, otherShape: [Int], reason: String)

        public var description: String {
            switch self {
            case let .missingPartner(t, p): return "tensor '\(Echo.value(t))' comes without '\(Echo.value(p))', which it needs"
            case let .badType(t, d, e): return "tensor '\(Echo.value(t))' is \(d.displayName), expected \(e)"
            case let .badShape(t, s, r): return "tensor '\(Echo.value(t))' \(s): \(Echo.text(r))"
            case let .mismatch(t, s, o, os, r): return "tensor '\(Echo.value(t))' \(s) does not match '\(Echo.value(o))' \(os): \(Echo.text(r))"
            }
        }
    }

    // MARK: Hugging Face → GGUF

    /// The GGUF tensors of a group (named `ggufNames`), from its Hugging Face tensors in the
    /// table's order.
    public static func toGGUF(_ t: Transform, sources: [Tensor], ggufNames: [String]) throws -> [Tensor] {
        let n = ggufNames.count
        switch t {
        case .mxfp4Pair:
            let (blocks, scales) = (sources[0], sources[1])
            guard blocks.dtype == .u8 else { throw GroupError.badType(tensor: blocks.name, dtype: blocks.dtype, expected: "u8 (MXFP4 blocks)") }
            guard scales.dtype == .u8 else { throw GroupError.badType(tensor: scales.name, dtype: scales.dtype, expected: "u8 (E8M0 scales)") }
            guard blocks.shape.count == 4, blocks.shape[3] == 16 else {
                throw GroupError.badShape(tensor: blocks.name, shape: blocks.shape, reason: "MXFP4 blocks must be [experts, rows, columns/32, 16]")
            }
            guard scales.shape == Array(blocks.shape.prefix(3)) else {
                throw GroupError.mismatch(tensor: scales.name, shape: scales.shape, other: blocks.name, otherShape: blocks.shape,
                                          reason: "MXFP4 scales must be [experts, rows, columns/32], one per block")
            }
            let (e, r, g) = (blocks.shape[0], blocks.shape[1], blocks.shape[2])
            guard r % n == 0 else {
                throw GroupError.badShape(tensor: blocks.name, shape: blocks.shape, reason: "\(r) rows do not split into \(n) interleaved tensors")
            }
            let src = Source(blocks.storage), sc = Source(scales.storage)
            return try (0..<n).map { k in
                let outRows = r / n
                let produced = ProducedStorage(byteCount: e * outRows * g * 17) { offset, buffer in
                    try src.withBytes { b in
                        try sc.withBytes { s in
                            var done = 0
                            var block = [UInt8](repeating: 0, count: 17)
                            while done < buffer.count {
                                let pos = offset + done
                                let bi = pos / 17, within = pos % 17
                                let row = bi / g, gi = bi % g
                                let hfRow = (row / outRows) * r + (row % outRows) * n + k
                                let at = hfRow * g + gi
                                block[0] = s[at]
                                ggmlNibbles(from: b.baseAddress! + at * 16, into: &block)
                                let m = min(17 - within, buffer.count - done)
                                for i in 0..<m { buffer[done + i] = block[within + i] }
                                done += m
                            }
                        }
                    }
                }
                return try Tensor(name: ggufNames[k], dtype: .mxfp4, shape: [e, outRows, g * 32], storage: produced)
            }
        case .expertsTransposed:
            let s = sources[0]
            guard Tensor.castableTypes.contains(s.dtype), s.shape.count == 3 else {
                throw GroupError.badShape(tensor: s.name, shape: s.shape, reason: "expected float experts [experts, in, out]")
            }
            let (e, inDim, cols) = (s.shape[0], s.shape[1], s.shape[2])
            guard cols % n == 0 else { throw GroupError.badShape(tensor: s.name, shape: s.shape, reason: "\(cols) columns do not split into \(n) interleaved tensors") }
            let out = cols / n
            return try (0..<n).map { k in
                // Output [e, o, i] ← source [e, i, o·n + k].
                try gathered(s, name: ggufNames[k], shape: [e, out, inDim]) { idx in
                    let i = idx % inDim, rest = idx / inDim
                    let o = rest % out, ex = rest / out
                    return (ex * inDim + i) * cols + o * n + k
                }
            }
        case .interleavedLast:
            let s = sources[0]
            guard Tensor.castableTypes.contains(s.dtype), let last = s.shape.last, last % n == 0 else {
                throw GroupError.badShape(tensor: s.name, shape: s.shape, reason: "expected a float tensor whose last axis splits into \(n) interleaved tensors")
            }
            let k0 = last / n
            return try (0..<n).map { k in
                try gathered(s, name: ggufNames[k], shape: Array(s.shape.dropLast()) + [k0]) { idx in (idx / k0) * last + (idx % k0) * n + k }
            }
        }
    }

    // MARK: GGUF → Hugging Face

    /// The Hugging Face tensors of a group (named `hfNames`), from its GGUF tensors in the
    /// table's order. `dtype`: the float type for the float forms (nil keeps the GGUF type,
    /// dequantizing block types to f32).
    public static func toHF(_ t: Transform, sources: [Tensor], hfNames: [String], dtype: DType?) throws -> [Tensor] {
        let n = sources.count
        let first = sources[0]
        for s in sources.dropFirst() where s.shape != first.shape || s.dtype != first.dtype {
            throw GroupError.mismatch(tensor: s.name, shape: s.shape, other: first.name, otherShape: first.shape,
                                      reason: "the tensors of one group must have the same type and shape (\(s.dtype.displayName) vs \(first.dtype.displayName))")
        }
        switch t {
        case .mxfp4Pair:
            guard first.dtype == .mxfp4, first.shape.count == 3, first.shape[2] % 32 == 0 else {
                throw GroupError.badType(tensor: first.name, dtype: first.dtype, expected: "MXFP4 [experts, rows, columns]")
            }
            let (e, rows, g) = (first.shape[0], first.shape[1], first.shape[2] / 32)
            let r = rows * n
            let srcs = sources.map { Source($0.storage) }
            @Sendable func locate(_ hfBlock: Int) -> (k: Int, at: Int) {
                // hfBlock = (ex · r + hfRow) · g + gi
                let gi = hfBlock % g, rowAll = hfBlock / g
                let ex = rowAll / r, hfRow = rowAll % r
                return (hfRow % n, (ex * rows + hfRow / n) * g + gi)
            }
            let blocks = ProducedStorage(byteCount: e * r * g * 16) { offset, buffer in
                var done = 0
                var out = [UInt8](repeating: 0, count: 16)
                while done < buffer.count {
                    let pos = offset + done
                    let hb = pos / 16, within = pos % 16
                    let (k, at) = locate(hb)
                    try srcs[k].withBytes { b in hfNibbles(from: b.baseAddress! + at * 17 + 1, into: &out) }
                    let m = min(16 - within, buffer.count - done)
                    for i in 0..<m { buffer[done + i] = out[within + i] }
                    done += m
                }
            }
            let scales = ProducedStorage(byteCount: e * r * g) { offset, buffer in
                for i in 0..<buffer.count {
                    let (k, at) = locate(offset + i)
                    buffer[i] = try srcs[k].withBytes { $0[at * 17] }
                }
            }
            return [try Tensor(name: hfNames[0], dtype: .u8, shape: [e, r, g, 16], storage: blocks),
                    try Tensor(name: hfNames[1], dtype: .u8, shape: [e, r, g], storage: scales)]
        case .expertsTransposed:
            let fs = try sources.map { try floatSource($0, dtype: dtype) }
            guard first.shape.count == 3 else { throw GroupError.badShape(tensor: first.name, shape: first.shape, reason: "expected experts [experts, out, in]") }
            let (e, out, inDim) = (first.shape[0], first.shape[1], first.shape[2])
            let cols = out * n
            // Result [e, i, c] ← source c mod n, element [e, c / n, i].
            return [try gatheredMany(fs, name: hfNames[0], shape: [e, inDim, cols]) { idx in
                let c = idx % cols, rest = idx / cols
                let i = rest % inDim, ex = rest / inDim
                return (c % n, (ex * out + c / n) * inDim + i)
            }]
        case .interleavedLast:
            let fs = try sources.map { try floatSource($0, dtype: dtype) }
            guard let k0 = first.shape.last else { throw GroupError.badShape(tensor: first.name, shape: first.shape, reason: "expected at least one axis") }
            let last = k0 * n
            return [try gatheredMany(fs, name: hfNames[0], shape: Array(first.shape.dropLast()) + [last]) { idx in
                let c = idx % last
                return (c % n, (idx / last) * k0 + c / n)
            }]
        }
    }

    // MARK: Helpers

    /// ggml's block_mxfp4 code bytes from a Hugging Face block's 16 bytes (`out[1...16]`).
    @inline(__always)
    static func ggmlNibbles(from hf: UnsafeRawPointer, into out: inout [UInt8]) {
        func code(_ i: Int) -> UInt8 {
            let b = hf.load(fromByteOffset: i >> 1, as: UInt8.self)
            return i & 1 == 0 ? b & 0x0F : b >> 4
        }
        for j in 0..<16 { out[1 + j] = code(j) | code(j + 16) << 4 }
    }

    /// A Hugging Face block's 16 bytes from ggml's code bytes.
    @inline(__always)
    static func hfNibbles(from qs: UnsafeRawPointer, into out: inout [UInt8]) {
        func code(_ i: Int) -> UInt8 {
            let b = qs.load(fromByteOffset: i & 15, as: UInt8.self)
            return i < 16 ? b & 0x0F : b >> 4
        }
        for j in 0..<16 { out[j] = code(2 * j) | code(2 * j + 1) << 4 }
    }

    static func floatSource(_ t: Tensor, dtype: DType?) throws -> Tensor {
        if t.dtype.isQuantized { return try t.dequantized(to: dtype ?? .f32) }
        guard Tensor.castableTypes.contains(t.dtype) else { throw GroupError.badType(tensor: t.name, dtype: t.dtype, expected: "a float or block type") }
        if let dtype, dtype != t.dtype { return try t.cast(to: dtype) }
        return t
    }

    /// A tensor of `shape` whose element `i` is element `sourceElement(i)` of `t` (same type).
    static func gathered(_ t: Tensor, name: String, shape: [Int], sourceElement: @escaping @Sendable (Int) -> Int) throws -> Tensor {
        try gatheredMany([t], name: name, shape: shape) { (0, sourceElement($0)) }
    }

    /// A tensor of `shape` whose element `i` is element `at` of source `k`, `(k, at) = pick(i)`.
    static func gatheredMany(_ ts: [Tensor], name: String, shape: [Int], pick: @escaping @Sendable (Int) -> (Int, Int)) throws -> Tensor {
        let size = ts[0].dtype.bytesPerBlock
        let srcs = ts.map { Source($0.storage) }
        let count = shape.reduce(1, *)
        let produced = ProducedStorage(byteCount: count * size) { offset, buffer in
            var done = 0
            while done < buffer.count {
                let pos = offset + done
                let e = pos / size, within = pos % size
                let (k, at) = pick(e)
                let m = min(size - within, buffer.count - done)
                try srcs[k].withBytes { src in
                    (buffer.baseAddress! + done).copyMemory(from: src.baseAddress! + at * size + within, byteCount: m)
                }
                done += m
            }
        }
        return try Tensor(name: name, dtype: ts[0].dtype, shape: shape, storage: produced)
    }

    /// Source bytes: the mapped region, or a copy made on first use.
    final class Source: @unchecked Sendable {
        let storage: any TensorStorage
        private var copy: [UInt8]?
        private let lock = NSLock()

        init(_ storage: any TensorStorage) { self.storage = storage }

        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
            if let mapped = try storage.mappedBytes() { return try body(mapped) }
            lock.lock()
            let bytes: [UInt8]
            do {
                if copy == nil { copy = try storage.readAll() }
                bytes = copy!
                lock.unlock()
            } catch {
                lock.unlock()
                throw error
            }
            return try bytes.withUnsafeBytes { try body($0) }
        }
    }
}
