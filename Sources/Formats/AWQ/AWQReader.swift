import TensorGraph

/// AWQ checkpoints in the GEMM layout (AutoAWQ's `version: "gemm"`, read only): per linear layer
/// `qweight` (I32 `[in, out / 8]`, codes packed along the *output* dimension), `qzeros` (I32
/// `[in / group, out / 8]`, packed the same way) and `scales` (`[in / group, out]`). The eight
/// 4-bit codes of a word are interleaved: the nibble at bit `4k` holds output `8w + order[k]`
/// with `order = [0, 2, 4, 6, 1, 3, 5, 7]`. A value is `scale · (code − zero)`; AWQ's zero points
/// are stored as they are (no GPTQ v1 offset).
public enum AWQ {
    /// Output offset of the nibble at bit `4k` within its word.
    public static let nibbleOrder = [0, 2, 4, 6, 1, 3, 5, 7]

    public struct Settings: Sendable, Equatable {
        public var bits: Int
        public var groupSize: Int?

        public static func parse(_ q: JSONValue, dir: String) throws(PackedCheckpointError) -> Settings {
            let bits = q["bits"]?.intValue ?? q["w_bit"]?.intValue ?? 4
            guard bits == 4 else {
                throw .badSetting(dir: dir, key: "bits", value: String(bits), reason: "AWQ GEMM checkpoints are read with 4 bits only")
            }
            let version = (q["version"]?.stringValue ?? "gemm").lowercased()
            guard version == "gemm" else {
                throw .badSetting(dir: dir, key: "version", value: version, reason: "only the GEMM layout is read (GEMV and Marlin pack differently)")
            }
            if let zp = q["zero_point"]?.boolValue, !zp {
                throw .badSetting(dir: dir, key: "zero_point", value: "false", reason: "AWQ GEMM without zero points is not read")
            }
            let gs = q["group_size"]?.intValue ?? q["q_group_size"]?.intValue ?? 128
            guard gs == -1 || gs > 0 else { throw .badSetting(dir: dir, key: "group_size", value: String(gs), reason: "must be positive or -1") }
            return Settings(bits: bits, groupSize: gs == -1 ? nil : gs)
        }
    }

    public static func lift(_ graph: TensorGraph, settings raw: JSONValue, dir: String = "") throws -> TensorGraph {
        let s = try Settings.parse(raw, dir: dir)
        var replaced: [String: Tensor?] = [:]
        for t in graph.tensors where t.name.hasSuffix(".qweight") {
            let prefix = String(t.name.dropLast(".qweight".count))
            let source = try Source(graph: graph, prefix: prefix, settings: s, dir: dir)
            replaced[t.name] = try GroupQuantizedStorage.tensor(name: prefix + ".weight", source: source)
            for part in ["qzeros", "scales"] { replaced["\(prefix).\(part)"] = .some(nil) }
        }
        for t in graph.tensors {
            for part in [".qzeros", ".scales"] where t.name.hasSuffix(part) && replaced[t.name] == nil {
                throw PackedCheckpointError.orphan(dir: dir, tensor: t.name, missing: String(t.name.dropLast(part.count)) + ".qweight")
            }
        }
        return try PackedCheckpoint.replacing(graph, replaced)
    }

    struct Source: GroupQuantizedSource {
        let layout: GroupQuantizedLayout
        let format = "AWQ GEMM int4"
        let qweight: Tensor, qzeros: Tensor, scales: Tensor

        init(graph: TensorGraph, prefix: String, settings s: Settings, dir: String) throws {
            let (qweight, qzeros, scales) = try PackedCheckpoint.requireQWeightSet(graph, prefix: prefix, dir: dir)
            let cols = qweight.shape[0], rows = qweight.shape[1] * 8
            let groupSize = s.groupSize ?? cols
            guard cols > 0, cols % groupSize == 0 else {
                throw PackedCheckpointError.groupSize(dir: dir, tensor: qweight.name, columns: cols, groupSize: groupSize)
            }
            let groups = cols / groupSize
            guard scales.shape == [groups, rows] else {
                // The outputs come from qweight's packed width: say so when that is what disagrees.
                if scales.shape.count == 2, scales.shape[0] == groups {
                    throw PackedCheckpointError.packedWidth(
                        dir: dir, tensor: qweight.name, shape: qweight.shape, bits: s.bits,
                        expected: "[\(cols), \(scales.shape[1] / 8)] for the \(scales.shape[1]) outputs of '\(scales.name)'")
                }
                throw PackedCheckpointError.badShape(
                    dir: dir, tensor: scales.name, shape: scales.shape, expected: "[\(groups), \(rows)] (\(cols) inputs / group size \(groupSize))")
            }
            guard qzeros.shape == [groups, rows / 8] else {
                throw PackedCheckpointError.packedWidth(dir: dir, tensor: qzeros.name, shape: qzeros.shape, bits: s.bits, expected: "[\(groups), \(rows / 8)]")
            }
            layout = GroupQuantizedLayout(rows: rows, cols: cols, bits: 4, groupSize: groupSize, groups: groups, symmetric: false)
            self.qweight = qweight
            self.qzeros = qzeros
            self.scales = scales
        }

        func parts() throws -> GroupQuantizedParts {
            let l = layout
            let s = try PackedCheckpoint.floats(scales)  // [groups, rows]
            let z = try PackedCheckpoint.words(qzeros)  // [groups, rows / 8]
            var scalesOut = [Float](repeating: 0, count: l.rows * l.groups)
            var zerosOut = [Int32](repeating: 0, count: l.rows * l.groups)
            for g in 0..<l.groups {
                for r in 0..<l.rows { scalesOut[r * l.groups + g] = s[g * l.rows + r] }
                for w in 0..<(l.rows / 8) {
                    let word = z[g * (l.rows / 8) + w]
                    for k in 0..<8 { zerosOut[(w * 8 + AWQ.nibbleOrder[k]) * l.groups + g] = Int32(WordPacking.code(word, k, bits: 4)) }
                }
            }
            return GroupQuantizedParts(scales: scalesOut, zeros: zerosOut, groupIndex: nil, scaleType: scales.dtype)
        }

        func codes() throws -> [UInt8] {
            let l = layout
            let w = try PackedCheckpoint.words(qweight)  // [cols, rows / 8]
            var out = [UInt8](repeating: 0, count: l.rows * l.cols)
            out.withUnsafeMutableBufferPointer { o in
                for c in 0..<l.cols {
                    for p in 0..<(l.rows / 8) {
                        let word = w[c * (l.rows / 8) + p]
                        for k in 0..<8 { o[(p * 8 + AWQ.nibbleOrder[k]) * l.cols + c] = WordPacking.code(word, k, bits: 4) }
                    }
                }
            }
            return out
        }
    }
}
