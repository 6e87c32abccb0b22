import TensorGraph

/// compressed-tensors checkpoints in the `pack-quantized` format (llm-compressor's output, as vLLM
/// loads it): per quantized module `weight_packed` (I32 `[out, ⌈in · bits / 32⌉]`, codes packed
/// densely along the input dimension, code `i` at bit `i · bits`, each stored as the signed value
/// plus `2^(bits−1)`), `weight_scale` (`[out, groups]`), `weight_shape` (`[out, in]`), and for
/// asymmetric schemes `weight_zero_point` (packed the same way along the output dimension:
/// `[⌈out · bits / 32⌉, groups]`; older files keep it unpacked as I8 `[out, groups]`). A value is
/// `scale · (q − zero_point)` with both signed, which is `scale · (code − zero_code)` in the
/// stored unsigned codes. `config_groups` give each module its scheme by `targets` (`Linear`, a
/// module name, or `re:` and a regular expression); `ignore` lists modules left in float.
public enum CompressedTensors {
    public static let packFormat = "pack-quantized"

    public struct Scheme: Sendable, Equatable {
        public var bits: Int
        /// `nil` for the `channel` strategy (one group per row).
        public var groupSize: Int?
        public var symmetric: Bool
        public var targets: [String]

        public init(bits: Int, groupSize: Int?, symmetric: Bool, targets: [String] = ["Linear"]) {
            self.bits = bits
            self.groupSize = groupSize
            self.symmetric = symmetric
            self.targets = targets
        }

        /// Whether this scheme's targets name `module` (`Linear` names every quantized module).
        func matches(_ module: String) -> Bool {
            for t in targets {
                if t.hasPrefix("re:") {
                    if let r = try? Regex(String(t.dropFirst(3))), (try? r.prefixMatch(in: module)) != nil { return true }
                } else if t == "Linear" || t == module || module.hasSuffix("." + t) {
                    return true
                }
            }
            return false
        }
    }

    /// The schemes of `config_groups`, in order, checked.
    public static func schemes(_ q: JSONValue, dir: String) throws(PackedCheckpointError) -> [Scheme] {
        let top = q["format"]?.stringValue ?? packFormat
        guard let groups = q["config_groups"]?.objectEntries, !groups.isEmpty else {
            throw .badSetting(dir: dir, key: "config_groups", value: q["config_groups"].map { Echo.json($0) } ?? "(missing)", reason: "at least one group is required")
        }
        var out: [Scheme] = []
        for (name, g) in groups {
            let format = g["format"]?.stringValue ?? top
            guard format == packFormat else {
                throw .badSetting(dir: dir, key: "config_groups.\(name).format", value: format, reason: "only \(packFormat) is read")
            }
            guard let w = g["weights"], !w.isNull else {
                throw .badSetting(dir: dir, key: "config_groups.\(name).weights", value: "null", reason: "weight quantization settings are required")
            }
            let type = w["type"]?.stringValue ?? "int"
            guard type == "int" else {
                throw .badSetting(dir: dir, key: "config_groups.\(name).weights.type", value: type, reason: "only int weights are read")
            }
            guard let bits = w["num_bits"]?.intValue, PackedCheckpoint.packableBits.contains(bits) else {
                throw .badSetting(
                    dir: dir, key: "config_groups.\(name).weights.num_bits", value: w["num_bits"].map { Echo.json($0) } ?? "(missing)",
                    reason: "only 2, 4 and 8 bits are read")
            }
            let strategy = w["strategy"]?.stringValue ?? "group"
            var groupSize: Int? = nil
            switch strategy {
            case "group":
                guard let gs = w["group_size"]?.intValue, gs > 0 else {
                    throw .badSetting(
                        dir: dir, key: "config_groups.\(name).weights.group_size", value: w["group_size"].map { Echo.json($0) } ?? "(missing)",
                        reason: "the group strategy needs a positive group size")
                }
                groupSize = gs
            case "channel":
                groupSize = nil
            default:
                throw .badSetting(dir: dir, key: "config_groups.\(name).weights.strategy", value: strategy, reason: "only the group and channel strategies are read")
            }
            let targets = g["targets"]?.arrayValue?.compactMap { $0.stringValue } ?? ["Linear"]
            out.append(Scheme(bits: bits, groupSize: groupSize, symmetric: w["symmetric"]?.boolValue ?? true, targets: targets))
        }
        return out
    }

    /// Replaces every `weight_packed` set by one f32 tensor `PREFIX.weight` that decodes it.
    public static func lift(_ graph: TensorGraph, settings raw: JSONValue, dir: String = "") throws -> TensorGraph {
        let schemes = try schemes(raw, dir: dir)
        var replaced: [String: Tensor?] = [:]
        for t in graph.tensors where t.name.hasSuffix(".weight_packed") {
            let prefix = String(t.name.dropLast(".weight_packed".count))
            guard let scheme = schemes.first(where: { $0.matches(prefix) }) else {
                throw PackedCheckpointError.unmatchedModule(dir: dir, module: prefix)
            }
            let source = try Source(graph: graph, prefix: prefix, scheme: scheme, dir: dir)
            replaced[t.name] = try GroupQuantizedStorage.tensor(name: prefix + ".weight", source: source)
            for part in ["weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx"] { replaced["\(prefix).\(part)"] = .some(nil) }
        }
        for t in graph.tensors {
            for part in [".weight_scale", ".weight_zero_point", ".weight_shape", ".weight_g_idx"]
            where t.name.hasSuffix(part) && replaced[t.name] == nil && graph[String(t.name.dropLast(part.count)) + ".weight"] == nil {
                throw PackedCheckpointError.orphan(dir: dir, tensor: t.name, missing: String(t.name.dropLast(part.count)) + ".weight_packed")
            }
        }
        return try PackedCheckpoint.replacing(graph, replaced)
    }

    struct Source: GroupQuantizedSource {
        let layout: GroupQuantizedLayout
        let format: String
        let packed: Tensor, scale: Tensor
        let zeroPoint: Tensor?
        let groupIndex: [Int32]?

        init(graph: TensorGraph, prefix: String, scheme s: Scheme, dir: String) throws {
            let packedName = prefix + ".weight_packed"
            let packed = graph[packedName]!
            let scale = try PackedCheckpoint.require(graph, prefix + ".weight_scale", dir: dir, for: packedName)
            let shapeT = try PackedCheckpoint.require(graph, prefix + ".weight_shape", dir: dir, for: packedName)
            try PackedCheckpoint.checkDType(packed, PackedCheckpoint.wordTypes, dir: dir)
            try PackedCheckpoint.checkRank2(packed, dir: dir)
            try PackedCheckpoint.checkDType(scale, PackedCheckpoint.floatTypes, dir: dir)
            try PackedCheckpoint.checkDType(shapeT, PackedCheckpoint.indexTypes.union([.i8]), dir: dir)
            let shape = try PackedCheckpoint.integers(shapeT)
            guard shape.count == 2, shape[0] > 0, shape[1] > 0 else {
                throw PackedCheckpointError.badShape(dir: dir, tensor: shapeT.name, shape: shape, expected: "two positive dimensions [out, in]")
            }
            let (rows, cols) = (shape[0], shape[1])
            let per = 32 / s.bits
            let wordsPerRow = (cols + per - 1) / per
            guard packed.shape == [rows, wordsPerRow] else {
                throw PackedCheckpointError.packedWidth(
                    dir: dir, tensor: packedName, shape: packed.shape, bits: s.bits,
                    expected: "[\(rows), \(wordsPerRow)] for weight_shape [\(rows), \(cols)]")
            }
            let groupSize = s.groupSize ?? cols
            guard cols % groupSize == 0 else {
                throw PackedCheckpointError.groupSize(dir: dir, tensor: packedName, columns: cols, groupSize: groupSize)
            }
            let groups = cols / groupSize
            guard scale.shape == [rows, groups] || (groups == 1 && scale.shape == [rows]) else {
                throw PackedCheckpointError.badShape(
                    dir: dir, tensor: scale.name, shape: scale.shape,
                    expected: "[\(rows), \(groups)] (\(cols) columns / group size \(groupSize))")
            }
            var zp: Tensor? = nil
            if !s.symmetric {
                let z = try PackedCheckpoint.require(graph, prefix + ".weight_zero_point", dir: dir, for: packedName)
                let packedRows = (rows + per - 1) / per
                if z.dtype == .i32 || z.dtype == .u32 {
                    guard z.shape == [packedRows, groups] || (groups == 1 && z.shape == [packedRows]) else {
                        throw PackedCheckpointError.packedWidth(
                            dir: dir, tensor: z.name, shape: z.shape, bits: s.bits, expected: "[\(packedRows), \(groups)] (packed along the \(rows) outputs)")
                    }
                } else {
                    try PackedCheckpoint.checkDType(z, [.i8], dir: dir)
                    guard z.shape == [rows, groups] || (groups == 1 && z.shape == [rows]) else {
                        throw PackedCheckpointError.badShape(dir: dir, tensor: z.name, shape: z.shape, expected: "[\(rows), \(groups)]")
                    }
                }
                zp = z
            }
            var gIdx: [Int32]? = nil
            if let g = graph[prefix + ".weight_g_idx"] {
                try PackedCheckpoint.checkDType(g, PackedCheckpoint.indexTypes, dir: dir)
                guard g.shape == [cols] else {
                    throw PackedCheckpointError.badShape(dir: dir, tensor: g.name, shape: g.shape, expected: "[\(cols)]")
                }
                let values = try PackedCheckpoint.integers(g)
                for (c, v) in values.enumerated() where v < 0 || v >= groups {
                    throw PackedCheckpointError.groupIndexOutOfRange(dir: dir, tensor: g.name, column: c, value: v, groups: groups)
                }
                if !values.enumerated().allSatisfy({ $0.element == $0.offset / groupSize }) { gIdx = values.map { Int32($0) } }
            }
            layout = GroupQuantizedLayout(rows: rows, cols: cols, bits: s.bits, groupSize: groupSize, groups: groups, symmetric: s.symmetric)
            format = "compressed-tensors int\(s.bits)"
            self.packed = packed
            self.scale = scale
            self.zeroPoint = zp
            self.groupIndex = gIdx
        }

        func parts() throws -> GroupQuantizedParts {
            let l = layout
            let scales = try PackedCheckpoint.floats(scale)  // [rows, groups] already
            let mid = l.midpoint
            var zeros = [Int32](repeating: mid, count: l.rows * l.groups)
            if let zeroPoint {
                if zeroPoint.dtype == .i8 {
                    let v = try PackedCheckpoint.integers(zeroPoint)
                    for i in 0..<zeros.count { zeros[i] = Int32(v[i]) + mid }
                } else {
                    // Packed along the outputs: word row p holds outputs p·per ..< (p+1)·per.
                    let per = 32 / l.bits
                    let w = try PackedCheckpoint.words(zeroPoint)
                    for r in 0..<l.rows {
                        for g in 0..<l.groups {
                            zeros[r * l.groups + g] = Int32(WordPacking.code(w[(r / per) * l.groups + g], r % per, bits: l.bits))
                        }
                    }
                }
            }
            return GroupQuantizedParts(scales: scales, zeros: zeros, groupIndex: groupIndex, scaleType: scale.dtype)
        }

        func codes() throws -> [UInt8] {
            let l = layout
            let per = 32 / l.bits
            let wordsPerRow = (l.cols + per - 1) / per
            let w = try PackedCheckpoint.words(packed)
            var out = [UInt8](repeating: 0, count: l.rows * l.cols)
            out.withUnsafeMutableBufferPointer { o in
                for r in 0..<l.rows {
                    for c in 0..<l.cols { o[r * l.cols + c] = WordPacking.code(w[r * wordsPerRow + c / per], c % per, bits: l.bits) }
                }
            }
            return out
        }
    }
}
