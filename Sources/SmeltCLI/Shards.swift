import ArgumentParser
import Codecs
import Evaluator
import Formats
import Foundation
import Kernels
import TensorGraph

/// Smelt's version as partial results record it (shards of different versions do not merge).
enum SmeltVersion {
    static let string = "0.1.0"
}

/// `--shard K/N` and `--partial FILE`: run one contiguous share of the chunks and write a partial
/// result for `smelt merge`.
struct ShardOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Run shard K of N (K from 0 to N-1): a contiguous share of the chunks. `auto` takes K and N from SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN) and SLURM_ARRAY_TASK_COUNT, or from JOB_COMPLETION_INDEX and SMELT_SHARD_COUNT.",
        valueName: "K/N|auto"))
    var shard: String?
    @Option(help: ArgumentHelp("Write this shard's partial result here (for `smelt merge`) instead of the report.", valueName: "FILE"))
    var partial: String?

    func validate() throws {
        if shard != nil && partial == nil { throw ValidationError("--shard needs --partial FILE") }
        if let shard, shard != "auto" { _ = try Self.parse(shard) }
    }

    /// (K, N) when running as a shard; (0, 1) with --partial alone; nil for a whole run.
    func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (k: Int, n: Int)? {
        guard partial != nil else { return nil }
        guard let shard else { return (0, 1) }
        if shard != "auto" { return try Self.parse(shard) }
        let env = environment
        if let id = env["SLURM_ARRAY_TASK_ID"].flatMap(Int.init), let count = env["SLURM_ARRAY_TASK_COUNT"].flatMap(Int.init) {
            let k = id - (env["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init) ?? 0)
            return try Self.check(k, count, from: "SLURM_ARRAY_TASK_ID=\(id), SLURM_ARRAY_TASK_COUNT=\(count)")
        }
        if let index = env["JOB_COMPLETION_INDEX"].flatMap(Int.init) {
            guard let count = env["SMELT_SHARD_COUNT"].flatMap(Int.init) else {
                throw EvaluatorError.badInput("--shard auto: JOB_COMPLETION_INDEX=\(index) is set but SMELT_SHARD_COUNT (the Job's completions) is not")
            }
            return try Self.check(index, count, from: "JOB_COMPLETION_INDEX=\(index), SMELT_SHARD_COUNT=\(count)")
        }
        throw EvaluatorError.badInput("--shard auto: neither SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT nor JOB_COMPLETION_INDEX is set")
    }

    static func parse(_ s: String) throws -> (k: Int, n: Int) {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw ValidationError("--shard must be K/N (e.g. 0/4) or auto, not '\(s)'")
        }
        return try check(k, n, from: "--shard \(s)")
    }

    static func check(_ k: Int, _ n: Int, from: String) throws -> (k: Int, n: Int) {
        guard n >= 1, k >= 0, k < n else { throw ValidationError("\(from): K must be from 0 to N-1 with N ≥ 1") }
        return (k, n)
    }

    /// The chunk range of shard (k, n) of `total` chunks; refuses more shards than chunks.
    static func range(_ s: (k: Int, n: Int), total: Int) throws -> Range<Int> {
        guard s.n <= total else {
            throw EvaluatorError.badInput("\(s.n) shards for \(total) chunks: every shard needs at least one chunk")
        }
        return Perplexity.shardRange(s.k, of: s.n, chunks: total)
    }
}

/// What a partial result is checked against before it merges: everything that decides the numbers.
///
/// Model files: the size of each file and its XXH64 — of the whole file up to 64 MiB, and above
/// that of a sample: the first 16 MiB (headers, metadata, tokenizer), 64 windows of 64 KiB spread
/// evenly through the file, and the last 64 KiB. The text: XXH64 of its token ids (after the
/// model's tokenizer, so the text file and the tokenizer both count) and of the text file itself.
/// Then ctx, the number of chunks, BOS, --activations, --kv, --yarn-range (when not the default), --threads and the BLAS kernel core
/// (both can change the last bits of a product), the Smelt version and the executable's XXH64.
enum Fingerprint {
    static let fullLimit = 64 << 20

    static func parts(
        kind: String, models: [(role: String, path: String)], tokens: [Int32], textPath: String?, ctx: Int,
        chunks: Int, bos: Int32?, eval: EvalOptions
    ) throws -> [String] {
        var out = ["kind=\(kind)", "smelt=\(SmeltVersion.string)", "executable=\(executableHash())"]
        for (role, path) in models {
            for (name, size, hash, how) in try modelFiles(path) {
                out.append("\(role).file[\(name)]=\(size) bytes, xxh64-\(how) \(hex(hash))")
            }
        }
        let tokenHash = tokens.withUnsafeBytes { XXHash64.hash($0) }
        out.append("tokens=\(tokens.count), xxh64 \(hex(tokenHash))")
        if let textPath, let data = FileManager.default.contents(atPath: textPath) {
            out.append("text=\(data.count) bytes, xxh64 \(hex(data.withUnsafeBytes { XXHash64.hash($0) }))")
        }
        out += [
            "ctx=\(ctx)", "chunks=\(chunks)", "bos=\(bos.map(String.init) ?? "none")",
            "activations=\(eval.activations)", "kv=\(eval.kv)", "threads=\(eval.threads)",
            "blas_core=\(BLASLibrary.current.core)",
        ]
        // Only when set, so fingerprints of runs without it stay as they were.
        if eval.yarnRange != "config" { out.append("yarn_range=\(eval.yarnRange)") }
        return out
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// The files a model path stands for: the file (with its split siblings for a GGUF split),
    /// or a folder's regular files by name.
    static func files(_ path: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw EvaluatorError.badInput("\(path): cannot open: No such file or directory")
        }
        if isDir.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
            return names.map { Paths.join(path, $0) }.filter { !Paths.isDirectory($0) }
        }
        if path.hasSuffix(".gguf"), let splits = try? GGUFReader.splitPaths(path), !splits.isEmpty { return splits }
        return [path]
    }

    static func modelFiles(_ path: String) throws -> [(name: String, size: Int, hash: UInt64, how: String)] {
        try files(path).map { f in
            let file = try ReadableFile(path: f)
            let name = Paths.fileName(of: f)
            if file.size <= fullLimit {
                return (name, file.size, XXHash64.hash(try file.readBytes(at: 0, count: file.size)), "full")
            }
            var bytes = try file.readBytes(at: 0, count: 16 << 20)
            let window = 64 << 10
            for i in 0..<64 {
                bytes += try file.readBytes(at: (file.size - window) / 63 * i, count: window)
            }
            bytes += try file.readBytes(at: file.size - window, count: window)
            return (name, file.size, XXHash64.hash(bytes), "sampled")
        }
    }

    /// XXH64 of the running executable (through /proc/self/exe), or "unknown" where that is unreadable.
    static func executableHash() -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/self/exe") else { return "unknown" }
        return hex(data.withUnsafeBytes { XXHash64.hash($0) })
    }
}

/// A partial result on disk: a GGUF whose metadata says what it is a part of and whose tensors
/// hold the numbers (F64). Written atomically (GGUFWriter writes through AtomicOutput).
struct PartialFile {
    static let type = "smelt-partial"
    static let formatVersion = 1

    /// perplexity, drift, calibrate: chunks and F64 tensors of numbers; quantize: tensors of the
    /// output model (chunks are tensor indices) and its whole metadata.
    enum Kind: String { case perplexity, drift, calibrate, quantize, sensitivity }

    var kind: Kind
    var shard: Int
    var shards: Int
    var chunks: Range<Int>
    var totalChunks: Int
    var ctx: Int
    var fingerprint: [String]
    /// The model paths (perplexity, calibrate: one; drift: base, candidate) and the text path.
    var paths: [String]
    var text: String
    var seconds: Double
    var threads: Int
    var tensors: [(name: String, values: [Double])]
    var path = ""
    /// quantize: the partial as read (the output's metadata with the smelt.partial.* keys, and this shard's tensors).
    var graph: TensorGraph? = nil
    /// sensitivity: this shard's part of the sensitivity file (JSON, `SensitivityPartial`).
    var payload: String? = nil
    static let keyPrefix = "smelt.partial."

    var fingerprintHash: String {
        Fingerprint.hex(XXHash64.hash(Array(fingerprint.joined(separator: "\n").utf8)))
    }

    func write(to path: String) throws {
        var m = Metadata()
        m["general.type"] = .string(Self.type)
        m = metadata(base: m, tensorCount: tensors.count)
        var graph = try TensorGraph(metadata: m)
        for t in tensors {
            var bytes = [UInt8]()
            bytes.reserveCapacity(t.values.count * 8)
            for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            try graph.append(Tensor(name: t.name, dtype: .f64, shape: [t.values.count], storage: MemoryStorage(bytes)))
        }
        // A rerun of a shard replaces its partial (the way a failed shard is completed).
        try GGUFWriter.write(graph, to: path, replace: true)
    }

    /// `base` with the smelt.partial.* keys after it.
    func metadata(base: Metadata, tensorCount: Int) -> Metadata {
        var m = base
        m["smelt.partial.version"] = .uint32(UInt32(Self.formatVersion))
        m["smelt.partial.kind"] = .string(kind.rawValue)
        m["smelt.partial.shard"] = .uint32(UInt32(shard))
        m["smelt.partial.shards"] = .uint32(UInt32(shards))
        m["smelt.partial.chunk_first"] = .uint64(UInt64(chunks.lowerBound))
        m["smelt.partial.chunk_end"] = .uint64(UInt64(chunks.upperBound))
        m["smelt.partial.chunk_total"] = .uint64(UInt64(totalChunks))
        m["smelt.partial.ctx"] = .uint64(UInt64(ctx))
        m["smelt.partial.fingerprint"] = .array(elementType: .string, values: fingerprint.map { .string($0) })
        m["smelt.partial.fingerprint_hash"] = .string(fingerprintHash)
        m["smelt.partial.paths"] = .array(elementType: .string, values: paths.map { .string($0) })
        m["smelt.partial.text"] = .string(text)
        m["smelt.partial.seconds"] = .float64(seconds)
        m["smelt.partial.threads"] = .uint32(UInt32(threads))
        m["smelt.partial.tensor_count"] = .uint64(UInt64(tensorCount))
        if let payload { m["smelt.partial.payload"] = .string(payload) }
        return m
    }

    static func read(_ path: String) throws -> PartialFile {
        func bad(_ why: String) -> EvaluatorError { .badInput("\(path): not a usable partial result: \(why)") }
        let g = try GGUFReader.read(path, mergeSplits: false)
        let m = g.metadata
        guard m["smelt.partial.kind"] != nil else { throw bad("it has no smelt.partial.kind") }
        guard m["smelt.partial.version"]?.intValue == formatVersion else { throw bad("partial format version is not \(formatVersion)") }
        func int(_ key: String) throws -> Int {
            guard let v = m["smelt.partial." + key]?.intValue else { throw bad("smelt.partial.\(key) is missing") }
            return v
        }
        func strings(_ key: String) throws -> [String] {
            guard case let .array(_, values)? = m["smelt.partial." + key] else { throw bad("smelt.partial.\(key) is missing") }
            return values.compactMap(\.stringValue)
        }
        guard let kind = m["smelt.partial.kind"]?.stringValue.flatMap(Kind.init) else { throw bad("unknown kind") }
        let first = try int("chunk_first"), end = try int("chunk_end")
        guard first < end else { throw bad("empty chunk range \(first)..<\(end)") }
        guard try int("tensor_count") == g.tensors.count else {
            throw bad("it lists \(try int("tensor_count")) tensors but holds \(g.tensors.count)")
        }
        var tensors: [(String, [Double])] = []
        for t in g.tensors where kind != .quantize {
            guard t.dtype == .f64, t.shape.count == 1 else { throw bad("tensor '\(t.name)' is not a 1-D F64 vector") }
            let raw = try t.storage.readAll()
            tensors.append((t.name, raw.withUnsafeBytes { b in
                (0..<t.shape[0]).map { Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
            }))
        }
        return PartialFile(
            kind: kind, shard: try int("shard"), shards: try int("shards"), chunks: first..<end, totalChunks: try int("chunk_total"),
            ctx: try int("ctx"), fingerprint: try strings("fingerprint"), paths: try strings("paths"),
            text: m["smelt.partial.text"]?.stringValue ?? "", seconds: m["smelt.partial.seconds"]?.doubleValue ?? 0,
            threads: try int("threads"), tensors: tensors, path: path, graph: kind == .quantize ? g : nil,
            payload: m["smelt.partial.payload"]?.stringValue)
    }

    func tensor(_ name: String) throws -> [Double] {
        guard let t = tensors.first(where: { $0.name == name }) else {
            throw EvaluatorError.badInput("\(path): not a usable partial result: tensor '\(name)' is missing")
        }
        return t.values
    }
}
