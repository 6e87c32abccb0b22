import TensorGraph

/// GPTQ checkpoints (AutoGPTQ / GPTQModel, as transformers and vLLM load them): per linear layer
/// `qweight` (I32 `[in / (32/bits), out]`, codes packed along the input dimension, the first in
/// the lowest bits), `qzeros` (I32 `[groups, out / (32/bits)]`, packed along the output
/// dimension), `scales` (`[groups, out]`, f16 as a rule) and `g_idx` (I32 `[in]`, each input
/// column's group). A value is `scales[g, o] · (code − zero[g, o])` with `g = g_idx[i]`.
///
/// `checkpoint_format` `gptq` (v1, the default) stores every zero point minus one (GPTQModel adds
/// the one back modulo 2^bits, which is what we do); `gptq_v2` stores it as it is. `desc_act`
/// checkpoints order the groups by activation, so `g_idx` is not `i / group_size`.
public enum GPTQ {

    public enum CheckpointFormat: String, Sendable {
        case v1 = "gptq"
        case v2 = "gptq_v2"
    }

    public struct Settings: Sendable, Equatable {
        public var bits: Int
        /// `nil` for `group_size: -1` (one group per row).
        public var groupSize: Int?
        public var descAct: Bool
        public var symmetric: Bool
        public var format: CheckpointFormat

        public init(bits: Int, groupSize: Int?, descAct: Bool = false, symmetric: Bool = true, format: CheckpointFormat = .v1) {
            self.bits = bits
            self.groupSize = groupSize
            self.descAct = descAct
            self.symmetric = symmetric
            self.format = format
        }

        /// Reads `quantization_config` (or AutoGPTQ's `quantize_config.json`).
        public static func parse(_ q: JSONValue, dir: String) throws(PackedCheckpointError) -> Settings {
            guard let bits = q["bits"]?.intValue else {
                throw .badSetting(dir: dir, key: "bits", value: q["bits"].map { Echo.json($0) } ?? "(missing)", reason: "an integer is required")
            }
            guard PackedCheckpoint.packableBits.contains(bits) else {
                throw .badSetting(dir: dir, key: "bits", value: String(bits), reason: "only 2, 4 and 8 bits (whole codes per 32-bit word) are read")
            }
            let gs = q["group_size"]?.intValue ?? -1
            guard gs == -1 || gs > 0 else {
                throw .badSetting(dir: dir, key: "group_size", value: String(gs), reason: "must be positive or -1")
            }
            let formatText = (q["checkpoint_format"]?.stringValue ?? q["format"]?.stringValue ?? "gptq").lowercased()
            guard let format = CheckpointFormat(rawValue: formatText) else {
                throw .badSetting(
                    dir: dir, key: "checkpoint_format", value: formatText,
                    reason: "only gptq (v1) and gptq_v2 packing are read")
            }
            return Settings(
                bits: bits, groupSize: gs == -1 ? nil : gs, descAct: q["desc_act"]?.boolValue ?? false,
                symmetric: q["sym"]?.boolValue ?? true, format: format)
        }
    }

    /// Replaces every `qweight`/`qzeros`/`scales`/`g_idx` set in `graph` (read from `dir`) by one
    /// f32 tensor `PREFIX.weight` that decodes them (`GroupQuantizedStorage`).
    public static func lift(_ graph: TensorGraph, settings raw: JSONValue, dir: String = "") throws -> TensorGraph {
        let s = try Settings.parse(raw, dir: dir)
        var replaced: [String: Tensor?] = [:]
        for t in graph.tensors where t.name.hasSuffix(".qweight") {
            let prefix = String(t.name.dropLast(".qweight".count))
            let source = try Source(graph: graph, prefix: prefix, settings: s, dir: dir)
            replaced[t.name] = try GroupQuantizedStorage.tensor(name: prefix + ".weight", source: source)
            for part in ["qzeros", "scales", "g_idx"] { replaced["\(prefix).\(part)"] = .some(nil) }
        }
        for t in graph.tensors {
            for part in [".qzeros", ".scales", ".g_idx"] where t.name.hasSuffix(part) && replaced[t.name] == nil {
                throw PackedCheckpointError.orphan(dir: dir, tensor: t.name, missing: String(t.name.dropLast(part.count)) + ".qweight")
            }
        }
        return try PackedCheckpoint.replacing(graph, replaced)
    }

    /// One GPTQ linear layer, read lazily.
    struct Source: GroupQuantizedSource {
        let layout: GroupQuantizedLayout
        let format: String
        let qweight: Tensor, qzeros: Tensor, scales: Tensor
        let groupIndex: [Int32]?
        let v1: Bool
        let dir: String

        init(graph: TensorGraph, prefix: String, settings s: Settings, dir: String) throws {
            let (qweight, qzeros, scales) = try PackedCheckpoint.requireQWeightSet(graph, prefix: prefix, dir: dir)
            let per = 32 / s.bits
            let cols = qweight.shape[0] * per, rows = qweight.shape[1]
            // The packed widths first: a bit width that disagrees with the packing shows here.
            guard rows % per == 0, qzeros.shape.last == rows / per else {
                throw PackedCheckpointError.packedWidth(
                    dir: dir, tensor: qzeros.name, shape: qzeros.shape, bits: s.bits,
                    expected: rows % per == 0 ? "[groups, \(rows / per)] for the \(rows) outputs of '\(qweight.name)'" : "an output count divisible by \(per), not \(rows)")
            }
            let gTensor = graph[prefix + ".g_idx"]
            if let g = gTensor {
                try PackedCheckpoint.checkDType(g, PackedCheckpoint.indexTypes, dir: dir)
                guard g.shape == [cols] else {
                    throw PackedCheckpointError.packedWidth(
                        dir: dir, tensor: g.name, shape: g.shape, bits: s.bits,
                        expected: "[\(cols)] (one group per input column of '\(qweight.name)' \(qweight.shape))")
                }
            }
            // GPTQ allows a last, shorter group (⌈in / group_size⌉ groups), as GPTQModel writes
            // for rows the group size does not divide; the scales must say the same count.
            let groupSize = s.groupSize ?? cols
            let groups = cols > 0 ? (cols + groupSize - 1) / groupSize : 0
            guard cols > 0, scales.shape.count == 2, scales.shape[0] == groups else {
                throw PackedCheckpointError.groupCount(
                    dir: dir, tensor: scales.name, columns: cols, groupSize: groupSize, groups: groups, found: scales.shape.first ?? 0)
            }
            guard scales.shape == [groups, rows] else {
                throw PackedCheckpointError.badShape(
                    dir: dir, tensor: scales.name, shape: scales.shape,
                    expected: "[\(groups), \(rows)] (\(cols) input columns / group size \(groupSize), \(rows) outputs)")
            }
            guard qzeros.shape == [groups, rows / per] else {
                throw PackedCheckpointError.badShape(dir: dir, tensor: qzeros.name, shape: qzeros.shape, expected: "[\(groups), \(rows / per)]")
            }
            var gIdx: [Int32]? = nil
            if let g = gTensor {
                let values = try PackedCheckpoint.integers(g)
                for (c, v) in values.enumerated() where v < 0 || v >= groups {
                    throw PackedCheckpointError.groupIndexOutOfRange(dir: dir, tensor: g.name, column: c, value: v, groups: groups)
                }
                let trivial = values.enumerated().allSatisfy { $0.element == $0.offset / groupSize }
                gIdx = trivial ? nil : values.map { Int32($0) }
            }
            self.layout = GroupQuantizedLayout(rows: rows, cols: cols, bits: s.bits, groupSize: groupSize, groups: groups, symmetric: s.symmetric)
            self.format = "GPTQ \(s.format == .v1 ? "v1" : "v2") int\(s.bits)"
            self.qweight = qweight
            self.qzeros = qzeros
            self.scales = scales
            self.groupIndex = gIdx
            self.v1 = s.format == .v1
            self.dir = dir
        }

        func parts() throws -> GroupQuantizedParts {
            let l = layout
            let per = 32 / l.bits, mask = (Int32(1) << l.bits) - 1
            let s = try PackedCheckpoint.floats(scales)  // [groups, rows]
            let z = try PackedCheckpoint.words(qzeros)  // [groups, rows / per]
            var scalesOut = [Float](repeating: 0, count: l.rows * l.groups)
            var zerosOut = [Int32](repeating: 0, count: l.rows * l.groups)
            let wordsPerGroup = l.rows / per
            for g in 0..<l.groups {
                for r in 0..<l.rows {
                    scalesOut[r * l.groups + g] = s[g * l.rows + r]
                    var zero = Int32(WordPacking.code(z[g * wordsPerGroup + r / per], r % per, bits: l.bits))
                    if v1 { zero = (zero + 1) & mask }
                    zerosOut[r * l.groups + g] = zero
                }
            }
            return GroupQuantizedParts(scales: scalesOut, zeros: zerosOut, groupIndex: groupIndex, scaleType: scales.dtype)
        }

        func codes() throws -> [UInt8] {
            let l = layout
            let per = 32 / l.bits
            let w = try PackedCheckpoint.words(qweight)  // [cols / per, rows]
            var out = [UInt8](repeating: 0, count: l.rows * l.cols)
            out.withUnsafeMutableBufferPointer { o in
                for p in 0..<(l.cols / per) {
                    for r in 0..<l.rows {
                        let word = w[p * l.rows + r]
                        for k in 0..<per { o[r * l.cols + p * per + k] = WordPacking.code(word, k, bits: l.bits) }
                    }
                }
            }
            return out
        }
    }
}
