import Formats
import Quantization
import TensorGraph

/// Decides what a conversion between two formats does to the graph, so the CLI only wires:
/// Hugging Face → GGUF and GGUF → Hugging Face go through the architecture tables; conversions
/// within a family only cast.
public enum Conversion {
    /// `graph`, read as `source`, made ready for a writer of `target`. `dtype` casts float tensors
    /// (and is the dequantization target when values must leave a block type).
    /// `note` hears about conversions that keep names and layouts because no table applies.
    public static func prepare(
        _ graph: TensorGraph, from source: ModelFormat, to target: ModelFormat, dtype: DType?,
        note: (String) -> Void = { _ in }
    ) throws -> TensorGraph {
        let hfSide: Set<ModelFormat> = [.safetensors, .hfFolder]
        if hfSide.contains(source), target == .gguf, graph.metadata[HFFolder.metadataPrefix + "config.json"] != nil {
            if (try? ArchitectureRegistry.spec(hfModelType: graph.architecture)) != nil {
                return try HFToGGUF.convert(graph, dtype: dtype)
            }
            note("architecture '\(graph.architecture ?? "(not stated)")' has no table in formats/architectures/: "
                + "tensor names and layouts are kept as they are (a container GGUF that llama.cpp will not run)")
        }
        if source == .gguf, hfSide.contains(target), (try? ArchitectureRegistry.spec(gguf: graph.architecture)) != nil {
            if GGUFToHF.skipsTokenizer(graph) {
                note("the SentencePiece tokenizer is not written (no tokenizer.json writer for it yet): weights and config.json only")
            }
            return try GGUFToHF.convert(graph, dtype: dtype)
        }
        var out = graph
        if let dtype {
            // Every float and block-typed tensor to `dtype`; for GGUF, 1-D tensors (norms, biases)
            // to f32 as llama.cpp keeps them.
            try out.mapTensors { t in
                let want = target == .gguf && t.shape.count <= 1 ? DType.f32 : dtype
                if t.dtype.isQuantized { return try t.dequantized(to: want) }
                return Tensor.castableTypes.contains(t.dtype) ? try t.cast(to: want) : t
            }
        } else if hfSide.contains(target) {
            // safetensors cannot hold block types: their values go to f32.
            try out.mapTensors { t in t.dtype.isQuantized ? try t.dequantized(to: .f32) : t }
        }
        if target == .gguf { GGUFMetadata.apply(to: &out) }
        return out
    }
}
