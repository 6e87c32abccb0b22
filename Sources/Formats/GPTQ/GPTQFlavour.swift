import TensorGraph

/// GPTQ as a folder flavour (`convert --format gptq`, `inspect`): recognised by
/// `quantization_config.quant_method = "gptq"` (or AutoGPTQ's `quantize_config.json`) and
/// `*.qweight` tensors; read through
/// `GPTQ.lift`; written as GPTQ v1 (`checkpoint_format: "gptq"`, zero points stored minus one,
/// what transformers, GPTQModel and vLLM load) on the grid the request sets (default int4, group
/// size 128, symmetric).
public enum GPTQFlavour: FolderFlavour {
    public static let name = "gptq"
    public static let defaultGrid = IntGroupGrid(bits: 4, groupSize: 128, symmetric: true)

    public static func recognises(_ graph: TensorGraph) -> Bool {
        PackedCheckpoint.settings(graph)?.method == "gptq" && graph.tensors.contains { $0.name.hasSuffix(".qweight") }
    }

    public static func unpack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        return try PackedFlavourSupport.unpack(try GPTQ.lift(graph, settings: try GPTQ.settingsObject(graph)), request, moves: &moves)
    }

    public static func pack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        let grid = IntGroupGrid(
            bits: request.bits ?? defaultGrid.bits, groupSize: request.groupSize ?? defaultGrid.groupSize,
            symmetric: request.symmetric ?? defaultGrid.symmetric)
        guard PackedCheckpoint.packableBits.contains(grid.bits) else {
            throw FlavourError.badConfig(reason: "GPTQ is written with 2, 4 or 8 bits, not \(grid.bits)")
        }
        let per = 32 / grid.bits
        var tensors: [Tensor] = []
        var actOrder = false
        for t in graph.tensors {
            guard PackedFlavourSupport.isLinearWeight(t) else {
                tensors.append(t.dtype.isQuantized ? try t.dequantized(to: .f32) : t)
                continue
            }
            let (rows, cols) = (t.shape[0], t.shape[1])
            guard cols % per == 0, rows % per == 0 else {
                throw FlavourError.unsupported(
                    tensor: t.name, reason: "GPTQ packs \(per) codes to a word along both dimensions; [\(rows), \(cols)] does not divide")
            }
            let (m, move) = try PackedFlavourSupport.codes(for: t, grid: grid, allowGroupIndex: true, request: request)
            moves.append(move)
            let p = try m.parts()
            actOrder = actOrder || p.groupIndex != nil
            tensors += try stored(base: String(t.name.dropLast(".weight".count)), m.layout, p, try m.codes())
        }
        var out = try TensorGraph(
            architecture: graph.architecture, hyperparameters: graph.hyperparameters, metadata: graph.metadata,
            tokenizer: graph.tokenizer, tensors: tensors)
        out.metadata[SafetensorsGraph.metadataPrefix + "format"] = .string("pt")
        let config: JSONValue = .object([
            ("bits", .int(grid.bits)), ("group_size", .int(grid.groupSize)), ("desc_act", .bool(actOrder)),
            ("sym", .bool(grid.symmetric)), ("quant_method", .string("gptq")), ("checkpoint_format", .string(GPTQ.CheckpointFormat.v1.rawValue)),
            ("pack_dtype", .string("int32")),
        ])
        FlavourRegistry.updateConfig(&out, setting: [(PackedCheckpoint.configKey, config)], removing: ["quantization"])
        out.metadata[HFFolder.metadataPrefix + PackedCheckpoint.autoGPTQFile] = nil  // config.json says it all
        return out
    }

    /// One layer's four GPTQ v1 tensors.
    static func stored(base: String, _ l: GroupQuantizedLayout, _ p: GroupQuantizedParts, _ codes: [UInt8]) throws -> [Tensor] {
        let per = 32 / l.bits, mask = (Int32(1) << l.bits) - 1
        var qweight = [Int64](repeating: 0, count: l.cols / per * l.rows)
        for c in 0..<l.cols {
            let shift = Int64((c % per) * l.bits)
            for r in 0..<l.rows { qweight[(c / per) * l.rows + r] |= Int64(codes[r * l.cols + c]) << shift }
        }
        var qzeros = [Int64](repeating: 0, count: l.groups * l.rows / per)
        var scales = [Float](repeating: 0, count: l.groups * l.rows)
        for g in 0..<l.groups {
            for r in 0..<l.rows {
                let stored = (p.zeros[r * l.groups + g] - 1) & mask  // v1: zero − 1
                qzeros[g * (l.rows / per) + r / per] |= Int64(stored) << Int64((r % per) * l.bits)
                scales[g * l.rows + r] = p.scales[r * l.groups + g]
            }
        }
        let gIdx = (0..<l.cols).map { Int64(p.group(ofColumn: $0, groupSize: l.groupSize)) }
        return [
            try PackedFlavourSupport.intTensor(base + ".qweight", .i32, [l.cols / per, l.rows], qweight),
            try PackedFlavourSupport.intTensor(base + ".qzeros", .i32, [l.groups, l.rows / per], qzeros),
            try PackedFlavourSupport.f16Tensor(base + ".scales", [l.groups, l.rows], scales),
            try PackedFlavourSupport.intTensor(base + ".g_idx", .i32, [l.cols], gIdx),
        ]
    }
}
