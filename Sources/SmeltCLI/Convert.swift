import ArgumentParser
import Architectures
import Codecs
import Formats
import Foundation
import TensorGraph

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a model between formats, re-shard it, or cast its float tensors.",
        discussion: """
            IN is a .safetensors file, a *.safetensors.index.json, a Hugging Face model folder, or a \
            .gguf file (any file of a split set opens the whole set). \
            OUT ending in .safetensors is written as one file (or, with --max-shard-size, as \
            OUT-00001-of-0000N.safetensors shards beside an index); OUT ending in .gguf is written \
            as GGUF v3 (or, with --split-max-size / --split-max-tensors, as llama.cpp-style \
            OUT-00001-of-0000N.gguf splits); any other OUT is a model folder (model.safetensors or \
            shards, plus the config and tokenizer files the input had); OUT ending in .ingot is \
            an Ingot file (zstd-compressed, checksummed; --level sets the zstd level, and an Ingot \
            input converts onward like the format it came from). A GGUF input keeps its \
            metadata exactly; other inputs get their architecture, hyperparameters and tokenizer \
            written as GGUF keys. Quantized tensors cannot go to safetensors.

            Between Hugging Face and GGUF, tensors are renamed and laid out through the model's \
            architecture unit; an architecture without one is an error that lists the supported \
            ones, unless --container asks for the tensors under their own names (a file llama.cpp \
            will not run).

            Tensors stream through a fixed buffer: memory does not grow with the model. Every output \
            (a folder too) is built under a temporary name beside OUT and renamed when complete, so \
            OUT never holds a partial result; an existing OUT is an error unless --force (checked \
            atomically when the output is renamed into place).
            """
    )

    @Argument(help: "The input model.") var input: String
    @Argument(help: "The output file or folder.") var output: String
    @Option(help: "Cast float tensors to f32, f16 or bf16 (round to nearest even).") var dtype: String?
    @Option(help: "Split the output into shards of at most this size (e.g. 500MB, 2GB, 1GiB).")
    var maxShardSize: String?
    @Option(help: "GGUF output: split into files of at most this much tensor data (e.g. 500MB, 2GB).")
    var splitMaxSize: String?
    @Option(help: "GGUF output: split into files of at most this many tensors.")
    var splitMaxTensors: Int?
    @Option(help: "Ingot output: zstd compression level (default 3; 19 and above use slow optimal parsing).")
    var level: Int?
    @Option(help: ArgumentHelp(
        "Folder output: how the weights are stored: \(FlavourRegistry.names.joined(separator: "|")) (default: the input's; plain float safetensors (hf) for GGUF and Ingot inputs).",
        valueName: "flavour"))
    var format: String?
    @Option(help: "Quantized folder output: bits per weight of the grid (the format's default where unset).") var bits: Int?
    @Option(help: "Quantized folder output: values per group sharing a scale (the format's default where unset).") var groupSize: Int?
    @Flag(help: "Quantized folder output: symmetric (--sym) or asymmetric (--asym) grid, where the format offers both.")
    var symmetry: Symmetry?
    @Flag(help: "Refuse any move of a quantized weight between grids that changes a value.") var exact = false
    @Flag(help: "Replace an existing output.") var force = false
    @Flag(help: "Between Hugging Face and GGUF: keep tensor names and layouts as they are, without the architecture's tables.")
    var container = false
    @Flag(help: "Print a JSON summary instead of text.") var json = false

    /// The cast --dtype asks for (validate() has checked the name).
    var target: DType? { dtype.flatMap { DType(name: $0) } }

    /// Usage checks (exit status 64 on failure), before any file is opened.
    func validate() throws {
        if let name = dtype {
            guard let t = DType(name: name), [.f32, .f16, .bf16].contains(t) else {
                throw ValidationError("--dtype must be f32, f16 or bf16, not '\(Usage.echo(name))'")
            }
        }
        try Usage.size("--max-shard-size", maxShardSize)
        try Usage.size("--split-max-size", splitMaxSize)
        if let level, level == 0 || level < Int(Zstd.minLevel) || level > Int(Zstd.maxLevel) {
            throw ValidationError("--level must be in \(Zstd.minLevel)...\(Zstd.maxLevel), 0 excluded, not \(level)")
        }
        if let n = splitMaxTensors, n <= 0 { throw ValidationError("--split-max-tensors must be positive, not \(n)") }
        let outputFormat = FormatRegistry.outputFormat(for: output)
        if outputFormat == .gguf && maxShardSize != nil {
            throw ValidationError("--max-shard-size is for safetensors output; for .gguf use --split-max-size")
        }
        if outputFormat != .gguf && (splitMaxSize != nil || splitMaxTensors != nil) {
            throw ValidationError("--split-max-size and --split-max-tensors are for .gguf output")
        }
        if outputFormat != .ingot && level != nil { throw ValidationError("--level is for .ingot output") }
        if outputFormat == .ingot && maxShardSize != nil { throw ValidationError("--max-shard-size is for safetensors output") }
        if let format {
            guard FlavourRegistry.names.contains(format) else {
                throw ValidationError("--format must be one of \(FlavourRegistry.names.joined(separator: ", ")), not '\(Usage.echo(format))'")
            }
            if outputFormat == .gguf || outputFormat == .ingot {
                throw ValidationError("--format chooses a folder's (or .safetensors file's) flavour; \(outputFormat.rawValue) output has its own")
            }
        }
        if let bits, !(1...8).contains(bits) { throw ValidationError("--bits must be in 1...8, not \(bits)") }
        if let groupSize, groupSize <= 0 { throw ValidationError("--group-size must be positive, not \(groupSize)") }
    }

    /// What the folder flavours are asked for.
    var flavourRequest: FlavourRequest {
        FlavourRequest(
            format: format, bits: bits, groupSize: groupSize, symmetric: symmetry.map { $0 == .sym }, exact: exact,
            floatType: target ?? (FormatRegistry.outputFormat(for: output) == .gguf ? .f16 : .f32))
    }

    func run() throws {
        try SmeltCLI.run {
            let shardLimit = maxShardSize.flatMap(parseSize)
            let outputFormat = FormatRegistry.outputFormat(for: output)
            let splitLimit = splitMaxSize.flatMap(parseSize)
            if !force && Paths.exists(output) && !(Paths.isDirectory(output) && isEmptyDirectory(output)) {
                throw OutputError.exists(path: output)
            }
            let started = Date()
            let opened = try ModelSource.open(input)
            var moves: [TensorMove] = []
            let graph = try InputError.naming(input) {
                do {
                    return try Conversion.prepare(
                        opened.graph, from: opened.origin, to: outputFormat, dtype: target, container: container,
                        flavour: flavourRequest, moves: &moves
                    ) { note in
                        Terminal.printErr("smelt: note: \(note)")
                    }
                } catch let e as ArchitectureError {
                    if case .unsupported = e {
                        Terminal.printErr("smelt: note: --container converts the tensors under their own names and layouts (a file llama.cpp will not run)")
                    }
                    throw e
                }
            }
            let progress = Terminal.Progress(label: "convert", total: graph.totalBytes)
            let written: [String]
            switch outputFormat {
            case .safetensors:
                written = try SafetensorsWriter.write(
                    graph, to: output, maxShardSize: shardLimit, replace: force, progress: progress.advance)
            case .hfFolder:
                written = try HFFolder.write(
                    graph, to: output, maxShardSize: shardLimit, replace: force, progress: progress.advance)
            case .gguf:
                written = try GGUFWriter.write(
                    graph, to: output, splitMaxSize: splitLimit, splitMaxTensors: splitMaxTensors,
                    replace: force, progress: progress.advance)
            case .ingot:
                let summary = try IngotWriter.write(
                    graph, to: output, level: level ?? Ingot.defaultLevel,
                    sourceFormat: opened.origin.rawValue, replace: force,
                    progress: progress.advance)
                written = [summary.path]
            }
            progress.finish()
            let secs = Date().timeIntervalSince(started)
            if json {
                print(JSONWriter.write(.object([
                    ("input", .string(input)), ("output", .string(output)),
                    ("files", .array(written.map(JSONValue.string))),
                    ("tensor_count", .int(graph.tensors.count)), ("bytes", .int(graph.totalBytes)),
                    ("seconds", .double(secs)),
                    ("moves", MoveSummary.json(moves)),
                ]), indent: 2))
            } else {
                print("wrote \(graph.tensors.count) tensors, \(Terminal.humanBytes(graph.totalBytes)) in \(String(format: "%.2f", secs)) s:")
                for f in written { print("  \(f)") }
                MoveSummary.print(moves)
            }
        }
    }

    func isEmptyDirectory(_ path: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["x"]).isEmpty
    }
}

/// `--sym` / `--asym`.
enum Symmetry: String, EnumerableFlag {
    case sym, asym
}
