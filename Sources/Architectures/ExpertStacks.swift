import Formats
import Quantization
import TensorGraph

/// Experts stored one tensor per expert in the checkpoint (`mlp.experts.{xid}.gate_proj.weight`,
/// Qwen3-MoE, Mixtral) ↔ one GGUF tensor with the experts as its outermost dimension
/// (`blk.{bid}.ffn_gate_exps.weight`, [experts, rows, columns]), as llama.cpp's converter stacks
/// them (a table's `expert_stacks`). Lazy both ways: the stacked tensor's bytes are the experts'
/// bytes one after the other, read range by range.
public enum ExpertStacks {
    /// A Hugging Face name with a `{bid}` and an `{xid}` placeholder.
    public struct Pattern: Sendable, CustomStringConvertible {
        let parts: [String]  // before {bid}, between {bid} and {xid}, after {xid}

        public init?(_ text: String) {
            guard let b = text.range(of: "{bid}"), let x = text.range(of: "{xid}"), b.upperBound <= x.lowerBound else { return nil }
            parts = [String(text[..<b.lowerBound]), String(text[b.upperBound..<x.lowerBound]), String(text[x.upperBound...])]
        }

        /// (block, expert) when `name` matches.
        public func match(_ name: String) -> (bid: Int, xid: Int)? {
            guard name.hasPrefix(parts[0]), name.hasSuffix(parts[2]), name.count > parts[0].count + parts[2].count else { return nil }
            let middle = name.dropFirst(parts[0].count).dropLast(parts[2].count)
            guard let r = middle.range(of: parts[1]) else { return nil }
            let (b, x) = (middle[..<r.lowerBound], middle[r.upperBound...])
            guard !b.isEmpty, !x.isEmpty, (b + x).allSatisfy({ $0.isASCII && $0.isNumber }), let bid = Int(b), let xid = Int(x) else { return nil }
            return (bid, xid)
        }

        public func fill(_ bid: Int, _ xid: Int) -> String { parts[0] + String(bid) + parts[1] + String(xid) + parts[2] }
        public var description: String { parts[0] + "{bid}" + parts[1] + "{xid}" + parts[2] }
    }

    public struct Rule: Sendable {
        public let hf: Pattern
        public let gguf: NamePattern
    }

    public enum StackError: Error, CustomStringConvertible {
        case missingExpert(tensor: String, missing: String)
        case mismatch(tensor: String, dtype: DType, shape: [Int], first: String, firstDType: DType, firstShape: [Int])
        case count(tensor: String, found: Int, expected: Int)

        public var description: String {
            switch self {
            case let .missingExpert(t, m): return "expert tensor '\(Echo.value(t))' comes without '\(Echo.value(m))'"
            case let .mismatch(t, d, s, f, fd, fs):
                return "expert tensor '\(Echo.value(t))' is \(d.displayName) \(s), but '\(Echo.value(f))' is \(fd.displayName) \(fs): every expert must have the same type and shape"
            case let .count(t, found, expected):
                return "'\(Echo.value(t))': the checkpoint has \(found) experts in this layer, the configuration \(expected)"
            }
        }
    }

    /// The GGUF tensor of block `bid` stacking every expert of `rule` found in `hf` (names with
    /// `prefix` in front), checked for gaps, equal types and shapes, and `expected` experts.
    static func stacked(_ hf: TensorGraph, rule: Rule, bid: Int, prefix: String, expected: Int?) throws -> Tensor {
        var experts: [Tensor] = []
        while let t = hf[prefix + rule.hf.fill(bid, experts.count)] { experts.append(t) }
        let first = experts[0]
        for t in experts.dropFirst() where t.dtype != first.dtype || t.shape != first.shape {
            throw StackError.mismatch(tensor: t.name, dtype: t.dtype, shape: t.shape, first: first.name, firstDType: first.dtype, firstShape: first.shape)
        }
        // A higher expert number after a gap.
        for t in hf.tensors {
            guard t.name.hasPrefix(prefix), let (b, x) = rule.hf.match(String(t.name.dropFirst(prefix.count))), b == bid, x >= experts.count else { continue }
            throw StackError.missingExpert(tensor: t.name, missing: prefix + rule.hf.fill(bid, experts.count))
        }
        if let expected, experts.count != expected {
            throw StackError.count(tensor: first.name, found: experts.count, expected: expected)
        }
        let per = first.byteCount
        let storages = experts.map(\.storage)
        let produced = ProducedStorage(byteCount: per * experts.count) { offset, buffer in
            var done = 0
            while done < buffer.count {
                let pos = offset + done
                let e = pos / per, within = pos % per
                let n = min(per - within, buffer.count - done)
                try storages[e].read(offset: within, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)]))
                done += n
            }
        }
        return try Tensor(name: rule.gguf.fill(bid), dtype: first.dtype, shape: [experts.count] + first.shape, storage: produced)
    }

    /// The Hugging Face tensors (one per expert) of a stacked GGUF tensor; quantized tensors are
    /// dequantized to `dtype` (f32 when nil), float ones cast to `dtype` when given.
    static func unstacked(_ t: Tensor, rule: Rule, bid: Int, prefix: String, dtype: DType?) throws -> [Tensor] {
        guard t.shape.count >= 2 else {
            throw ArchitectureError.badShape(tensor: t.name, shape: t.shape, reason: "a stack of experts needs [experts, …]")
        }
        var f = t
        if f.dtype.isQuantized { f = try f.dequantized(to: dtype ?? .f32) } else if let dtype, Tensor.castableTypes.contains(f.dtype) { f = try f.cast(to: dtype) }
        let experts = f.shape[0], shape = Array(f.shape.dropFirst())
        let per = f.byteCount / experts
        let source = f.storage
        return try (0..<experts).map { e in
            let produced = ProducedStorage(byteCount: per) { offset, buffer in
                try source.read(offset: e * per + offset, into: buffer)
            }
            return try Tensor(name: prefix + rule.hf.fill(bid, e), dtype: f.dtype, shape: shape, storage: produced)
        }
    }
}
