import Foundation

/// Choosing one option (a type) per item (a tensor) to minimise the summed cost (predicted KLD)
/// under a byte budget: a multiple-choice knapsack, solved by dynamic programming over a byte
/// grid. Each item's bytes above its smallest option are rounded *up* to the grid unit, so every
/// solution the program finds fits the real budget; the unit is at most `precision` × budget ÷
/// items bytes, so the rounding can cost at most a `precision` share of the budget (the optimum
/// found is at least as good as the exact optimum at budget × (1 − precision)). With unit 1 (small
/// byte counts) it is exact.
public enum Allocation {
    public struct Option: Sendable, Equatable {
        public var bytes: Int
        public var cost: Double
        public init(bytes: Int, cost: Double) {
            self.bytes = bytes
            self.cost = cost
        }
    }

    public struct Solution: Sendable, Equatable {
        /// The option chosen per item.
        public var choice: [Int]
        public var bytes: Int
        public var cost: Double
        /// The grid unit used, in bytes.
        public var unit: Int
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The budget is outside what the items can reach.
        case outOfRange(budget: Int, smallest: Int, largest: Int)
        /// No mix reaches the cost asked for.
        case costUnreachable(maxCost: Double, smallestCost: Double)
        case noOptions(item: Int)

        public var description: String {
            switch self {
            case let .outOfRange(b, s, l):
                return "a budget of \(b) bytes is outside the reachable range \(s)…\(l) bytes"
            case let .costUnreachable(k, s):
                return "no mix has a predicted KLD of at most \(k): the smallest reachable is \(s)"
            case let .noOptions(i): return "item \(i) has no options"
            }
        }
    }

    /// The smallest and largest total bytes.
    public static func range(_ items: [[Option]]) -> (smallest: Int, largest: Int) {
        (items.reduce(0) { $0 + ($1.map(\.bytes).min() ?? 0) }, items.reduce(0) { $0 + ($1.map(\.bytes).max() ?? 0) })
    }

    /// The options of least cost whose bytes sum to at most `budget`. A budget above the largest
    /// total is an error too (`outOfRange`): the caller asked for more than every item at its
    /// largest option.
    public static func minimizeCost(_ items: [[Option]], budget: Int, precision: Double = 0.001) throws(Failure) -> Solution {
        let r = range(items)
        guard budget >= r.smallest, budget <= r.largest else { throw .outOfRange(budget: budget, smallest: r.smallest, largest: r.largest) }
        let table = try Table(items, capacity: budget - r.smallest, unit: unit(items, budget: budget, precision: precision))
        return table.solution(cells: table.cells)
    }

    /// The fewest bytes whose least cost is at most `maxCost`.
    public static func minimizeBytes(_ items: [[Option]], maxCost: Double, precision: Double = 0.001) throws(Failure) -> Solution {
        let r = range(items)
        let table = try Table(items, capacity: r.largest - r.smallest, unit: unit(items, budget: r.largest, precision: precision))
        guard let c = table.best.firstIndex(where: { $0 <= maxCost }) else {
            throw .costUnreachable(maxCost: maxCost, smallestCost: table.best.last ?? .infinity)
        }
        return table.solution(cells: c)
    }

    /// The least cost at each of `budgets` (bytes; each within `range`), from one table.
    public static func frontier(_ items: [[Option]], budgets: [Int], precision: Double = 0.001) throws(Failure) -> [Solution] {
        let r = range(items)
        let table = try Table(items, capacity: r.largest - r.smallest, unit: unit(items, budget: r.largest, precision: precision))
        return budgets.map { b in table.solution(cells: min(table.cells, max(0, (b - r.smallest) / table.unit))) }
    }

    static func unit(_ items: [[Option]], budget: Int, precision: Double) -> Int {
        max(1, Int(Double(budget) * precision / Double(max(1, items.count))))
    }

    /// best[c]: the least cost with extra bytes (above every item's smallest option) within c
    /// units; choice[i][c] the option item i takes in it.
    struct Table {
        let items: [[Option]]
        let unit: Int
        let cells: Int
        let base: Int
        var best: [Double]
        var choice: [[UInt8]]

        init(_ items: [[Option]], capacity: Int, unit: Int) throws(Failure) {
            self.items = items
            self.unit = unit
            let cells = max(0, capacity / unit)
            self.cells = cells
            base = items.reduce(0) { $0 + ($1.map(\.bytes).min() ?? 0) }
            var f = [Double](repeating: 0, count: cells + 1)
            var g = f
            var choice: [[UInt8]] = []
            choice.reserveCapacity(items.count)
            for (i, options) in items.enumerated() {
                guard !options.isEmpty, options.count < 256 else { throw .noOptions(item: i) }
                let low = options.map(\.bytes).min()!
                // Extra bytes above the smallest option, rounded up to the grid.
                let w = options.map { ($0.bytes - low + unit - 1) / unit }
                var pick = [UInt8](repeating: 0, count: cells + 1)
                f.withUnsafeBufferPointer { f in
                    g.withUnsafeMutableBufferPointer { g in
                        pick.withUnsafeMutableBufferPointer { pick in
                            for c in 0...cells {
                                var bestCost = Double.infinity, bestK = 0
                                for (k, o) in options.enumerated() where w[k] <= c {
                                    let v = f[c - w[k]] + o.cost
                                    if v < bestCost { bestCost = v; bestK = k }
                                }
                                g[c] = bestCost
                                pick[c] = UInt8(bestK)
                            }
                        }
                    }
                }
                swap(&f, &g)
                choice.append(pick)
            }
            best = f
            self.choice = choice
        }

        func solution(cells c: Int) -> Solution {
            var c = c
            var picks = [Int](repeating: 0, count: items.count)
            for i in stride(from: items.count - 1, through: 0, by: -1) {
                let k = Int(choice[i][c])
                picks[i] = k
                let low = items[i].map(\.bytes).min()!
                c -= (items[i][k].bytes - low + unit - 1) / unit
            }
            let bytes = zip(items, picks).reduce(0) { $0 + $1.0[$1.1].bytes }
            let cost = zip(items, picks).reduce(0.0) { $0 + $1.0[$1.1].cost }
            return Solution(choice: picks, bytes: bytes, cost: cost, unit: unit)
        }
    }
}
