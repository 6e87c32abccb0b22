// Writes the Ingot seed files (see make_seeds.py --ingot): a graph of compressible tensors of a
// few 4 KiB chunks each, so the seeds hold zstd streams, stream tables and multi-chunk tensors
// (the golden files' tensors are so small that every chunk is stored raw), at two levels, and the
// golden safetensors file as it converts.
#if canImport(Glibc)
import Glibc
#endif
import Formats
import TensorGraph

let out = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "."

func tensor(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) throws -> Tensor {
    try Tensor(name: name, dtype: dtype, shape: shape, storage: MemoryStorage(bytes))
}

func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

do {
    let ramp = le((0..<3000).map { Float(Double($0 % 7) * 0.25).bitPattern })
    let steps = le((0..<3200).map { UInt16(truncatingIfNeeded: Float(Double($0 / 200)).bitPattern >> 16) })
    let ids = le((0..<1500).map { Int32($0 / 100) })
    // Q8_0 blocks (34 bytes: an f16 scale and 32 int8 values) with a repeating pattern.
    let q8 = (0..<(34 * 160)).map { UInt8(truncatingIfNeeded: ($0 % 34 < 2) ? 0x3c : ($0 % 5)) }
    var graph = try TensorGraph(metadata: Metadata(), tensors: [
        tensor("ramp.f32", .f32, [3000], ramp), tensor("steps.bf16", .bf16, [3200], steps),
        tensor("ids.i32", .i32, [1500], ids), tensor("blocks.q8_0", .q8_0, [5, 1024], q8),
    ])
    graph.architecture = "llama"
    graph.metadata["general.name"] = .string("fuzz seed")
    for level in [3, 19] {
        let path = "\(out)/packed-level\(level).ingot"
        _ = try IngotWriter.write(graph, to: path, level: level, chunkSize: 4096, threads: 1, sourceFormat: "safetensors")
        print(path)
    }
} catch {
    print("ingot-seeds: \(error)")
    exit(1)
}
