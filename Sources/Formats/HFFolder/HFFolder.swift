#if canImport(Glibc)
import Glibc
#endif
import TensorGraph

/// A Hugging Face model folder: `config.json` (and AutoGPTQ's `quantize_config.json`), tokenizer files, and weights as `model.safetensors`
/// or shards with `model.safetensors.index.json`.
public enum HFFolder {
    /// The folder's JSON side files (and the chat template transformers 5 saves beside them) kept verbatim in the graph's metadata under `hf.<file name>`,
    /// for later stages (tokenizer, GGUF conversion) and for writing a folder back.
    public static let sideFiles = [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "chat_template.jinja", "quantize_config.json",
    ]
    public static let metadataPrefix = "hf."

    /// Binary side files (a bare SentencePiece `tokenizer.model`), kept as a uint8 array under
    /// `hf.<file name>`.
    public static let binarySideFiles = ["tokenizer.model"]

    /// The bytes of a binary side file the graph carries.
    public static func binarySideFile(_ graph: TensorGraph, _ name: String) -> [UInt8]? {
        guard case let .array(.uint8, values)? = graph.metadata[metadataPrefix + name] else { return nil }
        return values.map { if case let .uint8(b) = $0 { b } else { 0 } }
    }

    public static func read(_ dir: String) throws -> TensorGraph {
        let entries = try listDirectory(dir)
        let weights: TensorGraph
        if let index = entries.first(where: { $0.hasSuffix(".safetensors.index.json") }) {
            weights = try SafetensorsGraph.read(Paths.join(dir, index))
        } else {
            let files = entries.filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !files.isEmpty else { throw HFFolderError.noWeights(dir: dir) }
            var all: [Tensor] = []
            var metadata = Metadata()
            for f in files {
                let g = try SafetensorsGraph.read(Paths.join(dir, f))
                for t in g.tensors {
                    guard !all.contains(where: { $0.name == t.name }) else {
                        throw SafetensorsError.duplicateTensor(file: Paths.join(dir, f), tensor: t.name)
                    }
                    all.append(t)
                }
                for (k, v) in g.metadata.entries where metadata[k] == nil { metadata[k] = v }
            }
            weights = try TensorGraph(metadata: metadata, tensors: all)
        }
        var graph = weights
        for name in sideFiles where entries.contains(name) {
            let path = Paths.join(dir, name)
            let file = try ReadableFile(path: path)
            let bytes = try file.readBytes(at: 0, count: file.size)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw HFFolderError.badSideFile(file: path, reason: "not valid UTF-8")
            }
            graph.metadata[metadataPrefix + name] = .string(text)
            if name == "quantize_config.json" {
                do { _ = try JSONParser.parse(bytes) } catch { throw HFFolderError.badSideFile(file: path, reason: error.description) }
            }
            if name == "config.json" {
                let json: JSONValue
                do { json = try JSONParser.parse(bytes) } catch {
                    throw HFFolderError.badSideFile(file: path, reason: error.description)
                }
                let (arch, h) = HFConfig.parse(json)
                graph.architecture = arch
                graph.hyperparameters = h
            }
        }
        for name in binarySideFiles where entries.contains(name) {
            let file = try ReadableFile(path: Paths.join(dir, name))
            let bytes = try file.readBytes(at: 0, count: file.size)
            graph.metadata[metadataPrefix + name] = .array(elementType: .uint8, values: bytes.map { .uint8($0) })
        }
        return graph
    }

    /// Writes the weights as `model.safetensors` (or shards) and the side files the graph carries.
    /// The folder is built under a temporary name beside `dir` and renamed to `dir` when every
    /// file in it is complete (`AtomicFolder`); without `replace`, an existing `dir` (other than
    /// an empty folder) is an error. Returns the files written, under their final names.
    @discardableResult
    public static func write(
        _ graph: TensorGraph, to dir: String, maxShardSize: Int? = nil, replace: Bool = false,
        progress: @escaping (Int) -> Void = { _ in }
    ) throws -> [String] {
        let folder = try AtomicFolder(path: dir, replace: replace)
        var names = try SafetensorsWriter.write(
            graph, to: folder.file("model.safetensors"), maxShardSize: maxShardSize, progress: progress
        ).map { Paths.fileName(of: $0) }
        for name in sideFiles {
            guard let text = graph.metadata[metadataPrefix + name]?.stringValue else { continue }
            let out = try AtomicOutput(path: folder.file(name))
            try out.write(Array(text.utf8))
            try out.commit()
            names.append(name)
        }
        for name in binarySideFiles {
            guard let bytes = binarySideFile(graph, name) else { continue }
            let out = try AtomicOutput(path: folder.file(name))
            try out.write(bytes)
            try out.commit()
            names.append(name)
        }
        try folder.commit()
        return names.map { Paths.join(folder.path, $0) }
    }

    static func listDirectory(_ dir: String) throws(HFFolderError) -> [String] {
        guard let d = opendir(dir) else {
            throw .unreadable(dir: dir, reason: String(cString: strerror(errno)))
        }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." && !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }
}

public enum HFFolderError: Error, CustomStringConvertible {
    case noWeights(dir: String)
    case unreadable(dir: String, reason: String)
    case badSideFile(file: String, reason: String)

    public var description: String {
        switch self {
        case let .noWeights(dir): return "\(Echo.path(dir)): no *.safetensors files and no model.safetensors.index.json"
        case let .unreadable(dir, reason): return "\(Echo.path(dir)): cannot list: \(Echo.text(reason))"
        case let .badSideFile(file, reason): return "\(Echo.path(file)): \(Echo.text(reason))"
        }
    }
}
