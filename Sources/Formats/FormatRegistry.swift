import TensorGraph

/// The model formats Smelt reads and writes.
public enum ModelFormat: String, Sendable, CaseIterable {
    case safetensors
    case hfFolder = "hf-folder"
    case gguf
    case ingot
}

/// Finds the reader for a path (by what is there) and the writer for an output path (by its name).
public enum FormatRegistry {
    /// What `path` holds: a folder is a Hugging Face model folder, an index JSON a sharded
    /// safetensors set, anything else is sniffed by its first bytes.
    public static func detect(_ path: String) throws -> ModelFormat {
        if Paths.isDirectory(path) { return .hfFolder }
        if path.hasSuffix(".safetensors.index.json") { return .safetensors }
        let file = try ReadableFile(path: path)
        if file.size >= 4, try file.readBytes(at: 0, count: 4) == GGUF.magic { return .gguf }
        if file.size >= Ingot.magic.count, try file.readBytes(at: 0, count: Ingot.magic.count) == Ingot.magic { return .ingot }
        if file.size >= 9 {
            let head = try file.readBytes(at: 8, count: 1)
            if head[0] == UInt8(ascii: "{") { return .safetensors }
        }
        if path.hasSuffix(".safetensors") { return .safetensors }
        if path.hasSuffix(".gguf") { return .gguf }
        if path.hasSuffix(".ingot") { return .ingot }
        throw FormatRegistryError.unknownFormat(path: path)
    }

    public static func open(_ path: String) throws -> (format: ModelFormat, graph: TensorGraph) {
        let format = try detect(path)
        switch format {
        case .safetensors: return (format, try SafetensorsGraph.read(path))
        case .hfFolder: return (format, try HFFolder.read(path))
        case .gguf: return (format, try GGUFReader.read(path))
        case .ingot: return (format, try IngotReader.read(path))
        }
    }

    /// The format whose conventions a model read as `format` from `path` follows: an Ingot file
    /// holds the graph of the format it was converted from (its metadata kept exactly), so it
    /// converts onward as that format would; every other format is itself.
    public static func origin(of path: String, format: ModelFormat) -> ModelFormat {
        guard format == .ingot, let file = try? IngotReader.open(path), let source = file.sourceFormat,
            let f = ModelFormat(rawValue: source)
        else { return format }
        return f
    }

    /// The format an output path asks for: `*.safetensors`, `*.gguf` or `*.ingot` a file of that
    /// format, anything else a model folder.
    public static func outputFormat(for path: String) -> ModelFormat {
        if path.hasSuffix(".safetensors") { return .safetensors }
        if path.hasSuffix(".gguf") { return .gguf }
        if path.hasSuffix(".ingot") { return .ingot }
        return .hfFolder
    }
}

public enum FormatRegistryError: Error, CustomStringConvertible {
    case unknownFormat(path: String)
    public var description: String {
        switch self {
        case let .unknownFormat(path):
            return "\(Echo.path(path)): unknown format (expected a .safetensors, .gguf or .ingot file, an index .json, or a model folder)"
        }
    }
}
