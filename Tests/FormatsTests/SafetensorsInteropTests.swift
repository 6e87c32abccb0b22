import Formats
import TensorGraph
import TestSupport
import XCTest

/// Pins the safetensors reader and writer to files made and read by the Python `safetensors`
/// package (golden/make_safetensors_golden.py, golden/check_safetensors.py).
final class SafetensorsInteropTests: XCTestCase {
    struct Expected {
        let metadata: [String: String]
        let tensors: [String: (dtype: String, shape: [Int], bytes: [UInt8])]
    }

    func loadExpected(_ name: String) throws -> Expected {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.path("golden/safetensors/\(name)")))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var tensors: [String: (String, [Int], [UInt8])] = [:]
        for (name, v) in json["tensors"] as! [String: [String: Any]] {
            let hex = v["hex"] as! String
            var bytes: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex {
                let j = hex.index(i, offsetBy: 2)
                bytes.append(UInt8(hex[i..<j], radix: 16)!)
                i = j
            }
            tensors[name] = (v["dtype"] as! String, v["shape"] as! [Int], bytes)
        }
        return Expected(metadata: json["metadata"] as! [String: String], tensors: tensors)
    }

    func assertGraph(_ graph: TensorGraph, equals expected: Expected, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(Set(graph.tensors.map(\.name)), Set(expected.tensors.keys), file: file, line: line)
        for t in graph.tensors {
            guard let e = expected.tensors[t.name] else { continue }
            XCTAssertEqual(t.dtype.displayName, e.dtype, t.name, file: file, line: line)
            XCTAssertEqual(t.shape, e.shape, t.name, file: file, line: line)
            XCTAssertEqual(try t.storage.readAll(), e.bytes, t.name, file: file, line: line)
        }
        for (k, v) in expected.metadata {
            XCTAssertEqual(graph.metadata["safetensors." + k], .string(v), file: file, line: line)
        }
    }

    func testReadsGoldenFile() throws {
        let graph = try SafetensorsGraph.read(TestSupport.path("golden/safetensors/mixed.safetensors"))
        try assertGraph(graph, equals: loadExpected("mixed.expected.json"))
        XCTAssertEqual(graph.tensors.count, 14)
        XCTAssertEqual(graph["scalar"]?.shape, [])
        XCTAssertEqual(graph["empty"]?.byteCount, 0)
    }

    func testReadsGoldenShardedSet() throws {
        let graph = try SafetensorsGraph.read(TestSupport.path("golden/safetensors/sharded/model.safetensors.index.json"))
        try assertGraph(graph, equals: loadExpected("sharded.expected.json"))
        // As a folder too.
        let folder = try HFFolder.read(TestSupport.path("golden/safetensors/sharded"))
        try assertGraph(folder, equals: loadExpected("sharded.expected.json"))
    }

    func testWrittenFileReadsBackInPython() throws {
        let dir = TestSupport.tempDir("st-write")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let graph = try SafetensorsGraph.read(TestSupport.path("golden/safetensors/mixed.safetensors"))
        let out = "\(dir)/copy.safetensors"
        try SafetensorsWriter.write(graph, to: out)
        let r = try TestSupport.python(["golden/check_safetensors.py", "equal", out, "golden/safetensors/mixed.expected.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        // And our own reader agrees.
        try assertGraph(try SafetensorsGraph.read(out), equals: loadExpected("mixed.expected.json"))
    }

    func testShardedWriteReadsBackInPython() throws {
        let dir = TestSupport.tempDir("st-shards")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let graph = try SafetensorsGraph.read(TestSupport.path("golden/safetensors/mixed.safetensors"))
        let files = try SafetensorsWriter.write(graph, to: "\(dir)/model.safetensors", maxShardSize: 100)
        let shards = files.filter { $0.hasSuffix(".safetensors") }
        XCTAssertGreaterThan(shards.count, 2)
        XCTAssertTrue(shards[0].hasSuffix("model-00001-of-0000\(shards.count).safetensors"), shards[0])
        XCTAssertTrue(files.last!.hasSuffix("model.safetensors.index.json"))
        let r = try TestSupport.python(["golden/check_safetensors.py", "index", files.last!, "golden/safetensors/mixed.expected.json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        try assertGraph(try SafetensorsGraph.read(files.last!), equals: loadExpected("mixed.expected.json"))
    }

    func testHeaderIsPaddedToEightBytes() throws {
        for n in 1...9 {
            let t = try Tensor(name: String(repeating: "x", count: n), dtype: .u8, shape: [1], storage: MemoryStorage([1]))
            let h = SafetensorsWriter.header([t], metadata: [])
            XCTAssertEqual(h.count % 8, 0)
            XCTAssertEqual(h.last, h.count > 8 && h[h.count - 1] == 0x20 ? 0x20 : UInt8(ascii: "}"))
        }
    }

    func testShardPlanning() throws {
        func t(_ n: String, _ size: Int) throws -> Tensor {
            try Tensor(name: n, dtype: .u8, shape: [size], storage: MemoryStorage([UInt8](repeating: 0, count: size)))
        }
        let ts = try [t("a", 40), t("b", 40), t("c", 100), t("d", 10)]
        XCTAssertEqual(SafetensorsWriter.plan(ts, maxShardSize: 100).map { $0.map(\.name) }, [["a", "b"], ["c"], ["d"]])
        XCTAssertEqual(SafetensorsWriter.plan(ts, maxShardSize: nil).map { $0.map(\.name) }, [["a", "b", "c", "d"]])
    }
}
