import ArgumentParser
import Formats
import Foundation
import TensorGraph

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: format, architecture, hyperparameters, tensors and sizes.",
        discussion: """
            PATH is a .safetensors file, a sharded set's *.safetensors.index.json, or a Hugging Face
            model folder. Prints a summary; --tensors adds one row per tensor; --json prints the same
            as one JSON object.
            """
    )

    @Argument(help: "The model file or folder.") var path: String
    @Flag(help: "List every tensor: name, dtype, shape, bytes.") var tensors = false
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        try SmeltCLI.run {
            let (format, graph) = try FormatRegistry.open(path)
            if json {
                print(JSONWriter.write(report(format: format, graph: graph), indent: 2))
            } else {
                printText(format: format, graph: graph)
            }
        }
    }

    func report(format: ModelFormat, graph: TensorGraph) -> JSONValue {
        var entries: [(String, JSONValue)] = [
            ("path", .string(path)),
            ("format", .string(format.rawValue)),
            ("architecture", graph.architecture.map(JSONValue.string) ?? .null),
            ("hyperparameters", .object(hyperparameterJSON(graph.hyperparameters))),
            ("metadata_keys", .array(graph.metadata.keys.map(JSONValue.string))),
            ("tensor_count", .int(graph.tensors.count)),
            ("parameter_count", .int(graph.parameterCount)),
            ("bytes_by_dtype", .object(graph.bytesByDType.map {
                ($0.dtype.displayName, .object([("tensors", .int($0.tensors)), ("bytes", .int($0.bytes))]))
            })),
            ("total_bytes", .int(graph.totalBytes)),
        ]
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

    func hyperparameterJSON(_ h: Hyperparameters) -> [(String, JSONValue)] {
        h.fields.map { name, value in
            if let i = Int(value) { return (name, .int(i)) }
            if let d = Double(value) { return (name, .double(d)) }
            return (name, .string(value))
        }
    }

    func printText(format: ModelFormat, graph: TensorGraph) {
        print("path:          \(path)")
        print("format:        \(format.rawValue)")
        print("architecture:  \(graph.architecture ?? "(not stated)")")
        let h = graph.hyperparameters.fields
        if !h.isEmpty {
            print("hyperparameters:")
            for (k, v) in h { print("  \(k): \(v)") }
        }
        if graph.metadata.count > 0 {
            print("metadata:      \(graph.metadata.count) keys")
            for (k, v) in graph.metadata.entries {
                let shown: String
                if case let .string(s) = v, s.contains("\n") || s.count > 80 {
                    shown = "(\(s.utf8.count) bytes of text)"
                } else {
                    shown = v.description
                }
                print("  \(k) = \(shown)")
            }
        }
        print("tensors:       \(graph.tensors.count)")
        print("parameters:    \(graph.parameterCount) (\(Terminal.humanCount(graph.parameterCount)))")
        print("bytes by dtype:")
        for d in graph.bytesByDType {
            print("  \(d.dtype.displayName): \(d.tensors) tensors, \(d.bytes) bytes (\(Terminal.humanBytes(d.bytes)))")
        }
        print("total size:    \(graph.totalBytes) bytes (\(Terminal.humanBytes(graph.totalBytes)))")
        if tensors {
            print("")
            let rows = graph.tensors.map { t in
                [t.name, t.dtype.displayName, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", String(t.byteCount)]
            }
            print(Terminal.table(["name", "dtype", "shape", "bytes"], rows, rightAligned: [3]))
        }
    }
}
