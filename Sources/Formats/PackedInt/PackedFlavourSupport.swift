import Quantization
import TensorGraph

/// What the GPTQ and compressed-tensors flavours share on both sides of `FolderFlavour`: unpacking
/// a lifted graph (exact block moves where they exist, floats otherwise) and choosing, for each
/// weight to pack, the codes that hold it on the requested grid.
enum PackedFlavourSupport {
    /// How a group-quantized source is named in move summaries.
    static func describe(_ s: any GroupQuantizedSource, _ p: GroupQuantizedParts) -> String {
        return "\(s.format) g\(s.layout.groupSize)\(p.groupIndex != nil ? " act-order" : "") (\(p.scaleType.displayName) scales)"
    }

    /// A lifted graph (every packed weight an f32 tensor over `GroupQuantizedStorage`) made plain:
    /// each weight as the ggml block type that holds it exactly when `request.keepBlocks`, else
    /// decoded to `request.floatType` (kept over its source when that is f32, so a writer of
    /// another packed flavour can still take the codes as they are).
    static func unpack(_ lifted: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        var tensors: [Tensor] = []
        for t in lifted.tensors {
            guard let source = t.groupQuantizedSource else {
                tensors.append(t)
                continue
            }
            let parts = try source.parts()
            let from = describe(source, parts)
            if request.keepBlocks, let type = PackedBlockMoves.exactType(source.layout, parts).type {
                tensors.append(try PackedBlockMoves.toBlocks(name: t.name, source, type))
                moves.append(TensorMove(tensor: t.name, from: from, to: type.displayName, exact: true))
                continue
            }
            let floatType = request.floatType
            if floatType == .f32 {
                moves.append(TensorMove(tensor: t.name, from: from, to: "F32", exact: true))
                tensors.append(t)
                continue
            }
            let values = parts.decode(codes: try source.codes(), layout: source.layout)
            var change: Float = 0
            for v in values { change = max(change, abs(roundedValue(v, floatType) - v)) }
            let move = TensorMove(tensor: t.name, from: from, to: floatType.displayName, exact: change == 0, maxChange: Double(change))
            if request.exact && !move.exact {
                throw FlavourError.notExact(tensor: move.tensor, from: move.from, to: move.to, maxChange: move.maxChange)
            }
            moves.append(move)
            tensors.append(try t.cast(to: floatType))
        }
        var out = try TensorGraph(
            architecture: lifted.architecture, hyperparameters: lifted.hyperparameters, metadata: lifted.metadata,
            tokenizer: lifted.tokenizer, tensors: tensors)
        FlavourRegistry.updateConfig(&out, setting: [], removing: [PackedCheckpoint.configKey])
        out.metadata[HFFolder.metadataPrefix + PackedCheckpoint.autoGPTQFile] = nil
        return out
    }

    static func roundedValue(_ v: Float, _ dtype: DType) -> Float {
        switch dtype {
        case .f16: return Half.f32(f16Bits: Half.f16Bits(v))
        case .bf16: return Half.f32(bf16Bits: Half.bf16Bits(v))
        default: return v
        }
    }

    /// Whether a plain tensor is a weight these flavours quantize: a linear layer's matrix inside
    /// the decoder's layers (embeddings, the output head and norms stay in float, as GPTQModel and
    /// llm-compressor leave them by default).
    static func isLinearWeight(_ t: Tensor) -> Bool {
        t.shape.count == 2 && t.name.hasSuffix(".weight") && t.name.contains(".layers.") && !t.name.contains("norm")
            && (t.dtype.isFloat || t.dtype.isQuantized)
    }

    /// The codes holding `t` on `grid`: its own (a lifted source on the same grid, or a block type
    /// whose blocks agree within each group) — an exact move — or `t`'s values rounded to nearest.
    /// `groupIndex` says whether the writer can store act-order groups.
    static func codes(
        for t: Tensor, grid: IntGroupGrid, allowGroupIndex: Bool, request: FlavourRequest
    ) throws -> (matrix: any GroupQuantizedSource, move: TensorMove) {
        let (rows, cols) = (t.shape[0], t.shape[1])
        let to = "\(grid) (F16 scales)"
        if let s = t.groupQuantizedSource {
            let p = try s.parts()
            let l = s.layout
            let sameGrid = l.bits == grid.bits && l.groupSize == grid.groupSize && p.biases == nil
                && (!grid.symmetric || p.zeros.allSatisfy { $0 == grid.midpoint })
                && (allowGroupIndex || p.isContiguous(groupSize: l.groupSize))
                && p.scales.allSatisfy(PackedBlockMoves.isF16)
            if sameGrid {
                return (s, TensorMove(tensor: t.name, from: describe(s, p), to: to, exact: true))
            }
        }
        if PackedBlockMoves.blockTypes.contains(t.dtype), let m = try PackedBlockMoves.fromBlocks(t, grid: grid) {
            return (m, TensorMove(tensor: t.name, from: t.dtype.displayName, to: to, exact: true))
        }
        // Round to nearest from the values.
        let from: String
        if let s = t.groupQuantizedSource { from = describe(s, try s.parts()) } else { from = t.dtype.displayName }
        let values = try t.dequantized(to: .f32).storage.readAll().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let m = grid.quantize(values, rows: rows, cols: cols)
        let decoded = m.storedParts.decode(codes: m.storedCodes, layout: m.layout)
        var change: Float = 0
        for (a, b) in zip(decoded, values) { change = max(change, abs(a - b)) }
        let move = TensorMove(tensor: t.name, from: from, to: to, exact: change == 0, maxChange: Double(change))
        if request.exact && !move.exact {
            throw FlavourError.notExact(tensor: move.tensor, from: move.from, to: move.to, maxChange: move.maxChange)
        }
        return (m, move)
    }

    /// A tensor of 32-bit words or small integers, in memory.
    static func intTensor(_ name: String, _ dtype: DType, _ shape: [Int], _ values: [Int64]) throws -> Tensor {
        var bytes = [UInt8](repeating: 0, count: values.count * dtype.bytesPerBlock)
        bytes.withUnsafeMutableBytes { o in
            for (i, v) in values.enumerated() {
                switch dtype {
                case .i64: o.storeBytes(of: v.littleEndian, toByteOffset: i * 8, as: Int64.self)
                default: o.storeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
            }
        }
        return try Tensor(name: name, dtype: dtype, shape: shape, storage: MemoryStorage(bytes))
    }

    /// Scales as an f16 tensor (every value already an f16 value).
    static func f16Tensor(_ name: String, _ shape: [Int], _ values: [Float]) throws -> Tensor {
        var bytes = [UInt8](repeating: 0, count: values.count * 2)
        bytes.withUnsafeMutableBytes { o in
            for (i, v) in values.enumerated() { o.storeBytes(of: Half.f16Bits(v).littleEndian, toByteOffset: i * 2, as: UInt16.self) }
        }
        return try Tensor(name: name, dtype: .f16, shape: shape, storage: MemoryStorage(bytes))
    }
}
