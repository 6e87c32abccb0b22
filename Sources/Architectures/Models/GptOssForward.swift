/// gpt-oss's forward pass (the unit's configuration and conversion are in `GptOss.swift`): the
/// Llama-style decoder with NeoX rotary pairs and YaRN, Q/K/V/O biases, a sink logit per head,
/// sliding-window layers where `slidingLayers` says, the pre-FFN norm that llama.cpp names
/// `post_attention_norm`, and a mixture of experts: router with bias, top-k, softmax over the
/// chosen logits, the clamped SwiGLU (`swiglu_alpha`, `swiglu_limit`, `up + 1`), expert biases.
extension GptOss {
    func plannedForward() throws -> ForwardPlan {
        var p = decoder.plan(rope: .neox)
        p.ropeFreqFactors = nil
        // A GGUF has no key for YaRN's `truncate`; an absent one counts as false here, as
        // GptOssConfig's default and every gpt-oss release state it (transformers reads a
        // rope_parameters object without the key as true: such a config must state it).
        if p.ropeYarn != nil, p.ropeYarn?.truncate == nil { p.ropeYarn?.truncate = false }
        p.slidingWindow = slidingWindow
        p.slidingLayers = slidingLayers
        p.attentionSinks = true
        p.ffnNorm = "post_attention_norm"
        p.experts = ForwardPlan.MixtureOfExperts(
            experts: experts, used: expertsUsed, normalizeChosen: true,
            activation: .clampedSwiGLU(alpha: Float(swigluAlpha), limit: Float(swigluLimit)))
        return try p.validated(keys: DecoderConfig.keyNames.merging(["expertsUsed": "num_experts_per_tok"]) { a, _ in a })
    }
}
