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
            let src = blocks.storage, sc = scales.storage
            return try (0..<n).map { k in
                let outRows = r / n
                // Output row q (over all experts) is Hugging Face row hf(q); rows increase with q.
                @Sendable func hf(_ q: Int) -> Int { (q / outRows) * r + (q % outRows) * n + k }
                let produced = ProducedStorage(byteCount: e * outRows * g * 17) { offset, buffer in
                    guard buffer.count > 0 else { return }
                    let b0 = offset / 17, b1 = (offset + buffer.count - 1) / 17 + 1
                    let first = hf(b0 / g), last = hf((b1 - 1) / g)
                    // The Hugging Face rows between the first and the last needed, read once.
                    let codes = try Span.read(src, from: first * g * 16, to: (last + 1) * g * 16)
                    let exps = try Span.read(sc, from: first * g, to: (last + 1) * g)
                    var block = [UInt8](repeating: 0, count: 17)
                    codes.withUnsafeBytes { c in
                        exps.withUnsafeBytes { x in
                            let out = buffer.baseAddress!
                            var bi = b0
                            while bi < b1 {
                                let row = bi / g, hfRow = hf(row)
                                let rowEnd = min(b1, (row + 1) * g)
                                var local = (hfRow - first) * g + bi % g
                                while bi < rowEnd {
                                    let start = bi * 17
                                    if start >= offset && start + 17 <= offset + buffer.count {
                                        // A whole block: straight into the output.
                                        let dst = out + (start - offset)
                                        dst.storeBytes(of: x[local], as: UInt8.self)
                                        ggmlNibbles(from: c.baseAddress! + local * 16, to: dst + 1)
                                    } else {
                                        block[0] = x[local]
                                        block.withUnsafeMutableBytes { ggmlNibbles(from: c.baseAddress! + local * 16, to: $0.baseAddress! + 1) }
                                        let lo = max(offset, start), hi = min(offset + buffer.count, start + 17)
                                        for p in lo..<hi { buffer[p - offset] = block[p - start] }
                                    }
                                    bi += 1
                                    local += 1
                                }
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
            let srcs = sources.map(\.storage)
            // Hugging Face row (over all experts) → its source k and row there; source rows increase with it.
            @Sendable func source(_ hfRow: Int) -> (k: Int, row: Int) {
                let ex = hfRow / r, within = hfRow % r
                return (within % n, ex * rows + within / n)
            }
            /// For Hugging Face rows lo..<hi: each source's rows from the first to the last needed.
            @Sendable func spans(_ lo: Int, _ hi: Int) throws -> (first: Int, bytes: [[UInt8]]) {
                let first = source(lo).row, last = source(hi - 1).row
                return (first, try srcs.map { try Span.read($0, from: first * g * 17, to: (last + 1) * g * 17) })
            }
            let blocks = ProducedStorage(byteCount: e * r * g * 16) { offset, buffer in
                guard buffer.count > 0 else { return }
                let h0 = offset / 16, h1 = (offset + buffer.count - 1) / 16 + 1
                let (first, bytes) = try spans(h0 / g, (h1 - 1) / g + 1)
                var out = [UInt8](repeating: 0, count: 16)
                for hb in h0..<h1 {
                    let (k, row) = source(hb / g)
                    let at = (row - first) * g + hb % g
                    bytes[k].withUnsafeBytes { hfNibbles(from: $0.baseAddress! + at * 17 + 1, into: &out) }
                    let lo = max(offset, hb * 16), hi = min(offset + buffer.count, hb * 16 + 16)
                    for p in lo..<hi { buffer[p - offset] = out[p - hb * 16] }
                }
            }
            let scales = ProducedStorage(byteCount: e * r * g) { offset, buffer in
                guard buffer.count > 0 else { return }
                let (first, bytes) = try spans(offset / g, (offset + buffer.count - 1) / g + 1)
                for i in 0..<buffer.count {
                    let hb = offset + i
                    let (k, row) = source(hb / g)
                    buffer[i] = bytes[k][((row - first) * g + hb % g) * 17]
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

    /// ggml's block_mxfp4 code bytes (16, at `dst`) from a Hugging Face block's 16 bytes. Hugging
    /// Face byte m holds elements 2m (low) and 2m+1 (high); ggml byte j holds j (low) and j+16
    /// (high): ggml byte 2m = HF[m] low | HF[8+m] low << 4, byte 2m+1 = HF[m] high | HF[8+m] high.
    @inline(__always)
    static func ggmlNibbles(from hf: UnsafeRawPointer, to dst: UnsafeMutableRawPointer) {
        let a = hf.loadUnaligned(as: UInt64.self), b = hf.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let m: UInt64 = 0x0F0F_0F0F_0F0F_0F0F
        let even = (a & m) | (b & m) << 4          // bytes 2m
        let odd = (a >> 4) & m | (b & ~m)          // bytes 2m+1
        for i in 0..<8 {
            dst.storeBytes(of: UInt8(truncatingIfNeeded: even >> (8 * i)), toByteOffset: 2 * i, as: UInt8.self)
            dst.storeBytes(of: UInt8(truncatingIfNeeded: odd >> (8 * i)), toByteOffset: 2 * i + 1, as: UInt8.self)
        }
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
        let srcs = ts.map(\.storage)
        let count = shape.reduce(1, *)
        let produced = ProducedStorage(byteCount: count * size) { offset, buffer in
            guard buffer.count > 0 else { return }
            let e0 = offset / size, e1 = (offset + buffer.count - 1) / size + 1
            // First pass: the source elements the range needs, per source; then one read each.
            var lo = [Int](repeating: Int.max, count: srcs.count), hi = [Int](repeating: -1, count: srcs.count)
            for i in e0..<e1 {
                let (k, at) = pick(i)
                lo[k] = min(lo[k], at)
                hi[k] = max(hi[k], at)
            }
            let spans = try srcs.indices.map { k in hi[k] < 0 ? [] : try Span.read(srcs[k], from: lo[k] * size, to: (hi[k] + 1) * size) }
            for i in e0..<e1 {
                let (k, at) = pick(i)
                let start = max(offset, i * size), end = min(offset + buffer.count, i * size + size)
                let from = (at - lo[k]) * size + (start - i * size)
                for p in 0..<(end - start) { buffer[start - offset + p] = spans[k][from + p] }
            }
        }
        return try Tensor(name: name, dtype: ts[0].dtype, shape: shape, storage: produced)
    }

    /// Bytes lo..<hi of a tensor's storage: copied from the mapping when the file is mapped,
    /// read otherwise. Each producer reads only the span its output range needs, so memory stays
    /// near the writer's buffer whatever the model's size.
    enum Span {
        static func read(_ storage: any TensorStorage, from lo: Int, to hi: Int) throws -> [UInt8] {
            guard hi > lo else { return [] }
            if let m = try storage.mappedBytes() { return Array(UnsafeRawBufferPointer(rebasing: m[lo..<hi])) }
            return try [UInt8](unsafeUninitializedCapacity: hi - lo) { b, n in
                try storage.read(offset: lo, into: UnsafeMutableRawBufferPointer(b))
                n = hi - lo
            }
        }
    }
}
