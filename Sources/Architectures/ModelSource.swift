import Formats
import Quantization
import TensorGraph

/// The one way a model is opened: `convert`, `quantize`, `calibrate`, `perplexity` and `drift` all
/// read a path through here, so a model means the same to each of them.
public enum ModelSource {
    /// What `path` holds, the format whose conventions it follows (an Ingot file carries the graph
    /// of the format it was made from), and the graph as read.
    public static func open(_ path: String) throws -> (format: ModelFormat, origin: ModelFormat, graph: TensorGraph) {
        let (format, graph) = try FormatRegistry.open(path)
        return (format, FormatRegistry.origin(of: path, format: format), graph)
    }

    /// The model at `path` in GGUF layout and names: a Hugging Face folder (or safetensors with
    /// its config) through its architecture's table, lazily; a GGUF as it is. `dtype` casts float
    /// tensors as `convert --dtype` does. `note` hears about sources no table maps.
    public static func openGGUFLayout(_ path: String, dtype: DType? = nil, note: (String) -> Void = { _ in }) throws -> TensorGraph {
        let opened = try open(path)
        // A quantized folder (MLX, GPTQ, …): its grid as ggml block types where one matches
        // exactly, other weights decoded to f32 (unless `dtype` says otherwise).
        var moves: [TensorMove] = []
        return try Conversion.prepare(
            opened.graph, from: opened.origin, to: .gguf, dtype: dtype, flavour: FlavourRequest(floatType: dtype ?? .f32),
            moves: &moves, note: note)
    }
}
