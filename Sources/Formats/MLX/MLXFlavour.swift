import Quantization
import TensorGraph

/// MLX quantized safetensors, as `mlx_lm.convert -q` writes and `mlx_lm` loads: for each
/// quantized layer `BASE`, `BASE.weight` (uint32 packed codes), `BASE.scales` and (affine)
/// `BASE.biases`; `config.json` `"quantization"` holds the default grid (`group_size`, `bits`,
/// `mode`) and, under a layer's path, that layer's own (an object, or `false` for a layer left
/// unquantized); `"quantization_config"` repeats it. Grids and moves: `MLXGrid`, `MLXBlockMoves`.
public enum MLXFlavour: FolderFlavour {
    public static let name = "mlx"

    public static func recognises(_ graph: TensorGraph) -> Bool {
        guard let q = FlavourRegistry.config(graph)?["quantization"], q.objectEntries != nil else { return false }
        return graph.tensors.contains { $0.name.hasSuffix(".scales") }
    }

    // MARK: reading

    /// The quantized weights of `graph`, by base name, checked against `config.json`.
    static func weights(_ graph: TensorGraph) throws -> [String: MLXWeight] {
        guard let q = FlavourRegistry.config(graph)?["quantization"], let entries = q.objectEntries else {
            throw FlavourError.badConfig(reason: "no \"quantization\" object")
        }
        let global = try MLXGrid.parse(q, fallback: nil, context: "\"quantization\"")
        var out: [String: MLXWeight] = [:]
        for t in graph.tensors {
            let base: String
            if t.name.hasSuffix(".scales") {
                base = String(t.name.dropLast(".scales".count))
            } else if t.name.hasSuffix(".biases") {
                base = String(t.name.dropLast(".biases".count))
                guard graph[base + ".scales"] != nil else { throw FlavourError.missingPart(weight: base + ".weight", missing: base + ".scales") }
                continue
            } else if t.name.hasSuffix(".weight"), t.dtype == .u32 {
                base = String(t.name.dropLast(".weight".count))
                guard graph[base + ".scales"] != nil else { throw FlavourError.missingPart(weight: t.name, missing: base + ".scales") }
                continue
            } else {
                continue
            }
            var grid = global
            if let layer = entries.first(where: { $0.0 == base })?.1 {
                if layer.objectEntries != nil {
                    grid = try MLXGrid.parse(layer, fallback: global, context: "\"quantization\".\"\(base)\"")
                } else if layer.boolValue == false {
                    throw FlavourError.badTensor(tensor: base + ".weight", reason: "config.json marks layer '\(base)' unquantized, but it has scales")
                }
            }
            guard let packed = graph[base + ".weight"] else {
                throw FlavourError.missingPart(weight: base + ".weight", missing: base + ".weight")
            }
            out[base] = try MLXWeight(base: base, grid: grid, packed: packed, scales: t, biases: graph[base + ".biases"])
        }
        return out
    }

    public static func unpack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        let weights = try weights(graph)
        var tensors: [Tensor] = []
        for t in graph.tensors {
            if t.name.hasSuffix(".scales") || t.name.hasSuffix(".biases"), weights[String(t.name.dropLast(7))] != nil { continue }
            guard t.name.hasSuffix(".weight"), let w = weights[String(t.name.dropLast(7))] else {
                tensors.append(t)
                continue
            }
            if request.keepBlocks, let type = try MLXBlockMoves.exactBlockType(w) {
                tensors.append(try MLXBlockMoves.toBlocks(w, type))
                moves.append(TensorMove(tensor: w.weightName, from: w.sourceText, to: type.displayName, exact: true))
                continue
            }
            let floatType = request.floatType
            let change = floatType == .f32 ? 0 : try largestRounding(w, to: floatType)
            let move = TensorMove(tensor: w.weightName, from: w.sourceText, to: floatType.displayName, exact: change == 0, maxChange: change)
            if request.exact && !move.exact {
                throw FlavourError.notExact(tensor: move.tensor, from: move.from, to: move.to, maxChange: change)
            }
            moves.append(move)
            tensors.append(try decoded(w, to: floatType))
        }
        var out = try TensorGraph(
            architecture: graph.architecture, hyperparameters: graph.hyperparameters, metadata: graph.metadata,
            tokenizer: graph.tokenizer, tensors: tensors)
        FlavourRegistry.updateConfig(&out, setting: [], removing: ["quantization", "quantization_config"])
        out.metadata[SafetensorsGraph.metadataPrefix + "format"] = .string("pt")
        return out
    }

    /// `w` decoded to `dtype` (f32, f16, bf16), lazily.
    static func decoded(_ w: MLXWeight, to dtype: DType) throws -> Tensor {
        try rowProduced(name: w.weightName, dtype: dtype, shape: w.shape, rows: w.rows, rowBytes: w.cols * dtype.bytesPerBlock) { range in
            floatBytes(try w.decodeRows(range), as: dtype)
        }
    }

    /// The largest change rounding `w`'s decoded values to `dtype` makes.
    static func largestRounding(_ w: MLXWeight, to dtype: DType) throws -> Double {
        var change = 0.0
        var r = 0
        while r < w.rows {
            let range = r..<min(w.rows, r + w.rowsPerChunk)
            for v in try w.decodeRows(range) { change = max(change, Double(abs(rounded(v, to: dtype) - v))) }
            r = range.upperBound
        }
        return change
    }

    /// The number of values the graph's tensors stand for (a packed weight counts its rows ×
    /// row length; scales and biases count nothing).
    public static func parameterCount(_ graph: TensorGraph) throws -> Int {
        let w = try weights(graph)
        return graph.tensors.reduce(0) { acc, t in
            let base = String(t.name.dropLast(7))
            if t.name.hasSuffix(".weight"), let q = w[base] { return acc + q.rows * q.cols }
            if (t.name.hasSuffix(".scales") || t.name.hasSuffix(".biases")) && w[base] != nil { return acc }
            return acc + t.elementCount
        }
    }

    // MARK: writing

    /// Whether a plain tensor is a weight MLX quantizes: a matrix (or stack of matrices) of a
    /// float or block type named `*.weight`.
    static func isQuantizable(_ t: Tensor) -> Bool {
        t.name.hasSuffix(".weight") && t.shape.count >= 2 && (t.dtype.isQuantized || t.dtype.isFloat)
    }

    /// The MLX affine width nearest a ggml block type's precision, for block types no grid holds
    /// exactly (used when `--bits` is not given).
    static func nearestBits(_ type: DType) -> Int {
        switch type {
        case .q2_K, .iq2_XXS, .iq2_XS, .iq2_S, .iq1_S, .iq1_M, .tq1_0, .tq2_0: return 2
        case .q3_K, .iq3_XXS, .iq3_S: return 3
        case .q5_0, .q5_1, .q5_K: return 5
        case .q6_K: return 6
        case .q8_0, .q8_1, .q8_K: return 8
        default: return 4
        }
    }

    public static func pack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        var tensors: [Tensor] = []
        var grids: [(String, MLXGrid)] = []
        for t in graph.tensors {
            guard isQuantizable(t) else {
                tensors.append(t.dtype.isQuantized ? try t.dequantized(to: .f32) : t)
                continue
            }
            let base = String(t.name.dropLast(".weight".count))
            let cols = t.shape.last!
            // Codes already decided on an MLX affine grid (a quantizer's, or an integer grid whose
            // scales and −scale·zero are f16 values): stored as they are.
            if let source = t.groupQuantizedSource, let (grid, parts) = try storedCodes(source, base: base, shape: t.shape, request) {
                tensors += parts
                grids.append((base, grid))
                moves.append(TensorMove(tensor: t.name, from: "\(source.format) g\(source.layout.groupSize)", to: "\(grid) (F16 scales)", exact: true))
                continue
            }
            // An exact move from a block type, where the request allows one.
            if MLXBlockMoves.blockTypes.contains(t.dtype), let parts = try exactParts(t, base: base, request) {
                tensors += [parts.packed, parts.scales] + (parts.biases.map { [$0] } ?? [])
                grids.append((base, parts.grid))
                moves.append(TensorMove(
                    tensor: t.name, from: t.dtype.displayName,
                    to: parts.grid.mode == .affine ? "\(parts.grid) (F16 scales)" : parts.grid.description, exact: true))
                continue
            }
            // Round to nearest onto the requested grid.
            let bits = request.bits ?? (t.dtype.isQuantized ? nearestBits(t.dtype) : MLXGrid.defaultAffine.bits)
            guard MLXGrid.affineBits.contains(bits) else {
                throw FlavourError.unsupported(tensor: t.name, reason: "\(bits) bits is not an MLX affine width (1, 2, 3, 4, 5, 6, 8)")
            }
            guard let group = groupSize(cols: cols, wanted: request.groupSize ?? MLXGrid.defaultAffine.groupSize) else {
                // mlx_lm leaves such layers unquantized too.
                tensors.append(t.dtype.isQuantized ? try t.dequantized(to: .f32) : t)
                continue
            }
            let grid = MLXGrid(bits: bits, groupSize: group)
            try grid.check(context: "--bits/--group-size")
            let values = try t.dequantized(to: .f32).storage.readAll().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let importance = request.importance[t.name].flatMap { $0.count == cols ? $0 : nil }
            let q = MLXQuantize.affine(
                values, cols: cols, grid: grid, symmetric: request.symmetric ?? false, scaleType: .f16, importance: importance)
            let move = TensorMove(tensor: t.name, from: t.dtype.displayName, to: "\(grid) (F16 scales)", exact: q.maxChange == 0, maxChange: q.maxChange)
            if request.exact && !move.exact {
                throw FlavourError.notExact(tensor: move.tensor, from: move.from, to: move.to, maxChange: move.maxChange)
            }
            moves.append(move)
            tensors += try stored(base: base, shape: t.shape, grid: grid, codes: q.codes, scales: q.scales, biases: q.biases)
            grids.append((base, grid))
        }
        var out = try TensorGraph(
            architecture: graph.architecture, hyperparameters: graph.hyperparameters, metadata: graph.metadata,
            tokenizer: graph.tokenizer, tensors: tensors)
        out.metadata[SafetensorsGraph.metadataPrefix + "format"] = .string("mlx")
        if FlavourRegistry.config(out) != nil, !grids.isEmpty {
            let q = quantizationConfig(grids)
            FlavourRegistry.updateConfig(&out, setting: [("quantization", q), ("quantization_config", q)])
        }
        return out
    }

    /// The group size a row of `cols` values takes when `wanted` is asked for: `wanted` when it
    /// divides the row, else 32 when that does, else none (the layer stays in float, as mlx_lm
    /// leaves it).
    public static func groupSize(cols: Int, wanted: Int) -> Int? {
        [wanted, 32].first { $0 > 0 && cols % $0 == 0 }
    }

    /// A group-quantized matrix's own codes as MLX's three tensors, when they sit on an affine
    /// grid the request allows: contiguous groups of the size `groupSize` picks for the row, an
    /// MLX width, f16 scales and biases (`biases`, or `−scale · zero`). `nil` otherwise.
    static func storedCodes(_ s: any GroupQuantizedSource, base: String, shape: [Int], _ request: FlavourRequest) throws -> (MLXGrid, [Tensor])? {
        let l = s.layout
        guard shape.count == 2, MLXGrid.affineBits.contains(l.bits), request.bits ?? l.bits == l.bits,
              l.groupSize == groupSize(cols: l.cols, wanted: request.groupSize ?? l.groupSize),
              l.groups * l.groupSize == l.cols, request.symmetric != true || l.symmetric
        else { return nil }
        let p = try s.parts()
        guard p.isContiguous(groupSize: l.groupSize) else { return nil }
        let biases = p.biases ?? zip(p.scales, p.zeros).map { -Float($1) * $0 }
        guard p.scales.allSatisfy(PackedBlockMoves.isF16), biases.allSatisfy(PackedBlockMoves.isF16) else { return nil }
        let grid = MLXGrid(bits: l.bits, groupSize: l.groupSize)
        return (grid, try stored(base: base, shape: shape, grid: grid, codes: try s.codes(), scales: p.scales, biases: biases))
    }

    /// `t` (a block type) moved exactly onto an MLX grid the request allows: the group size asked
    /// for, else the largest of 128, 64, 32 its blocks allow; `nil` when none does.
    static func exactParts(_ t: Tensor, base: String, _ request: FlavourRequest) throws -> MLXBlockMoves.Parts? {
        if t.dtype == .mxfp4 {
            guard request.bits ?? 4 == 4, request.groupSize ?? 32 == 32 else { return nil }
            return try MLXBlockMoves.toMLX(t, base: base, groupSize: 32)
        }
        guard request.bits ?? MLXBlockMoves.bits(of: t.dtype) == MLXBlockMoves.bits(of: t.dtype) else { return nil }
        if request.symmetric == true && t.dtype == .q4_1 { return nil }
        let scales = try MLXBlockMoves.blockScales(t)
        for g in request.groupSize.map({ [$0] }) ?? [128, 64, 32] where MLXBlockMoves.fits(t, groupSize: g, scales: scales) {
            return try MLXBlockMoves.toMLX(t, base: base, groupSize: g)
        }
        return nil
    }

    /// Codes, scales and biases of one weight as MLX's three tensors (in memory).
    static func stored(base: String, shape: [Int], grid: MLXGrid, codes: [UInt8], scales: [Float], biases: [Float]) throws -> [Tensor] {
        let cols = shape.last!
        let rows = codes.count / cols
        let rowBytes = cols * grid.bits / 8
        var packed = [UInt8](repeating: 0, count: rows * rowBytes)
        codes.withUnsafeBufferPointer { c in
            packed.withUnsafeMutableBufferPointer { p in
                for r in 0..<rows {
                    MLXBits.pack(c.baseAddress! + r * cols, bits: grid.bits, count: cols, into: p.baseAddress! + r * rowBytes)
                }
            }
        }
        let lead = Array(shape.dropLast())
        let groupShape = lead + [cols / grid.groupSize]
        return [
            try Tensor(name: base + ".weight", dtype: .u32, shape: lead + [rowBytes / 4], storage: MemoryStorage(packed)),
            try Tensor(name: base + ".scales", dtype: .f16, shape: groupShape, storage: MemoryStorage(floatBytes(scales, as: .f16))),
            try Tensor(name: base + ".biases", dtype: .f16, shape: groupShape, storage: MemoryStorage(floatBytes(biases, as: .f16))),
        ]
    }

    /// `"quantization"`: the most common grid as the default, every other layer's grid under its path.
    static func quantizationConfig(_ grids: [(String, MLXGrid)]) -> JSONValue {
        var counts: [MLXGrid: Int] = [:]
        for (_, g) in grids { counts[g, default: 0] += 1 }
        let main = grids.map(\.1).first { g in counts[g] == counts.values.max() }!
        var entries = main.configEntries
        for (base, g) in grids where g != main { entries.append((base, .object(g.configEntries))) }
        return .object(entries)
    }
}
