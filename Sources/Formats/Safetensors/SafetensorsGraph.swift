import TensorGraph

/// safetensors ↔ tensor graph.
public enum SafetensorsGraph {
    /// `__metadata__` entries live in the graph's metadata under this prefix.
    public static let metadataPrefix = "safetensors."

    /// A graph from one file or from a sharded set's index.
    public static func read(_ path: String) throws -> TensorGraph {
        let tensors: [Tensor]
        let pairs: [(String, String)]
        if path.hasSuffix(".json") {
            let r = try SafetensorsReader.readIndex(path)
            (tensors, pairs) = (r.tensors, r.metadata)
        } else {
            let f = try SafetensorsReader.readFile(path)
            (tensors, pairs) = (f.tensors, f.metadata)
        }
        var metadata = Metadata()
        for (k, v) in pairs { metadata[metadataPrefix + k] = .string(v) }
        return try TensorGraph(metadata: metadata, tensors: tensors)
    }
}
