import Calibration
import Foundation
import XCTest

final class AllocationTests: XCTestCase {
    typealias Option = Allocation.Option

    /// Every combination: the least cost within `budget` (nil when none fits).
    func bruteForce(_ items: [[Option]], budget: Int) -> (cost: Double, bytes: Int)? {
        var best: (Double, Int)?
        var pick = [Int](repeating: 0, count: items.count)
        while true {
            let bytes = zip(items, pick).reduce(0) { $0 + $1.0[$1.1].bytes }
            let cost = zip(items, pick).reduce(0.0) { $0 + $1.0[$1.1].cost }
            if bytes <= budget, best == nil || cost < best!.0 { best = (cost, bytes) }
            var i = 0
            while i < items.count {
                pick[i] += 1
                if pick[i] < items[i].count { break }
                pick[i] = 0
                i += 1
            }
            if i == items.count { return best }
        }
    }

    func randomItems(_ rng: inout SeededRandom, count: Int, options: Int, scale: Int) -> [[Option]] {
        (0..<count).map { _ in
            (0..<options).map { _ in Option(bytes: 1 + Int(rng.next() % UInt64(scale)), cost: rng.uniform()) }
        }
    }

    /// Small byte counts (grid unit 1): the optimum, at every budget in the range.
    func testExactOnBruteForceableCases() throws {
        var rng = SeededRandom(7)
        for trial in 0..<16 {
            let items = randomItems(&rng, count: 2 + trial % 4, options: 2 + trial % 3, scale: 40)
            let r = Allocation.range(items)
            for budget in stride(from: r.smallest, through: r.largest, by: max(1, (r.largest - r.smallest) / 25)) {
                let s = try Allocation.minimizeCost(items, budget: budget)
                XCTAssertEqual(s.unit, 1)
                let best = bruteForce(items, budget: budget)!
                XCTAssertLessThanOrEqual(s.bytes, budget)
                XCTAssertEqual(s.cost, best.cost, accuracy: 1e-12, "trial \(trial), budget \(budget)")
                XCTAssertEqual(s.bytes, zip(items, s.choice).reduce(0) { $0 + $1.0[$1.1].bytes })
            }
        }
    }

    /// Large byte counts (a coarse grid): never over the budget, and at least as good as the
    /// exact optimum with 0.1 % less budget.
    func testGridIsFeasibleAndWithinItsBound() throws {
        var rng = SeededRandom(11)
        for trial in 0..<30 {
            let items = randomItems(&rng, count: 5, options: 4, scale: 5_000_000)
            let r = Allocation.range(items)
            let budget = r.smallest + Int(rng.next() % UInt64(r.largest - r.smallest + 1))
            let s = try Allocation.minimizeCost(items, budget: budget)
            XCTAssertGreaterThan(s.unit, 1)
            XCTAssertLessThanOrEqual(s.bytes, budget, "trial \(trial)")
            if let tighter = bruteForce(items, budget: Int(Double(budget) * 0.999)) {
                XCTAssertLessThanOrEqual(s.cost, tighter.cost + 1e-12, "trial \(trial)")
            }
            XCTAssertGreaterThanOrEqual(s.cost, bruteForce(items, budget: budget)!.cost - 1e-12)
        }
    }

    /// --max-kld: the fewest bytes whose cost is at most the bound.
    func testMinimizeBytesOnBruteForceableCases() throws {
        var rng = SeededRandom(3)
        for trial in 0..<15 {
            let items = randomItems(&rng, count: 4, options: 3, scale: 40)
            let r = Allocation.range(items)
            let k = rng.uniform() * 2
            var fewest: Int?
            for b in r.smallest...r.largest where (bruteForce(items, budget: b)?.cost ?? .infinity) <= k {
                fewest = b
                break
            }
            guard let fewest else {
                XCTAssertThrowsError(try Allocation.minimizeBytes(items, maxCost: k))
                continue
            }
            let s = try Allocation.minimizeBytes(items, maxCost: k)
            XCTAssertEqual(s.bytes, fewest, "trial \(trial)")
            XCTAssertLessThanOrEqual(s.cost, k)
        }
    }

    func testBudgetsOutsideTheRangeAreErrors() {
        let items = [[Option(bytes: 10, cost: 1), Option(bytes: 20, cost: 0)], [Option(bytes: 5, cost: 2), Option(bytes: 9, cost: 1)]]
        XCTAssertThrowsError(try Allocation.minimizeCost(items, budget: 14)) { e in
            XCTAssertEqual(e as? Allocation.Failure, .outOfRange(budget: 14, smallest: 15, largest: 29))
        }
        XCTAssertThrowsError(try Allocation.minimizeCost(items, budget: 30)) { e in
            XCTAssertEqual(e as? Allocation.Failure, .outOfRange(budget: 30, smallest: 15, largest: 29))
        }
        XCTAssertEqual(try Allocation.minimizeCost(items, budget: 29).cost, 1)
        XCTAssertEqual(try Allocation.minimizeCost(items, budget: 15).cost, 3)
        XCTAssertThrowsError(try Allocation.minimizeBytes(items, maxCost: 0.5))
    }

    func testSpearman() {
        XCTAssertEqual(Sensitivity.spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1, accuracy: 1e-12)
        XCTAssertEqual(Sensitivity.spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1, accuracy: 1e-12)
        // Ranks [0,1,2,3] and [0,2,1,3]: Σd² = 2, n = 4 → 1 − 6·2/(4·15) = 0.8.
        XCTAssertEqual(Sensitivity.spearman([1, 2, 3, 4], [1, 3, 2, 4]), 0.8, accuracy: 1e-12)
    }
}
