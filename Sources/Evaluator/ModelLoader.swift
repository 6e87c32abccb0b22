import Architectures
import TensorGraph

/// Opens any model the tensor graph reads (GGUF, Hugging Face folder, safetensors with config,
/// Ingot) as a `LanguageModel`, through `ModelSource.openGGUFLayout`: one forward pass per
/// architecture serves every source.
public enum ModelLoader {
    public static func load(_ path: String, threads: Int, cacheDecoded: Bool = false) throws -> (model: LanguageModel, graph: TensorGraph) {
        let graph = try ModelSource.openGGUFLayout(path)
        return (try LanguageModel(graph: graph, threads: threads, cacheDecoded: cacheDecoded), graph)
    }
}
