import TensorGraph

/// Hugging Face `config.json` ↔ typed hyperparameters. Each hyperparameter lists the config keys
/// that carry it across model families, first match wins (GPT-2 uses `n_embd`, Llama `hidden_size`).
public enum HFConfig {
    nonisolated(unsafe) public static let keys: [(field: WritableKeyPath<Hyperparameters, Int?>, names: [String])] = [
        (\.contextLength, ["max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"]),
        (\.embeddingLength, ["hidden_size", "n_embd", "d_model"]),
        (\.blockCount, ["num_hidden_layers", "n_layer", "num_layers"]),
        (\.feedForwardLength, ["intermediate_size", "n_inner", "ffn_dim"]),
        (\.headCount, ["num_attention_heads", "n_head"]),
        (\.headCountKV, ["num_key_value_heads"]),
        (\.vocabSize, ["vocab_size"]),
    ]
    nonisolated(unsafe) public static let floatKeys: [(field: WritableKeyPath<Hyperparameters, Double?>, names: [String])] = [
        (\.ropeFreqBase, ["rope_theta"]),
        (\.layerNormEpsilon, ["layer_norm_eps", "layer_norm_epsilon"]),
        (\.rmsNormEpsilon, ["rms_norm_eps"]),
    ]

    /// The architecture (`model_type`) and hyperparameters a config declares.
    public static func parse(_ config: JSONValue) -> (architecture: String?, hyperparameters: Hyperparameters) {
        var h = Hyperparameters()
        for (field, names) in keys {
            if let v = names.lazy.compactMap({ config[$0]?.intValue }).first { h[keyPath: field] = v }
        }
        for (field, names) in floatKeys {
            // transformers 5 keeps rope_theta under rope_parameters.
            if let v = names.lazy.compactMap({ config[$0]?.doubleValue ?? config["rope_parameters"]?[$0]?.doubleValue }).first {
                h[keyPath: field] = v
            }
        }
        if let head = config["head_dim"]?.intValue {
            h.ropeDimensionCount = head
        } else if let e = h.embeddingLength, let n = h.headCount, n > 0, e % n == 0,
            h.ropeFreqBase != nil
        {
            h.ropeDimensionCount = e / n
        }
        return (config["model_type"]?.stringValue, h)
    }
}
