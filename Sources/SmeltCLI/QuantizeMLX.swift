import ArgumentParser
import Architectures
import Calibration
import Evaluator
import Formats
import Foundation
import Quantization
import TensorGraph

/// `smelt quantize --format mlx`: an MLX folder (`Formats/MLX`) instead of a GGUF.
///
/// - rtn: every matrix rounded onto the MLX affine grid (`--bits`, default 4; `--group-size`,
///   default 64; `--sym`), f16 scales and biases; with `--imatrix`, each group's range is
///   searched for the least importance-weighted error.
/// - gptq: GPTQ (`PackedQuantizer.gptq`, the integer-group walk) onto the same affine grid
///   (`--bits`, `--group-size`, `--sym`/`--asym`), rounding with the f16 scale and bias the file
///   stores, so the file decodes to exactly the values GPTQ compensated for. The decoder's linear
///   layers are GPTQ's; the embedding (and an untied head) is rounded to nearest, as rtn does.
extension QuantizeCommand {
    func runMLX() throws {
        guard let output else { throw ValidationError("give OUT") }
        if !force && Paths.exists(output) { throw OutputError.exists(path: output) }
        let started = Date()
        var moves: [TensorMove] = []
        var request = FlavourRequest(format: MLXFlavour.name, bits: bits, groupSize: groupSize, symmetric: symmetry.map { $0 == .sym })
        let graph: TensorGraph
        var how = "rtn"
        if method == "gptq" {
            // GPTQ onto the MLX affine grid itself: the walk rounds with the f16 scale and bias
            // the file stores (`IntGroupGrid.affineBias`), group sizes as the writer picks them.
            let wanted = groupSize ?? MLXGrid.defaultAffine.groupSize
            let grid = IntGroupGrid(bits: bits ?? MLXGrid.defaultAffine.bits, groupSize: wanted, symmetric: symmetry == .sym, affineBias: true)
            let source = try ModelQuantizer.open(input) { Terminal.printErr("smelt: note: \($0)") }
            let model = try LanguageModel(graph: source, threads: threads)
            let tokens = try TextTokens.tokenize(file: calibrationText!, graph: source)
            let bos = source.tokenizer.addBOS == true ? source.tokenizer.bosTokenID.map { Int32($0) } : nil
            let calibration = try Perplexity.chunks(of: tokens, ctx: ctx, limit: chunks, bos: bos)
            let bar = StepBar(label: "gptq")
            let (quantized, _) = try PackedQuantizer.gptq(
                source, model: model, chunks: calibration, grid: grid,
                options: GPTQ.Options(damp: damp, scaleSearch: true, actOrder: gptqOrder != "natural", threads: threads),
                progress: { phase, done, total in bar.update(phase: phase, done: done, total: total) },
                groupSize: { MLXFlavour.groupSize(cols: $0, wanted: wanted) ?? wanted })
            bar.finish()
            graph = try InputError.naming(input) {
                try PackedQuantizer.folder(quantized, flavour: MLXFlavour.self, grid: grid, floatType: nil, exact: false, moves: &moves)
            }
            how = "gptq, \(calibration.count) chunks of \(ctx)"
        } else {
            let opened = try ModelSource.open(input)
            if let path = imatrix {
                request.importance = try hfImportance(try ImportanceMatrix.read(path), source: opened)
                how = "rtn + importance matrix (\(request.importance.count) tensors)"
            }
            graph = try InputError.naming(input) {
                try Conversion.prepare(opened.graph, from: opened.origin, to: .hfFolder, dtype: nil, flavour: request, moves: &moves) {
                    Terminal.printErr("smelt: note: \($0)")
                }
            }
        }
        let progress = Terminal.Progress(label: "quantize", total: graph.totalBytes)
        let written = try HFFolder.write(graph, to: output, replace: force, progress: progress.advance)
        progress.finish()
        let params = moves.count
        let bytes = graph.totalBytes
        let parameters = try MLXFlavour.parameterCount(graph)
        let bpw = parameters > 0 ? Double(bytes) * 8 / Double(parameters) : 0
        let secs = Date().timeIntervalSince(started)
        if json {
            print(JSONWriter.write(.object([
                ("input", .string(input)), ("output", .string(output)), ("format", .string("mlx")), ("method", .string(how)),
                ("files", .array(written.map(JSONValue.string))), ("quantized_weights", .int(params)),
                ("parameters", .int(parameters)), ("tensor_bytes", .int(bytes)), ("bits_per_weight", .double(bpw)),
                ("seconds", .double(secs)), ("moves", MoveSummary.json(moves)),
            ]), indent: 2))
        } else {
            print("wrote \(output): MLX (\(how)), \(params) quantized weights")
            print(String(format: "%@ parameters, %@ (%.4f bits per weight), %.2f s", Terminal.humanCount(parameters),
                         Terminal.humanBytes(bytes), bpw, secs))
            MoveSummary.print(moves, listInexact: 0)
        }
    }

    /// The importance matrix's entries (GGUF names) under the Hugging Face names of `source`'s
    /// weights, through the architecture's table.
    func hfImportance(_ matrix: ImportanceMatrix, source: (format: ModelFormat, origin: ModelFormat, graph: TensorGraph)) throws -> [String: [Float]] {
        let isGGUF = source.origin == .gguf
        let spec = isGGUF ? try ArchitectureRegistry.spec(gguf: source.graph.architecture)
            : try ArchitectureRegistry.spec(hfModelType: source.graph.architecture)
        var out: [String: [Float]] = [:]
        for (gguf, _) in matrix.entries {
            guard let imp = matrix.importance(for: gguf), let (hf, _) = spec.hfName(forGGUF: gguf) else { continue }
            let prefix = spec.hfWritePrefix.map { hf.hasPrefix("lm_head") ? "" : $0 } ?? ""
            out[prefix + hf] = imp
            out[hf] = imp
        }
        return out
    }

    /// Usage checks for --format mlx.
    func validateMLX() throws {
        if type != nil { throw ValidationError("--type names a GGUF file type; --format mlx takes --bits, --group-size, --sym/--asym") }
        if exactGGML || pure || shard.partial != nil || !keep.isEmpty || recipe != nil {
            throw ValidationError("--exact-ggml, --pure, --shard, --keep and --recipe are for GGUF output")
        }
        guard let output else { throw ValidationError("give OUT (a folder)") }
        guard FormatRegistry.outputFormat(for: output) == .hfFolder else { throw ValidationError("--format mlx writes a folder: OUT must not end in .gguf, .safetensors or .ingot") }
        guard let m = QuantMethod(rawValue: method) else { throw ValidationError("--method must be rtn or gptq, not '\(Usage.echo(method))'") }
        if m == .gptq, calibrationText == nil { throw ValidationError("--method gptq needs --calibration-text FILE") }
        if m == .rtn, calibrationText != nil { throw ValidationError("--calibration-text is for --method gptq") }
        if m == .gptq, imatrix != nil { throw ValidationError("--imatrix is for --method rtn") }
        if let bits, !MLXGrid.affineBits.contains(bits) { throw ValidationError("--bits must be 1, 2, 3, 4, 5, 6 or 8, not \(bits)") }
        if let groupSize, ![32, 64, 128].contains(groupSize) { throw ValidationError("--group-size must be 32, 64 or 128 (MLX's group sizes), not \(groupSize)") }
        guard threads >= 1, ctx >= 16, chunks >= 1, damp > 0 else { throw ValidationError("--threads, --ctx (≥ 16), --chunks and --damp must be positive") }
    }
}
