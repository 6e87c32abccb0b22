import Formats
import Foundation

/// The per-tensor summary of quantized weights moved between grids (`convert`, `quantize`).
enum MoveSummary {
    static func json(_ moves: [TensorMove]) -> JSONValue {
        .array(moves.map { m in
            .object([
                ("tensor", .string(m.tensor)), ("from", .string(m.from)), ("to", .string(m.to)),
                ("exact", .bool(m.exact)), ("max_change", .double(m.maxChange)),
            ])
        })
    }

    /// One line per kind of move (from → to) with its count, then every move that was not exact.
    static func print(_ moves: [TensorMove]) {
        guard !moves.isEmpty else { return }
        var kinds: [(String, Int, Int)] = []
        for m in moves {
            let k = "\(m.from) → \(m.to)"
            if let i = kinds.firstIndex(where: { $0.0 == k }) {
                kinds[i].1 += 1
                kinds[i].2 += m.exact ? 1 : 0
            } else {
                kinds.append((k, 1, m.exact ? 1 : 0))
            }
        }
        Swift.print("moved \(moves.count) quantized weights (\(moves.filter(\.exact).count) exact):")
        for (k, n, e) in kinds { Swift.print("  \(n) × \(k)\(e == n ? ", exact" : e == 0 ? ", not exact" : ", \(e) exact")") }
        for m in moves where !m.exact {
            Swift.print("  not exact: \(m.tensor) (\(m.from) → \(m.to)), largest change \(String(format: "%.6g", m.maxChange))")
        }
    }
}
