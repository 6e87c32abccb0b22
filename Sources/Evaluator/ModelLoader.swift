import Architectures
import Formats
import TensorGraph

/// Opens any model the tensor graph reads (GGUF, Hugging Face folder, safetensors with config,
/// Ingot) as a `LanguageModel`: graphs in Hugging Face layout go through the lazy HF → GGUF
/// mapping, so one forward pass per architecture serves every source.
public enum ModelLoader {
    public static func load(_ path: String, threads: Int, cacheDecoded: Bool = false) throws -> (model: LanguageModel, graph: TensorGraph) {
        let (format, graph) = try FormatRegistry.open(path)
        let ggufLayout: TensorGraph
        if format != .gguf, graph.metadata[HFFolder.metadataPrefix + "config.json"] != nil {
            ggufLayout = try HFToGGUF.convert(graph)
        } else {
            ggufLayout = graph
        }
        return (try LanguageModel(graph: ggufLayout, threads: threads, cacheDecoded: cacheDecoded), ggufLayout)
    }
}
