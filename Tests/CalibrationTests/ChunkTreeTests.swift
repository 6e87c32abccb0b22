import Calibration
import Evaluator
import XCTest

/// The fixed summation tree behind exact calibrate merges: per-chunk values cut into any number of
/// contiguous shards and merged give the bits of one run over all chunks.
final class ChunkTreeTests: XCTestCase {
    /// Values whose sum depends on the order of additions (mixed magnitudes, not exactly representable sums).
    func leaves(_ count: Int, seed: UInt64) -> [Double] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Double(state >> 11) / Double(1 << 53)
            return (u - 0.3) * pow(10, Double(Int(state % 7)) - 3)
        }
    }

    func sharded(_ values: [Double], shards n: Int) throws -> Double {
        var nodes: [ChunkTree.Node: Double] = [:]
        for k in 0..<n {
            var b = ChunkTree.Builder<Double>(add: +)
            for c in Perplexity.shardRange(k, of: n, chunks: values.count) { b.append(chunk: c, values[c]) }
            for (node, v) in b.nodes { nodes[node] = v }
        }
        return try ChunkTree.total(nodes, count: values.count, add: +)
    }

    func testAnyShardingGivesOneRunsBits() throws {
        var orderMattered = false
        for count in 1...40 {
            let values = leaves(count, seed: UInt64(count))
            let one = try sharded(values, shards: 1)
            for n in 1...count {
                XCTAssertEqual(try sharded(values, shards: n).bitPattern, one.bitPattern, "\(count) chunks, \(n) shards")
            }
            // The check has teeth: adding the shards' running sums in order would not give these bits.
            for n in 2...max(2, count) where n <= count {
                let naive = (0..<n).map { k in Perplexity.shardRange(k, of: n, chunks: count).reduce(0.0) { $0 + values[$1] } }
                    .reduce(0, +)
                if naive.bitPattern != one.bitPattern { orderMattered = true }
            }
        }
        XCTAssertTrue(orderMattered)
    }

    func testShardRangesAreContiguousAndCoverEveryChunk() {
        for count in 1...30 {
            for n in 1...count {
                let ranges = (0..<n).map { Perplexity.shardRange($0, of: n, chunks: count) }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, count)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                XCTAssertTrue(ranges.allSatisfy { $0.count == count / n || $0.count == count / n + 1 })
            }
        }
    }

    func testMissingAndOverlappingNodesAreReported() throws {
        var b = ChunkTree.Builder<Double>(add: +)
        for c in 0..<5 { b.append(chunk: c, Double(c)) }
        var nodes = Dictionary(uniqueKeysWithValues: b.nodes.map { ($0.node, $0.value) })
        XCTAssertEqual(try ChunkTree.total(nodes, count: 5, add: +), 10)
        XCTAssertThrowsError(try ChunkTree.total(nodes, count: 6, add: +)) { XCTAssertEqual($0 as? ChunkTree.Failure, .missingChunk(5)) }
        nodes[ChunkTree.Node(level: 0, index: 1)] = 1
        XCTAssertThrowsError(try ChunkTree.total(nodes, count: 5, add: +)) {
            XCTAssertEqual($0 as? ChunkTree.Failure, .unused([ChunkTree.Node(level: 0, index: 1)]))
        }
    }
}
