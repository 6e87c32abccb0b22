import Architectures
import Evaluator
import Formats
import Foundation
import Quantization
import TensorGraph

/// How a model's weights are rounded onto the block grid.
public enum QuantMethod: String, Sendable, CaseIterable {
    /// Round to nearest: ggml's reference quantizers, byte for byte; with an importance matrix,
    /// each block's scale is searched to minimise the importance-weighted error.
    case rtn
    /// GPTQ: error-compensating column-by-column rounding from calibration activations.
    case gptq
}

/// Quantizing a whole model: the GGUF-layout graph, the recipe's decision per tensor, and the
/// output graph whose tensors are produced lazily (round-to-nearest, importance-weighted) or were
/// computed up front (GPTQ), with GGUF's file-type metadata.
public enum ModelQuantizer {
    /// The `general.file_type` (llama_ftype) of a model mostly of `dtype`.
    public static func fileType(_ dtype: DType) -> UInt32? {
        switch dtype {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        default: return nil
        }
    }

    /// One tensor's plan.
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let source: DType
        public let target: DType
        public let rule: QuantRecipe.Rule?
        public let note: String?
    }

    /// Opens `path` (any format the registry reads) as a graph in GGUF layout and names
    /// (`ModelSource.openGGUFLayout`, as every command opens models).
    public static func open(_ path: String, note: (String) -> Void = { _ in }) throws -> TensorGraph {
        try ModelSource.openGGUFLayout(path, note: note)
    }

    /// The recipe's decision for every tensor of `graph`.
    public static func plan(_ graph: TensorGraph, recipe: QuantRecipe, type: DType) -> [Entry] {
        graph.tensors.map { t in
            let d = recipe.decide(t, requested: type)
            return Entry(name: t.name, shape: t.shape, source: t.dtype, target: d.dtype, rule: d.rule, note: d.note)
        }
    }

    /// The output graph: every tensor brought to its planned type — `precomputed` blocks (GPTQ)
    /// when there are some for it, importance-weighted search when `imatrix` has the tensor,
    /// ggml's reference round-to-nearest otherwise — and the metadata of a quantized GGUF:
    /// `general.file_type` for `type`, `general.quantization_version` 2, and, with an importance
    /// matrix, llama-quantize's `quantize.imatrix.*` keys.
    public static func output(
        _ graph: TensorGraph, plan: [Entry], type: DType, imatrix: ImportanceMatrix? = nil, imatrixPath: String? = nil,
        precomputed: [String: [UInt8]] = [:], method: QuantMethod = .rtn
    ) throws -> (graph: TensorGraph, usedImportance: Int) {
        var out = graph
        var used = 0
        let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
        try out.mapTensors { t in
            guard let p = byName[t.name], p.target != t.dtype || precomputed[t.name] != nil else { return t }
            switch p.target {
            case .f32, .f16:
                if t.dtype.isQuantized { return try t.dequantized(to: p.target) }
                return Tensor.castableTypes.contains(t.dtype) ? try t.cast(to: p.target) : t
            default:
                if let blocks = precomputed[t.name] {
                    return try Tensor(name: t.name, dtype: p.target, shape: t.shape, storage: MemoryStorage(blocks))
                }
                if let imp = imatrix?.importance(for: t.name), imp.count == t.shape.last {
                    used += 1
                    return try t.quantized(to: p.target, importance: imp)
                }
                return try t.quantized(to: p.target)
            }
        }
        var m = out.metadata
        if let ft = fileType(type) { m["general.file_type"] = .uint32(ft) }
        m["general.quantization_version"] = .uint32(2)
        for k in m.keys where k.hasPrefix("quantize.imatrix.") { m[k] = nil }
        if let imatrix, used > 0 {
            if let imatrixPath { m["quantize.imatrix.file"] = .string(imatrixPath) }
            if let d = imatrix.datasets.first { m["quantize.imatrix.dataset"] = .string(d) }
            m["quantize.imatrix.entries_count"] = .int32(Int32(clamping: imatrix.entries.count))
            m["quantize.imatrix.chunks_count"] = .int32(Int32(clamping: imatrix.chunkCount))
        }
        m["smelt.quantize.method"] = .string(method.rawValue)
        out.metadata = m
        return (out, used)
    }

    /// The weights GPTQ handles: those the forward pass multiplies (everything the model's linear
    /// layers read, and the output head) whose planned type is a block type.
    public static func gptqTargets(_ plan: [Entry], model: LanguageModel) -> [String: DType] {
        var out: [String: DType] = [:]
        let head = model.graph["output.weight"] != nil ? "output.weight" : "token_embd.weight"
        for p in plan where BlockGrid.isSupported(p.target) && p.shape.count == 2 {
            if p.name.hasPrefix("blk.") || p.name == head { out[p.name] = p.target }
        }
        return out
    }

    /// Tensor data bytes, parameters and bits per weight of a graph.
    public static func size(_ graph: TensorGraph) -> (bytes: Int, parameters: Int, bitsPerWeight: Double) {
        let bytes = graph.totalBytes, params = graph.parameterCount
        return (bytes, params, params > 0 ? Double(bytes) * 8 / Double(params) : 0)
    }
}
