import Evaluator
import Foundation
import Kernels
import Quantization
import TensorGraph

/// GPTQ on a mixture of experts' weights ([experts, rows, columns]): one Hessian per expert,
/// from the tokens routed to that expert only (`LanguageModel.expertInputObserver`), and each
/// expert's matrix quantized with its own. Gate and up read the same input, so they share each
/// expert's Hessian; down reads the gated activations. An expert the calibration never routed
/// to has no Hessian: its matrix takes ggml's round-to-nearest (what GPTQ reduces to with no
/// information about the inputs).
extension GPTQRunner {
    /// The expert weights of layer `prefix` (`blk.N.`) that are targets, in groups that read the
    /// same input, in the order the forward pass runs them.
    func expertGroups(_ prefix: String) -> [[String]] {
        [["ffn_gate_exps", "ffn_up_exps"], ["ffn_down_exps"]]
            .map { $0.map { prefix + $0 + ".weight" }.filter { targets[$0] != nil && model.graph[$0]?.shape.count == 3 } }
            .filter { !$0.isEmpty }
    }

    /// One Gram matrix per expert of `lead` ([experts, …]), for an observer to fill.
    func expertGrams(_ lead: String) -> [Gram] {
        Array(repeating: Gram(), count: model.graph[lead]?.shape.first ?? 0)
    }

    /// Sequential mode, layer `layer`: for each group, one pass of the layer over the chunks
    /// gathers the per-expert Hessians (later groups see the earlier ones quantized), then the
    /// group is quantized and its values overridden.
    func runExperts(layer: Int, streams: [[Float]], progress: Progress) throws {
        let previous = model.expertInputObserver
        defer { model.expertInputObserver = previous }
        for group in expertGroups("blk.\(layer).") {
            let lead = group[0]
            var grams = expertGrams(lead)
            model.expertInputObserver = { name, e, _, x, rows, cols in
                if name == lead, e < grams.count { grams[e].add(x, rows: rows, cols: cols) }
            }
            progress("blk.\(layer) " + group.map(Self.short).joined(separator: "+"), layer, model.config.layers + 1)
            for (c, chunk) in chunks.enumerated() {
                _ = try model.residualStream(tokens: chunk, layers: layer..<(layer + 1), from: streams[c])
            }
            model.expertInputObserver = previous
            try quantizeExperts(group, grams: &grams)
        }
    }

    /// Quantizes every expert weight of a group, expert by expert with that expert's Hessian
    /// (round-to-nearest for an expert without one), and overrides its values when asked.
    func quantizeExperts(_ group: [String], grams: inout [Gram], override: Bool = true) throws {
        for i in grams.indices where !grams[i].values.isEmpty {
            let n = grams[i].columns
            grams[i].values.withUnsafeMutableBufferPointer { BLAS.symmetrize($0.baseAddress!, n: n) }
        }
        for name in group {
            guard let dtype = targets[name], let t = model.graph[name] else { continue }
            guard t.shape.count == 3, t.shape[0] == grams.count else {
                throw CalibrationError.numerical(tensor: name, reason: "shape \(t.shape) is not [\(grams.count) experts, rows, columns]")
            }
            let (experts, rows, cols) = (t.shape[0], t.shape[1], t.shape[2])
            let w = try f32Values(t)
            var blocks: [UInt8] = [], values: [Float] = []
            blocks.reserveCapacity(try dtype.byteCount(shape: t.shape))
            values.reserveCapacity(w.count)
            var errorSum = 0.0, rtnErrorSum = 0.0, routed = 0
            for e in 0..<experts {
                let slice = Array(w[(e * rows * cols)..<((e + 1) * rows * cols)])
                let gram = grams[e]
                let rtn = try slice.withUnsafeBufferPointer { try Quantize.rows(dtype, $0) }
                let rtnValues = try rtn.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
                guard !gram.values.isEmpty else {
                    blocks += rtn
                    values += rtnValues
                    continue
                }
                guard gram.columns == cols else {
                    throw CalibrationError.numerical(tensor: name, reason: "expert \(e) takes \(cols) inputs, its Hessian has \(gram.columns)")
                }
                let (b, v) = try slice.withUnsafeBufferPointer { wp in
                    try gram.values.withUnsafeBufferPointer { hp in
                        try GPTQ.quantize(wp.baseAddress!, rows: rows, cols: cols, hessian: hp.baseAddress!, dtype: dtype, options: options,
                                          name: "\(name) expert \(e)")
                    }
                }
                blocks += b
                values += v
                routed += 1
                errorSum += GPTQ.relativeError(original: slice, quantized: v, rows: rows, cols: cols, hessian: gram.values)
                if compareWithRTN {
                    rtnErrorSum += GPTQ.relativeError(original: slice, quantized: rtnValues, rows: rows, cols: cols, hessian: gram.values)
                }
            }
            // The mean over the routed experts of each one's relative output error.
            if routed > 0 {
                recordError(name, gptq: errorSum / Double(routed), rtn: compareWithRTN ? rtnErrorSum / Double(routed) : nil)
            }
            try storeResult(name, blocks: blocks)
            if override { try model.overrideWeight(name, values: values) }
        }
    }
}
