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
    /// Expert weights ([experts, rows, columns]): tokens routed to each expert; their `sums`
    /// hold each expert's columns one after another.
    public private(set) var expertCounts: [String: [Int]] = [:]
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

    /// Adds the rows routed to expert `expert` of an expert weight with `experts` experts, as
    /// llama-imatrix does for `*_exps` tensors: Σ x² into that expert's columns, the rows into its
    /// count. Experts never routed to keep a zero count (quantization then gives them a neutral
    /// importance of 1 rather than dropping the tensor's entry).
    public func addExpert(_ weight: String, expert: Int, experts: Int, _ x: UnsafePointer<Float>, rows: Int, columns: Int) {
        if sums[weight] == nil {
            sums[weight] = [Double](repeating: 0, count: experts * columns)
            expertCounts[weight] = [Int](repeating: 0, count: experts)
            order.append(weight)
        }
        guard sums[weight]!.count == experts * columns, expert >= 0, expert < experts else { return }
        sums[weight]!.withUnsafeMutableBufferPointer { all in
            let s = UnsafeMutableBufferPointer(rebasing: all[(expert * columns)..<((expert + 1) * columns)])
            Self.accumulate(x, rows: rows, columns: columns, into: s)
        }
        expertCounts[weight]![expert] += rows
    }

    static func accumulate(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into s: UnsafeMutableBufferPointer<Double>) {
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

    /// The sums and counts so far, and a fresh start from zero.
    public func take() -> ImportanceSums {
        let out = ImportanceSums(sums: sums, counts: counts, expertCounts: expertCounts)
        sums = [:]
        counts = [:]
        expertCounts = [:]
        order = []
        return out
    }

    /// Installs the collector on `model` (replacing any observers).
    public func install(on model: LanguageModel) {
        model.linearInputObserver = { [unowned self] name, x, rows, cols in self.add(name, x, rows: rows, columns: cols) }
        model.expertInputObserver = { [unowned self] name, e, n, x, rows, cols in
            self.addExpert(name, expert: e, experts: n, x, rows: rows, columns: cols)
        }
    }

    /// The importance matrix collected so far.
    public func matrix(datasets: [String], chunkCount: Int, chunkSize: Int) -> ImportanceMatrix {
        ImportanceSums(sums: sums, counts: counts, expertCounts: expertCounts).matrix(datasets: datasets, chunkCount: chunkCount, chunkSize: chunkSize)
    }
}

/// Per weight, the double-precision sums of squared activations and the tokens seen, over a set
/// of chunks; expert weights have one count per expert (`expertCounts`) instead.
public struct ImportanceSums: Sendable, Equatable {
    public var sums: [String: [Double]]
    public var counts: [String: Int]
    public var expertCounts: [String: [Int]]

    public init(sums: [String: [Double]] = [:], counts: [String: Int] = [:], expertCounts: [String: [Int]] = [:]) {
        self.sums = sums
        self.counts = counts
        self.expertCounts = expertCounts
    }

    /// The counts of a weight as the imatrix stores them: one per expert, or one.
    public func countsOf(_ name: String) -> [Int] { expertCounts[name] ?? [counts[name] ?? 0] }

    /// Element-wise `self + other` (self's values first, so the order of additions is fixed).
    public func adding(_ other: ImportanceSums) -> ImportanceSums {
        var out = self
        for (name, b) in other.sums {
            if let a = out.sums[name], a.count == b.count {
                out.sums[name] = zip(a, b).map { $0 + $1 }
            } else if out.sums[name] == nil {
                out.sums[name] = b
            }
            if let b = other.expertCounts[name] {
                if let a = out.expertCounts[name], a.count == b.count {
                    out.expertCounts[name] = zip(a, b).map { $0 + $1 }
                } else if out.expertCounts[name] == nil {
                    out.expertCounts[name] = b
                }
            } else {
                out.counts[name, default: 0] += other.counts[name] ?? 0
            }
        }
        return out
    }

    public func matrix(datasets: [String], chunkCount: Int, chunkSize: Int) -> ImportanceMatrix {
        var m = ImportanceMatrix(datasets: datasets, chunkCount: chunkCount, chunkSize: chunkSize)
        for (name, s) in sums {
            m.entries[name] = .init(sums: s.map { Float($0) }, counts: countsOf(name).map { Float($0) })
        }
        return m
    }
}

/// The fixed order in which per-chunk sums are added: a binary tree over the chunk indices
/// 0..<count whose node (level, index) covers chunks index·2^level ..< (index+1)·2^level (cut at
/// count), its value the left child's plus the right child's. A run over any contiguous range of
/// chunks can add up the nodes that lie wholly inside its range (at most two per level), and the
/// nodes of ranges that cover 0..<count add up to the root exactly as one run over all chunks
/// does: floating-point sums that do not depend on how the chunks were cut into shards.
public enum ChunkTree {
    public struct Node: Hashable, Comparable, Sendable {
        public let level: Int
        public let index: Int
        public init(level: Int, index: Int) {
            self.level = level
            self.index = index
        }
        public var first: Int { index << level }
        public static func < (a: Node, b: Node) -> Bool { (a.first, -a.level) < (b.first, -b.level) }
    }

    /// Adds leaves in chunk order, combining two siblings as soon as both are complete.
    public struct Builder<Value> {
        public private(set) var nodes: [(node: Node, value: Value)] = []
        let add: (Value, Value) -> Value

        public init(add: @escaping (Value, Value) -> Value) { self.add = add }

        public mutating func append(chunk: Int, _ value: Value) {
            nodes.append((Node(level: 0, index: chunk), value))
            while nodes.count >= 2 {
                let a = nodes[nodes.count - 2], b = nodes[nodes.count - 1]
                guard a.node.level == b.node.level, a.node.index % 2 == 0, b.node.index == a.node.index + 1 else { break }
                nodes.removeLast(2)
                nodes.append((Node(level: a.node.level + 1, index: a.node.index / 2), add(a.value, b.value)))
            }
        }
    }

    public enum Failure: Error, Equatable {
        /// No node covers this chunk.
        case missingChunk(Int)
        /// These nodes were given but are not part of the sum (an overlap or a chunk past the end).
        case unused([Node])
    }

    /// The sum over chunks 0..<count from `nodes`, in the tree's order.
    public static func total<Value>(_ nodes: [Node: Value], count: Int, add: (Value, Value) -> Value) throws(Failure) -> Value {
        precondition(count > 0)
        var level = 0
        while 1 << level < count { level += 1 }
        var used = Set<Node>()
        func sum(_ n: Node) throws(Failure) -> Value {
            if let v = nodes[n] {
                used.insert(n)
                return v
            }
            guard n.level > 0 else { throw .missingChunk(n.index) }
            let left = try sum(Node(level: n.level - 1, index: 2 * n.index))
            let right = Node(level: n.level - 1, index: 2 * n.index + 1)
            guard right.first < count else { return left }
            return add(left, try sum(right))
        }
        let v = try sum(Node(level: level, index: 0))
        let unused = Set(nodes.keys).subtracting(used)
        guard unused.isEmpty else { throw .unused(unused.sorted()) }
        return v
    }
}

/// Calibration runs: the importance matrix of a model on a text.
public enum Calibrate {
    /// Runs every chunk through `model` (all rows through the output head, so it is calibrated
    /// too) and returns the importance matrix of every linear weight it ran. Each chunk's sums
    /// start from zero and the chunks' sums are added in `ChunkTree`'s order, so shards merged
    /// with `ChunkTree.total` give the same bits.
    /// `progress(done, total)` is called after each chunk.
    public static func importanceMatrix(
        model: LanguageModel, chunks: [[Int32]], dataset: String, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> ImportanceMatrix {
        let nodes = try importanceNodes(model: model, chunks: chunks, range: chunks.indices, progress: progress)
        let total = try ChunkTree.total(Dictionary(uniqueKeysWithValues: nodes.map { ($0.node, $0.value) }), count: chunks.count) {
            $0.adding($1)
        }
        return total.matrix(datasets: [dataset], chunkCount: chunks.count, chunkSize: chunks.first?.count ?? 0)
    }

    /// The importance sums of the chunks in `range`, as the `ChunkTree` nodes that lie inside it.
    public static func importanceNodes(
        model: LanguageModel, chunks: [[Int32]], range: Range<Int>, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [(node: ChunkTree.Node, value: ImportanceSums)] {
        let collector = ImportanceCollector()
        let previous = model.linearInputObserver
        collector.install(on: model)
        defer { model.linearInputObserver = previous }
        var tree = ChunkTree.Builder<ImportanceSums> { $0.adding($1) }
        for (i, c) in range.enumerated() {
            _ = try model.logits(tokens: chunks[c], outputRows: 0..<chunks[c].count)
            tree.append(chunk: c, collector.take())
            progress(i + 1, range.count)
        }
        return tree.nodes
    }
}
