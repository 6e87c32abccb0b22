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
    /// At most `listInexact` of those are listed (the rest counted).
    static func print(_ moves: [TensorMove], listInexact: Int = 10) {
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
        let inexact = moves.filter { !$0.exact }
        for m in inexact.prefix(listInexact) {
            Swift.print("  not exact: \(m.tensor) (\(m.from) → \(m.to)), largest change \(String(format: "%.6g", m.maxChange))")
        }
        if inexact.count > listInexact {
            let worst = inexact.max { $0.maxChange < $1.maxChange }!
            Swift.print("  \(inexact.count - listInexact) more not exact (\(listInexact > 0 ? "--json lists them; " : "")largest change \(String(format: "%.6g", worst.maxChange)) in \(worst.tensor))")
        }
    }
}
