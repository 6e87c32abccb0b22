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
    /// The `general.file_type` (llama_ftype) of a model mostly of `dtype`: F32, F16, or the file
    /// type whose default type it is (the `_M` mix for Q3_K, Q4_K and Q5_K, as llama-quantize's
    /// aliases).
    public static func fileType(_ dtype: DType) -> UInt32? {
        switch dtype {
        case .f32: return 0
        case .f16: return 1
        default: return FileTypeMix.named(dtype.displayName).map(\.fileType)
        }
    }

    /// What to make: a file type (its mix, unless `pure`), and whether to reproduce llama-quantize
    /// byte for byte (`exactGGML`: the mix even for the legacy types, ggml's own weighted
    /// quantizers with an importance matrix, F16 as the last fallback).
    public struct Request: Sendable {
        public var mix: FileTypeMix
        public var pure: Bool
        public var exactGGML: Bool
        public var hasImatrix: Bool
        public init(mix: FileTypeMix, pure: Bool = false, exactGGML: Bool = false, hasImatrix: Bool = false) {
            self.mix = mix
            self.pure = pure
            self.exactGGML = exactGGML
            self.hasImatrix = hasImatrix
        }
        /// Whether the mix's rules apply.
        public var appliesMix: Bool { !pure && (mix.mixByDefault || exactGGML) }
        /// How an importance matrix is used.
        public var weightedMethod: WeightedQuantize.Method { exactGGML ? .ggml : .search }
    }

    /// One tensor's plan.
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let source: DType
        public let target: DType
        public let rule: QuantRecipe.Rule?
        /// Why the type is not the one asked for (a fallback, F16 or F32).
        public let note: String?
        /// The file type's rule that chose the type, when one did.
        public var mix: String? = nil
        /// The tensor's role (llama-quantize's category), when it has one.
        public var role: FileTypeMix.Role? = nil
    }

    /// Opens `path` (any format the registry reads) as a graph in GGUF layout and names
    /// (`ModelSource.openGGUFLayout`, as every command opens models).
    public static func open(_ path: String, note: (String) -> Void = { _ in }) throws -> TensorGraph {
        try ModelSource.openGGUFLayout(path, note: note)
    }

    /// The recipe's decision for every tensor of `graph`, every tensor the recipe leaves to the
    /// requested type quantized to `type`.
    public static func plan(_ graph: TensorGraph, recipe: QuantRecipe, type: DType) -> [Entry] {
        plan(graph, recipe: recipe, request: Request(mix: .pure(type, fileType: fileType(type)), pure: true))
    }

    /// The recipe's decision for every tensor of `graph`, the tensors it leaves to the requested
    /// type getting the file type's mix. A tensor's position among its role's tensors is counted
    /// as llama-quantize counts it: over the 2-D (and larger) weights of that role (not biases or
    /// the MoE router) ordered by layer number (`blk.N.`; other tensors first), then by name.
    public static func plan(_ graph: TensorGraph, recipe: QuantRecipe, request: Request) -> [Entry] {
        let context = FileTypeMix.Context(
            tensors: graph.tensors, hyperparameters: graph.hyperparameters, hasImatrix: request.hasImatrix)
        let roles = graph.tensors.map { FileTypeMix.Role.of($0.name, tiedEmbedding: context.tiedEmbedding) }
        var position = [Int](repeating: 0, count: graph.tensors.count)
        var seen: [FileTypeMix.Role: Int] = [:]
        let llamaOrder = graph.tensors.indices.sorted { a, b in
            let la = layerNumber(graph.tensors[a].name), lb = layerNumber(graph.tensors[b].name)
            return la != lb ? la < lb : graph.tensors[a].name < graph.tensors[b].name
        }
        for i in llamaOrder {
            // llama-quantize counts only the tensors it quantizes: weights, not biases (a MoE's
            // 2-D expert biases) nor the router (ffn_gate_inp).
            let name = graph.tensors[i].name
            guard let role = roles[i], graph.tensors[i].shape.count >= 2, name.hasSuffix("weight"),
                  !name.contains("ffn_gate_inp.weight") else { continue }
            position[i] = seen[role, default: 0]
            seen[role, default: 0] += 1
        }
        return graph.tensors.enumerated().map { i, t in
            let role = roles[i]
            let d = recipe.decide(t, exactGGML: request.exactGGML) { t in
                guard request.appliesMix else { return (request.mix.defaultType, nil) }
                let experts = t.shape.count == 3 && t.shape[0] > 1
                let (type, rule) = request.mix.decide(
                    role: role, index: position[i], rowLength: t.shape.last ?? 0, experts: experts, context: context)
                return (type, rule.map { "\(request.mix.name): \($0.why ?? $0.role.rawValue)" })
            }
            return Entry(
                name: t.name, shape: t.shape, source: t.dtype, target: d.dtype, rule: d.rule, note: d.note, mix: d.mix,
                role: role)
        }
    }

    /// N of a `blk.N.` name, -1 for other names (llama.cpp's loader order).
    static func layerNumber(_ name: String) -> Int {
        guard name.hasPrefix("blk.") else { return -1 }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let n = Int(rest[..<dot]) else { return -1 }
        return n
    }

    /// The output graph: every tensor brought to its planned type — `precomputed` blocks (GPTQ)
    /// when there are some for it, importance-weighted search when `imatrix` has the tensor,
    /// ggml's reference round-to-nearest otherwise — and the metadata of a quantized GGUF:
    /// `general.file_type` for `type`, `general.quantization_version` 2, and, with an importance
    /// matrix, llama-quantize's `quantize.imatrix.*` keys.
    public static func output(
        _ graph: TensorGraph, plan: [Entry], type: DType, fileType: UInt32? = nil, imatrix: ImportanceMatrix? = nil,
        imatrixPath: String? = nil, precomputed: [String: [UInt8]] = [:], method: QuantMethod = .rtn,
        weighted: WeightedQuantize.Method = .search
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
                if let imp = imatrix?.importance(for: t.name), ExpertQuantize.applies(t, importance: imp) {
                    used += 1
                    return try ExpertQuantize.quantized(t, to: p.target, importance: imp, method: weighted)
                }
                if let imp = imatrix?.importance(for: t.name), imp.count == t.shape.last {
                    used += 1
                    return try t.quantized(to: p.target, importance: imp, method: weighted)
                }
                return try t.quantized(to: p.target)
            }
        }
        var m = out.metadata
        if let ft = fileType ?? Self.fileType(type), ft != UInt32.max { m["general.file_type"] = .uint32(ft) }
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
        // 2-D weights, and the 3-D expert weights of a mixture of experts (one Hessian per expert).
        for p in plan where GPTQGrid.isSupported(p.target) && (p.shape.count == 2 || (p.shape.count == 3 && p.name.hasSuffix("_exps.weight"))) {
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
