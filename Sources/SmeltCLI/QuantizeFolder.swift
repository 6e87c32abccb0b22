import ArgumentParser
import Calibration
import Evaluator
import Formats
import Foundation
import TensorGraph

/// `smelt quantize --format gptq|compressed-tensors`: the linear weights onto an integer group
/// grid (rtn, rtn with --imatrix, or gptq with --calibration-text), written as that folder flavour.
extension QuantizeCommand {
    static let folderFormats = [GPTQFlavour.name, CompressedTensorsFlavour.name]

    var grid: IntGroupGrid {
        IntGroupGrid(bits: bits ?? 4, groupSize: groupSize ?? 128, symmetric: symmetry.map { $0 == .sym } ?? true)
    }

    func validateFolder() throws {
        if type != nil { throw ValidationError("--type names a GGUF file type; with --format the grid is --bits/--group-size/--sym|--asym") }
        if let bits, ![2, 4, 8].contains(bits) { throw ValidationError("--bits must be 2, 4 or 8, not \(bits)") }
        if let groupSize, groupSize <= 0 { throw ValidationError("--group-size must be positive, not \(groupSize)") }
        guard let m = QuantMethod(rawValue: method) else { throw ValidationError("--method must be rtn or gptq, not '\(Usage.echo(method))'") }
        if m == .gptq, calibrationText == nil { throw ValidationError("--method gptq needs --calibration-text FILE") }
        if m == .rtn, calibrationText != nil { throw ValidationError("--calibration-text is for --method gptq") }
        if m == .gptq, imatrix != nil { throw ValidationError("--imatrix is for --method rtn (GPTQ uses its own Hessians)") }
        if exactGGML || pure || recipe != nil || !keep.isEmpty || shard.partial != nil || shard.shard != nil {
            throw ValidationError("--exact-ggml, --pure, --recipe, --keep and --shard are for GGUF output, not --format")
        }
        guard let output, FormatRegistry.outputFormat(for: output) == .hfFolder else {
            throw ValidationError("with --format, OUT is a folder (not a .gguf, .safetensors or .ingot name)")
        }
        guard ctx >= 16, chunks >= 1, threads >= 1, damp > 0, damp.isFinite else {
            throw ValidationError("--ctx must be at least 16, --chunks and --threads at least 1, --damp positive")
        }
    }

    func runFolder() throws {
        try SmeltCLI.run {
            let output = output!
            let flavour = try FlavourRegistry.named(format)!
            let grid = self.grid
            let started = Date()
            let graph = try ModelQuantizer.open(input) { Terminal.printErr("smelt: note: \($0)") }
            var quantized: TensorGraph
            var how = "rtn"
            var errors: [String: Double] = [:]
            if method == "gptq" {
                let model = try LanguageModel(graph: graph, threads: threads)
                let tokens = try TextTokens.tokenize(file: calibrationText!, graph: graph)
                let bos = graph.tokenizer.addBOS == true ? graph.tokenizer.bosTokenID.map { Int32($0) } : nil
                let calibration = try Perplexity.chunks(of: tokens, ctx: ctx, limit: chunks, bos: bos)
                let bar = StepBar(label: "gptq")
                (quantized, errors) = try PackedQuantizer.gptq(
                    graph, model: model, chunks: calibration, grid: grid,
                    options: GPTQ.Options(damp: damp, scaleSearch: true, actOrder: gptqOrder != "natural", threads: threads)
                ) { phase, done, total in bar.update(phase: phase, done: done, total: total) }
                bar.finish()
                how = "gptq"
            } else {
                let matrix = try imatrix.map { try ImportanceMatrix.read($0) }
                let weighted: Int
                (quantized, weighted) = try PackedQuantizer.roundToNearest(graph, grid: grid, imatrix: matrix)
                if matrix != nil { how = "rtn + importance matrix (\(weighted) tensors)" }
            }
            var moves: [TensorMove] = []
            let folder = try PackedQuantizer.folder(quantized, flavour: flavour, grid: grid, moves: &moves)
            let written = try HFFolder.write(folder, to: output, replace: force)
            let secs = Date().timeIntervalSince(started)
            let bytes = written.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
            if json {
                print(JSONWriter.write(.object([
                    ("input", .string(input)), ("output", .string(output)), ("format", .string(flavour.name)),
                    ("grid", .string(grid.description)), ("method", .string(how)), ("quantized_tensors", .int(moves.count)),
                    ("file_bytes", .int(bytes)), ("seconds", .double(secs)),
                    ("gptq_relative_error", .object(errors.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) })),
                ]), indent: 2))
            } else {
                print("wrote \(output): \(flavour.name) \(grid) (\(how)), \(moves.count) linear weights quantized, \(Terminal.humanBytes(bytes)) in \(String(format: "%.1f", secs)) s")
                if !errors.isEmpty {
                    let mean = errors.values.reduce(0, +) / Double(errors.count)
                    print(String(format: "relative output error ‖X(W−Ŵ)‖²/‖XW‖² on the calibration inputs: GPTQ mean %.5f", mean))
                }
            }
        }
    }
}
