import Evaluator
import Foundation
import Kernels
import TensorGraph

/// Accumulates, for every linear layer a model runs, the sum of each input column's squared
/// activation and the number of rows (tokens) seen, through `LanguageModel.linearInputObserver`.
/// Sums are kept in double precision.
public final class ImportanceCollector: @unchecked Sendable {
    public private(set) var sums: [String: [Double]] = [:]
    public private(set) var counts: [String: Int] = [:]
    /// Weight names in the order first seen.
    public private(set) var order: [String] = []

    public init() {}

    /// Adds one call's activations ([rows × columns], row-major).
    public func add(_ weight: String, _ x: UnsafePointer<Float>, rows: Int, columns: Int) {
        if sums[weight] == nil {
            sums[weight] = [Double](repeating: 0, count: columns)
            counts[weight] = 0
            order.append(weight)
        }
        sums[weight]!.withUnsafeMutableBufferPointer { s in
            guard s.count == columns else { return }
            // Per call, f32 partial sums over at most 64 rows, then into doubles.
            let part = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            defer { part.deallocate() }
            var r = 0
            while r < rows {
                let end = min(rows, r + 64)
                part.initialize(repeating: 0, count: columns)
                for i in r..<end {
                    let row = x + i * columns
                    for c in 0..<columns { part[c] += row[c] * row[c] }
                }
                for c in 0..<columns { s[c] += Double(part[c]) }
                r = end
            }
        }
        counts[weight]! += rows
    }

    /// Installs the collector on `model` (replacing any observer).
    public func install(on model: LanguageModel) {
        model.linearInputObserver = { [unowned self] name, x, rows, cols in self.add(name, x, rows: rows, columns: cols) }
    }

    /// The importance matrix collected so far.
    public func matrix(datasets: [String], chunkCount: Int, chunkSize: Int) -> ImportanceMatrix {
        var m = ImportanceMatrix(datasets: datasets, chunkCount: chunkCount, chunkSize: chunkSize)
        for (name, s) in sums {
            m.entries[name] = .init(sums: s.map { Float($0) }, counts: [Float(counts[name] ?? 0)])
        }
        return m
    }
}

/// Calibration runs: the importance matrix of a model on a text.
public enum Calibrate {
    /// Runs every chunk through `model` (all rows through the output head, so it is calibrated
    /// too) and returns the importance matrix of every linear weight it ran.
    /// `progress(done, total)` is called after each chunk.
    public static func importanceMatrix(
        model: LanguageModel, chunks: [[Int32]], dataset: String, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> ImportanceMatrix {
        let collector = ImportanceCollector()
        let previous = model.linearInputObserver
        collector.install(on: model)
        defer { model.linearInputObserver = previous }
        for (i, chunk) in chunks.enumerated() {
            _ = try model.logits(tokens: chunk, outputRows: 0..<chunk.count)
            progress(i + 1, chunks.count)
        }
        return collector.matrix(datasets: [dataset], chunkCount: chunks.count, chunkSize: chunks.first?.count ?? 0)
    }
}
