import Architectures
import Evaluator
import Formats
import Quantization
import TensorGraph

/// `smelt quantize --format gptq|compressed-tensors`: a model's linear weights onto an integer
/// group grid (`IntGroupGrid`) by round to nearest, importance-weighted round to nearest
/// (`--imatrix`) or GPTQ (`GPTQ.quantize(…grid:)` through `GPTQRunner`), then written as the
/// folder flavour — the quantized codes reach the writer as they are (`GroupQuantizedStorage`),
/// so the flavour stores exactly what was decided here.
public enum PackedQuantizer {
    /// The weights quantized, by GGUF name: every 2-D `blk.N.*.weight` except norms (the linear
    /// layers; embeddings and the output head stay in float, as GPTQModel and llm-compressor
    /// leave them by default).
    public static func targets(_ graph: TensorGraph) -> [String] {
        graph.tensors.filter { $0.name.hasPrefix("blk.") && $0.name.hasSuffix(".weight") && $0.shape.count == 2 && !$0.name.contains("norm") }
            .map(\.name)
    }

    /// Round to nearest (importance-weighted where `imatrix` has the weight).
    public static func roundToNearest(_ graph: TensorGraph, grid: IntGroupGrid, imatrix: ImportanceMatrix?) throws -> (graph: TensorGraph, weighted: Int) {
        var matrices: [String: GroupQuantizedMatrix] = [:]
        var weighted = 0
        for name in targets(graph) {
            let t = graph[name]!
            let (rows, cols) = (t.shape[0], t.shape[1])
            let values = try f32(t)
            if let imp = imatrix?.importance(for: name), imp.count == cols {
                matrices[name] = GPTQ.weightedRTN(values, rows: rows, cols: cols, importance: imp, grid: grid)
                weighted += 1
            } else {
                matrices[name] = grid.quantize(values, rows: rows, cols: cols)
            }
        }
        return (try replaced(graph, matrices), weighted)
    }

    /// GPTQ, layer by layer on the calibration chunks (`GPTQRunner`'s sequential walk).
    /// `groupSize`, when given, picks each matrix's group size from its row length (MLX, whose
    /// groups must divide the row); otherwise every matrix takes `grid`'s.
    public static func gptq(
        _ graph: TensorGraph, model: LanguageModel, chunks: [[Int32]], grid: IntGroupGrid, options: GPTQ.Options,
        progress: @escaping GPTQRunner.Progress = { _, _, _ in },
        groupSize: ((_ cols: Int) -> Int)? = nil
    ) throws -> (graph: TensorGraph, relativeErrors: [String: Double]) {
        func gridFor(_ cols: Int) -> IntGroupGrid {
            var g = grid
            if let groupSize { g.groupSize = groupSize(cols) }
            return g
        }
        let names = targets(graph)
        var targetTypes: [String: DType] = [:]
        for n in names { targetTypes[n] = .f32 }  // any type: the matrix quantizer below decides
        let runner = GPTQRunner(model: model, targets: targetTypes, chunks: chunks, options: options)
        var matrices: [String: GroupQuantizedMatrix] = [:]
        runner.matrixQuantizer = { name, w, rows, cols, hessian in
            let m = try w.withUnsafeBufferPointer { wp in
                try hessian.withUnsafeBufferPointer { hp in
                    try GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, grid: gridFor(cols), options: options, name: name)
                }
            }
            matrices[name] = m
            return m.storedParts.decode(codes: m.storedCodes, layout: m.layout)
        }
        try runner.run(progress: progress)
        // Weights the calibration never reached (no input seen) are rounded to nearest.
        for name in names where matrices[name] == nil {
            let t = graph[name]!
            matrices[name] = gridFor(t.shape[1]).quantize(try f32(t), rows: t.shape[0], cols: t.shape[1])
        }
        return (try replaced(graph, matrices), runner.relativeErrors)
    }

    /// `graph` (GGUF layout, quantized weights over their codes) as the folder `flavour` writes:
    /// back to Hugging Face names and layout (rows un-permuted with their codes), the tensors left
    /// in float cast to `floatType` (f16, the type GPTQModel and llm-compressor checkpoints keep
    /// them in; `nil` keeps the source's), then packed.
    /// `exact: false` lets the flavour round to nearest what it quantizes beyond the matrices
    /// given (MLX quantizes the embedding too).
    public static func folder(
        _ graph: TensorGraph, flavour: any FolderFlavour.Type, grid: IntGroupGrid, floatType: DType? = .f16,
        exact: Bool = true, moves: inout [TensorMove]
    ) throws -> TensorGraph {
        var hf = try Conversion.prepare(graph, from: .gguf, to: .hfFolder, dtype: nil)
        if let floatType {
            try hf.mapTensors { t in
                t.groupQuantizedSource == nil && Tensor.castableTypes.contains(t.dtype) ? try t.cast(to: floatType) : t
            }
            FlavourRegistry.updateConfig(&hf, setting: [("torch_dtype", .string(floatType == .bf16 ? "bfloat16" : floatType == .f16 ? "float16" : "float32"))])
        }
        let request = FlavourRequest(format: flavour.name, bits: grid.bits, groupSize: grid.groupSize, symmetric: grid.symmetric, exact: exact)
        return try flavour.pack(hf, request, moves: &moves)
    }

    static func replaced(_ graph: TensorGraph, _ matrices: [String: GroupQuantizedMatrix]) throws -> TensorGraph {
        var out = graph
        try out.mapTensors { t in
            guard let m = matrices[t.name] else { return t }
            return try GroupQuantizedStorage.tensor(name: t.name, source: m)
        }
        return out
    }

    static func f32(_ t: Tensor) throws -> [Float] {
        let f = try t.dtype == .f32 ? t : t.dequantized(to: .f32)
        return try f.storage.readAll().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
