import TensorGraph

/// compressed-tensors `pack-quantized` as a folder flavour: recognised by
/// `quantization_config.quant_method = "compressed-tensors"` and `*.weight_packed` tensors; read
/// through `CompressedTensors.lift`; written with one config group (`targets: ["Linear"]`, the
/// `group` strategy, f16 scales, packed zero points when asymmetric) and every linear layer left
/// in float named in `ignore` (default grid int4, group size 128, symmetric; the group size must
/// divide every row, as compressed-tensors requires).
public enum CompressedTensorsFlavour: FolderFlavour {
    public static let name = "compressed-tensors"
    public static let defaultGrid = IntGroupGrid(bits: 4, groupSize: 128, symmetric: true)

    public static func recognises(_ graph: TensorGraph) -> Bool {
        PackedCheckpoint.settings(graph)?.method == "compressed-tensors" && graph.tensors.contains { $0.name.hasSuffix(".weight_packed") }
    }

    public static func unpack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        guard let (_, settings) = PackedCheckpoint.settings(graph) else { throw FlavourError.badConfig(reason: "no quantization_config") }
        return try PackedFlavourSupport.unpack(try CompressedTensors.lift(graph, settings: settings), request, moves: &moves)
    }

    public static func pack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        let grid = IntGroupGrid(
            bits: request.bits ?? defaultGrid.bits, groupSize: request.groupSize ?? defaultGrid.groupSize,
            symmetric: request.symmetric ?? defaultGrid.symmetric)
        guard PackedCheckpoint.packableBits.contains(grid.bits) else {
            throw FlavourError.badConfig(reason: "compressed-tensors pack-quantized is written with 2, 4 or 8 bits here, not \(grid.bits)")
        }
        var tensors: [Tensor] = []
        var ignore: [String] = []
        for t in graph.tensors {
            guard PackedFlavourSupport.isLinearWeight(t) else {
                if t.shape.count == 2, t.name.hasSuffix(".weight"), t.name.hasPrefix("lm_head") || t.name.hasSuffix("lm_head.weight") {
                    ignore.append(String(t.name.dropLast(".weight".count)))
                }
                tensors.append(t.dtype.isQuantized ? try t.dequantized(to: .f32) : t)
                continue
            }
            let (rows, cols) = (t.shape[0], t.shape[1])
            guard cols % grid.groupSize == 0 else {
                throw FlavourError.unsupported(
                    tensor: t.name, reason: "compressed-tensors needs the group size to divide the row: \(grid.groupSize) does not divide \(cols) (try --group-size 64 or 32)")
            }
            let (m, move) = try PackedFlavourSupport.codes(for: t, grid: grid, allowGroupIndex: false, request: request)
            moves.append(move)
            tensors += try stored(base: String(t.name.dropLast(".weight".count)), rows: rows, cols: cols, m.layout, try m.parts(), try m.codes(), grid: grid)
        }
        var out = try TensorGraph(
            architecture: graph.architecture, hyperparameters: graph.hyperparameters, metadata: graph.metadata,
            tokenizer: graph.tokenizer, tensors: tensors)
        out.metadata[SafetensorsGraph.metadataPrefix + "format"] = .string("pt")
        let weights: JSONValue = .object([
            ("num_bits", .int(grid.bits)), ("type", .string("int")), ("symmetric", .bool(grid.symmetric)),
            ("group_size", .int(grid.groupSize)), ("strategy", .string("group")), ("block_structure", .null),
            ("dynamic", .bool(false)), ("actorder", .null), ("observer", .string("minmax")), ("observer_kwargs", .object([])),
        ])
        let config: JSONValue = .object([
            ("config_groups", .object([("group_0", .object([
                ("targets", .array([.string("Linear")])), ("weights", weights), ("input_activations", .null),
                ("output_activations", .null), ("format", .string(CompressedTensors.packFormat)),
            ]))])),
            ("format", .string(CompressedTensors.packFormat)), ("ignore", .array(ignore.map(JSONValue.string))),
            ("kv_cache_scheme", .null), ("quant_method", .string("compressed-tensors")), ("quantization_status", .string("compressed")),
        ])
        FlavourRegistry.updateConfig(&out, setting: [(PackedCheckpoint.configKey, config)], removing: ["quantization"])
        return out
    }

    /// One layer's compressed-tensors tensors: `weight_packed`, `weight_scale`, `weight_shape` and,
    /// asymmetric, `weight_zero_point`.
    static func stored(
        base: String, rows: Int, cols: Int, _ l: GroupQuantizedLayout, _ p: GroupQuantizedParts, _ codes: [UInt8], grid: IntGroupGrid
    ) throws -> [Tensor] {
        let per = 32 / l.bits
        let words = (cols + per - 1) / per
        var packed = [Int64](repeating: 0, count: rows * words)
        for r in 0..<rows {
            for c in 0..<cols { packed[r * words + c / per] |= Int64(codes[r * cols + c]) << Int64((c % per) * l.bits) }
        }
        var out = [
            try PackedFlavourSupport.intTensor(base + ".weight_packed", .i32, [rows, words], packed),
            try PackedFlavourSupport.f16Tensor(base + ".weight_scale", [rows, l.groups], p.scales),
            try PackedFlavourSupport.intTensor(base + ".weight_shape", .i64, [2], [Int64(rows), Int64(cols)]),
        ]
        if !grid.symmetric {
            let packedRows = (rows + per - 1) / per
            var zp = [Int64](repeating: 0, count: packedRows * l.groups)
            for r in 0..<rows {
                for g in 0..<l.groups { zp[(r / per) * l.groups + g] |= Int64(p.zeros[r * l.groups + g]) << Int64((r % per) * l.bits) }
            }
            out.append(try PackedFlavourSupport.intTensor(base + ".weight_zero_point", .i32, [packedRows, l.groups], zp))
        }
        return out
    }
}
