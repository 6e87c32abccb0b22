import Evaluator
import Foundation
import Quantization
import TensorGraph

/// One-pass GPTQ: every Hessian comes from the unquantized model, so each layer's weights
/// quantize independently of the others' rounding, and a run over a contiguous range of "units"
/// (layers 0..<L, and unit L for the output head) needs nothing from the other units: shards
/// take contiguous ranges, run the unquantized model over the calibration chunks up to their last
/// layer, and their Hessians never leave them. Hessians are gathered per group of weights that
/// read the same input (q/k/v, gate/up), in chunk order, so any sharding gives one run's bits.
/// Memory: the Hessians of every group in the range at once.
extension GPTQRunner {
    /// The units a model has: its layers, then the output head.
    public static func unitCount(_ model: LanguageModel) -> Int { model.config.layers + 1 }

    /// The unit a weight belongs to: its layer (`blk.N.`), or the head unit for the rest.
    public static func unit(of name: String, layers: Int) -> Int {
        guard name.hasPrefix("blk.") else { return layers }
        let n = name.dropFirst(4).prefix { $0.isNumber }
        return Int(n) ?? layers
    }

    /// Quantizes the targets of units `units` from the unquantized model's Hessians.
    public func runOnePass(units: Range<Int>, progress: Progress = { _, _, _ in }) throws {
        let previous = model.linearInputObserver
        defer { model.linearInputObserver = previous }
        let layers = model.config.layers
        let wanted = Set(targets.keys.filter { units.contains(Self.unit(of: $0, layers: layers)) })
        guard !wanted.isEmpty else { return }
        var grams: [String: Gram] = [:]
        var members: [String: [String]] = [:]
        var order: [String] = []
        var lastX: UnsafePointer<Float>? = nil
        var lastKey: String? = nil
        model.linearInputObserver = { name, x, rows, cols in
            // Consecutive calls on the same input share one Hessian (keyed by the first of them).
            let key: String
            if let lk = lastKey, lastX == x { key = lk } else { key = name }
            lastX = x
            lastKey = key
            guard wanted.contains(name) else { return }
            if members[key] == nil { members[key] = []; order.append(key) }
            if !members[key]!.contains(name) { members[key]!.append(name) }
            // The group's Hessian is added once per call of its first wanted member.
            if members[key]!.first == name { grams[key, default: Gram()].add(x, rows: rows, cols: cols) }
        }
        // Expert weights: one Gram per expert of each group's first weight (`GPTQExperts.swift`).
        let previousExpert = model.expertInputObserver
        defer { model.expertInputObserver = previousExpert }
        let moeGroups = (0..<layers).filter { units.contains($0) }.flatMap { self.expertGroups("blk.\($0).") }
        var moeGrams: [String: [Gram]] = Dictionary(uniqueKeysWithValues: moeGroups.map { ($0[0], self.expertGrams($0[0])) })
        if !moeGroups.isEmpty {
            model.expertInputObserver = { name, e, _, x, rows, cols in
                if moeGrams[name] != nil, e < moeGrams[name]!.count { moeGrams[name]![e].add(x, rows: rows, cols: cols) }
            }
        }
        let needsHead = units.contains(layers) && wanted.contains { Self.unit(of: $0, layers: layers) == layers }
        let lastLayer = min(units.upperBound, layers)
        for (c, chunk) in chunks.enumerated() {
            progress("one pass, chunk \(c + 1)", c, chunks.count + 1)
            lastX = nil
            lastKey = nil
            if needsHead {
                _ = try model.logits(tokens: chunk, outputRows: 0..<chunk.count)
            } else {
                _ = try model.residualStream(tokens: chunk, layers: 0..<lastLayer, from: nil)
            }
        }
        model.linearInputObserver = previous
        model.expertInputObserver = previousExpert
        for group in moeGroups {
            progress("quantize \(group.map(Self.short).joined(separator: "+"))", chunks.count, chunks.count + 1)
            guard var g = moeGrams[group[0]] else { continue }
            try quantizeExperts(group, grams: &g, override: false)
            moeGrams[group[0]] = nil
        }
        for key in order {
            progress("quantize \(Self.short(key))", chunks.count, chunks.count + 1)
            guard var g = grams[key] else { continue }
            try quantize(members[key]!, hessian: &g, override: false)
            grams[key] = nil
        }
        progress("done", chunks.count + 1, chunks.count + 1)
    }
}
