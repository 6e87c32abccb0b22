import ArgumentParser
import Architectures
import Calibration
import Formats
import Foundation
import TensorGraph

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: format, architecture, hyperparameters, tensors and sizes.",
        discussion: """
            PATH is a .safetensors file, a sharded set's *.safetensors.index.json, a Hugging Face \
            model folder, a .gguf file (any file of a split set opens the whole set) or an .ingot \
            file (which adds its compressed and raw sizes, per tensor with --tensors). Prints a \
            summary with every metadata key and its type (long arrays and texts summarized) and, \
            for an architecture smelt knows, what its forward pass is built from (head sizes, \
            rotary kind, base and scaling, sliding window and layer pattern, Q/K norms, …); \
            --tensors adds one row per tensor; --json prints the same as one JSON object.
            """
    )

    @Argument(help: "The model file or folder.") var path: String
    @Flag(help: "List every tensor: name, dtype, shape, bytes.") var tensors = false
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        try SmeltCLI.run {
            let opened = try ModelSource.open(path)
            let (format, graph) = (opened.format, opened.graph)
            let ingot = format == .ingot ? try IngotReader.open(path) : nil
            // The architecture's own view; a model smelt cannot configure is still inspected.
            let details: Result<(unit: String, entries: [(String, JSONValue)])?, Error> = Result {
                try ArchitectureSummary.of(graph, origin: opened.origin)
            }
            if json {
                var r = report(format: format, graph: graph)
                if case let .object(e) = r {
                    switch details {
                    case let .success(d?): r = .object(e + [("architecture_config", .object([("unit", .string(d.unit))] + d.entries))])
                    case .success(nil): r = .object(e + [("architecture_config", .null)])
                    case let .failure(error): r = .object(e + [("architecture_config", .null), ("architecture_error", .string("\(error)"))])
                    }
                }
                if let ingot, case let .object(e) = r { r = .object(e + [("ingot", ingotJSON(ingot))]) }
                print(JSONWriter.write(r, indent: 2))
            } else {
                printText(format: format, graph: graph, details: details)
                if let ingot { printIngot(ingot) }
            }
        }
    }

    func report(format: ModelFormat, graph: TensorGraph) -> JSONValue {
        var entries: [(String, JSONValue)] = [
            ("path", .string(path)),
            ("format", .string(format.rawValue)),
            ("flavour", isFolderSide(format) ? .string(FlavourRegistry.name(of: graph)) : .null),
            ("architecture", graph.architecture.map(JSONValue.string) ?? .null),
            ("hyperparameters", .object(hyperparameterJSON(graph.hyperparameters))),
            ("metadata_keys", .array(graph.metadata.keys.map(JSONValue.string))),
            ("metadata", .object(graph.metadata.entries.map { ($0.key, metadataJSON($0.value)) })),
            ("tensor_count", .int(graph.tensors.count)),
            ("parameter_count", .int(graph.parameterCount)),
            ("bytes_by_dtype", .object(graph.bytesByDType.map {
                ($0.dtype.displayName, .object([("tensors", .int($0.tensors)), ("bytes", .int($0.bytes))]))
            })),
            ("total_bytes", .int(graph.totalBytes)),
        ]
        if graph.tensors.contains(where: { $0.dtype.isQuantized }) {
            let mix = FileTypeMix.summary(of: graph)
            entries.append(("mix", .object([
                ("file_type", mix.fileType.map(JSONValue.string) ?? .null), ("bits_per_weight", .double(mix.bitsPerWeight)),
                ("roles", .array(mix.roles.map { r in
                    .object([
                        ("role", .string(r.role)), ("tensors", .int(r.tensors)), ("parameters", .int(r.parameters)),
                        ("bytes", .int(r.bytes)), ("bits_per_weight", .double(r.bitsPerWeight)),
                        ("types", .object(r.types.map { ($0.type.displayName, .int($0.tensors)) })),
                    ])
                })),
            ])))
        }
        if tensors {
            entries.append(("tensors", .array(graph.tensors.map { t in
                .object([
                    ("name", .string(t.name)), ("dtype", .string(t.dtype.displayName)),
                    ("shape", .array(t.shape.map(JSONValue.int))), ("bytes", .int(t.byteCount)),
                ])
            })))
        }
        return .object(entries)
    }

    /// A metadata value for JSON: its type, and its value, except that arrays longer than 16
    /// elements and texts longer than 200 bytes are summarized by their size.
    func metadataJSON(_ v: MetadataValue) -> JSONValue {
        var entries: [(String, JSONValue)] = [("type", .string(v.type.name))]
        switch v {
        case let .array(t, values):
            entries.append(("element_type", .string(t.name)))
            entries.append(("count", .int(values.count)))
            if values.count <= 16 { entries.append(("values", .array(values.map(metadataJSON)))) }
        case let .string(s):
            if s.utf8.count <= 200 { entries.append(("value", .string(s))) } else { entries.append(("bytes", .int(s.utf8.count))) }
        case let .bool(b): entries.append(("value", .bool(b)))
        case .float32, .float64:
            let d = v.doubleValue!
            entries.append(("value", d.isFinite ? .double(d) : .string(v.description)))
        default:
            if let i = v.intValue { entries.append(("value", .int(i))) } else { entries.append(("value", .string(v.description))) }
        }
        return .object(entries)
    }

    /// A metadata value for text: short values in full (strings quoted with escapes); long texts
    /// by size and first 60 characters; long arrays by count and their first few elements.
    func metadataText(_ v: MetadataValue) -> String {
        switch v {
        case let .string(s) where s.count > 80:
            return "(\(s.utf8.count) bytes of text) \(quoted(String(s.prefix(60)), open: true))"
        case let .string(s):
            return quoted(s)
        case let .array(_, values) where values.count > 8:
            let head = values.prefix(5).map(metadataText).joined(separator: ", ")
            return "\(values.count) values [\(head), …]"
        case let .array(_, values):
            return "[" + values.map(metadataText).joined(separator: ", ") + "]"
        default:
            return v.description
        }
    }

    /// The type of a metadata value for text: `uint32`, `array of string`, …
    func metadataTypeText(_ v: MetadataValue) -> String {
        if case let .array(t, _) = v { return "array of \(t.name)" }
        return v.type.name
    }

    /// `s` in double quotes with control characters, quotes and backslashes escaped; `open`
    /// ends it with an ellipsis (a prefix of a longer text).
    func quoted(_ s: String, open: Bool = false) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    out += "\\u{" + String(u.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + (open ? "…\"" : "\"")
    }

    /// An architecture detail for text: numbers and strings bare, objects as `k v, k v`.
    func detailText(_ v: JSONValue) -> String {
        switch v {
        case let .string(s): return s
        case let .object(entries): return entries.map { "\($0.0) \(detailText($0.1))" }.joined(separator: ", ")
        case let .array(values): return "[" + values.map(detailText).joined(separator: ", ") + "]"
        default: return JSONWriter.write(v)
        }
    }

    func hyperparameterJSON(_ h: Hyperparameters) -> [(String, JSONValue)] {
        h.fields.map { name, value in
            if let i = Int(value) { return (name, .int(i)) }
            if let d = Double(value) { return (name, .double(d)) }
            return (name, .string(value))
        }
    }

    func printText(format: ModelFormat, graph: TensorGraph, details: Result<(unit: String, entries: [(String, JSONValue)])?, Error>) {
        print("path:          \(path)")
        print("format:        \(format.rawValue)")
        if isFolderSide(format) { print("flavour:       \(FlavourRegistry.name(of: graph))") }
        print("architecture:  \(graph.architecture ?? "(not stated)")")
        let h = graph.hyperparameters.fields
        if !h.isEmpty {
            print("hyperparameters:")
            for (k, v) in h { print("  \(k): \(v)") }
        }
        switch details {
        case let .success(d?):
            print("architecture details (\(d.unit) unit):")
            for (k, v) in d.entries { print("  \(k): \(detailText(v))") }
        case .success(nil): break
        case let .failure(error): print("architecture details: unavailable: \(error)")
        }
        let tok = graph.tokenizer
        if !tok.isEmpty {
            let pre = tok.preTokenizer.map { " (pre-tokenizer \($0))" } ?? ""
            print("tokenizer:     \(tok.model ?? "?")\(pre), \(tok.tokens.count) tokens, \(tok.merges.count) merges")
        }
        if graph.metadata.count > 0 {
            print("metadata:      \(graph.metadata.count) keys")
            for (k, v) in graph.metadata.entries {
                print("  \(k) (\(metadataTypeText(v))) = \(metadataText(v))")
            }
        }
        print("tensors:       \(graph.tensors.count)")
        print("parameters:    \(graph.parameterCount) (\(Terminal.humanCount(graph.parameterCount)))")
        print("bytes by dtype:")
        for d in graph.bytesByDType {
            print("  \(d.dtype.displayName): \(d.tensors) tensors, \(d.bytes) bytes (\(Terminal.humanBytes(d.bytes)))")
        }
        print("total size:    \(graph.totalBytes) bytes (\(Terminal.humanBytes(graph.totalBytes)))")
        if graph.tensors.contains(where: { $0.dtype.isQuantized }) {
            let mix = FileTypeMix.summary(of: graph)
            print(String(format: "mix:           %@%.4f bits per weight", mix.fileType.map { "\($0), " } ?? "", mix.bitsPerWeight))
            let rows = mix.roles.map { r in
                [r.role, String(r.tensors), r.types.map { "\($0.tensors) \($0.type.displayName)" }.joined(separator: ", "),
                 String(format: "%.3f", r.bitsPerWeight)]
            }
            print(Terminal.table(["role", "tensors", "types", "bits/weight"], rows, rightAligned: [1, 3]).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
        if tensors {
            print("")
            let rows = graph.tensors.map { t in
                [t.name, t.dtype.displayName, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", String(t.byteCount)]
            }
            print(Terminal.table(["name", "dtype", "shape", "bytes"], rows, rightAligned: [3]))
        }
    }

    /// Whether `format` is a safetensors file or folder, which has a flavour (`FlavourRegistry`).
    func isFolderSide(_ format: ModelFormat) -> Bool { format == .hfFolder || format == .safetensors }
}
