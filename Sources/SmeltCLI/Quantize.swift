import ArgumentParser
import Calibration
import Evaluator
import Formats
import Foundation
import Kernels
import Quantization
import TensorGraph

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a model's weights to a llama.cpp file type (Q4_K_M, Q6_K, IQ4_XS, Q4_0, …): round-to-nearest, importance-weighted, or GPTQ.",
        discussion: """
            IN is any model smelt reads; OUT a GGUF that llama.cpp loads (or, ending in .ingot, the \
            same graph as a compressed Ingot that converts back to that GGUF). Which tensors are quantized \
            follows the recipe in formats/quant-recipe.json: the linear layers' 2-D weights and the \
            token embedding take --type, norms, biases and other vectors stay F32. --recipe FILE adds \
            rules in front (same layout); --keep PATTERN (a glob over GGUF tensor names, repeatable) \
            keeps matching tensors F32.

            --type names a file type (either case): Q2_K, Q3_K_S, Q3_K_M (or Q3_K), Q3_K_L, Q4_K_S, \
            Q4_K_M (or Q4_K), Q5_K_S, Q5_K_M (or Q5_K), Q6_K, IQ4_NL, IQ4_XS, Q4_0, Q4_1, Q5_0, Q5_1, \
            Q8_0, MXFP4_MOE (mixtures of experts: expert tensors MXFP4, other weights Q8_0). Each is \
            formats/recipes/NAME.json: the default block type and llama-quantize's \
            exceptions (output head, attention values, feed-forward down projections by layer). Rows \
            that do not divide into a type's blocks take its fallback (Q4_K→Q5_0, Q5_K→Q5_1, \
            Q6_K→Q8_0, Q2_K/Q3_K→Q4_0, IQ4_XS→IQ4_NL; F32 when none fits, F16 with --exact-ggml), \
            and the summary says so. The legacy types (Q4_0…Q8_0) are pure unless --exact-ggml; \
            --pure quantizes every eligible tensor to the one type. --exact-ggml reproduces \
            llama-quantize's tensor data byte for byte: its mix for every file type and, with \
            --imatrix, ggml's own weighted quantizers (smelt's scale search is the default for \
            Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1).

            Methods: rtn rounds each block to the nearest grid point with ggml's reference \
            quantizers (byte for byte); with --imatrix (llama-imatrix's GGUF or .dat, or \
            `smelt calibrate`'s) each block's scale is searched to minimise the importance-weighted \
            error instead. gptq needs --calibration-text: layer by layer, on the outputs of the \
            layers before it already quantized, each linear weight is rounded column by column with \
            the error spread onto the columns not yet rounded (GPTQ), onto the same block types \
            (K-quant super-blocks: d/dmin fixed when the walk reaches the super-block, each \
            sub-block's scale when it reaches the sub-block). \
            Tensors stream to the output one by one, rows quantized on --threads cores.

            Budgets: with --target-bpw B (8 × bytes of all tensors ÷ parameters), --target-size \
            SIZE (the GGUF file's bytes, header and alignment included; never exceeded) or \
            --max-kld K (the smallest mix predicted at or under K), each tensor the recipe leaves \
            to the requested type gets the type, among Q4_0…Q8_0, Q2_K…Q6_K, IQ4_NL, IQ4_XS and F16 \
            (fallbacks where blocks do not fit), that minimises the summed predicted KLD of \
            --sensitivity S.json (from `smelt sensitivity`; or measured first from \
            --calibration-text): an exact multiple-choice knapsack on a byte grid of at most 0.1 % \
            of the budget. --keep and --recipe rules with a type are honoured; --type then only \
            sets general.file_type. --write-recipe FILE writes the mix as a recipe that \
            `--recipe FILE --type T` replays to the same bytes. A budget out of reach is an error \
            giving the reachable range.
            """
    )

    @Argument(help: "The input model.") var input: String
    @Argument(help: "The output GGUF (or .ingot); not given with --partial.") var output: String?
    @Option(help: "The file type (Q4_K_M, Q6_K, IQ4_XS, Q4_0, … in either case); not given with --format mlx|gptq|compressed-tensors; with a budget, only its general.file_type.") var type: String?
    @Option(help: ArgumentHelp(
        "gguf (default), or a folder: mlx (MLX's affine grid), gptq or compressed-tensors (integer groups); the grid from --bits, --group-size, --sym/--asym.",
        valueName: "gguf|mlx|gptq|compressed-tensors"))
    var format: String = "gguf"
    @Option(help: "Folder formats: bits per weight (mlx: 1, 2, 3, 4, 5, 6, 8; gptq, compressed-tensors: 2, 4, 8; default 4).") var bits: Int?
    @Option(help: "Folder formats: values per group sharing a scale (mlx: 32, 64 or 128, default 64; gptq and compressed-tensors: default 128).") var groupSize: Int?
    @Flag(help: "Folder formats: symmetric (--sym; gptq's and compressed-tensors' default) or asymmetric (--asym; mlx's default) grid.") var symmetry: Symmetry?
    @Flag(help: "Quantize every eligible tensor to the type's one block type (no mix).") var pure = false
    @Flag(help: "Reproduce llama-quantize's tensor data byte for byte (its mix, fallbacks and imatrix use).")
    var exactGGML = false
    @Option(help: "rtn (round to nearest; importance-weighted with --imatrix) or gptq.") var method: String = "rtn"
    @Option(help: "An importance matrix (GGUF from llama-imatrix or smelt calibrate, or a legacy .dat).")
    var imatrix: String?
    @Option(help: "GPTQ, or a budget without --sensitivity: the calibration text (UTF-8).") var calibrationText: String?
    @Option(help: "GPTQ: tokens per calibration chunk.") var ctx: Int = 512
    @Option(help: "GPTQ: calibration chunks to use (default 32).") var chunks: Int = 32
    @Option(help: "GPTQ: dampening of the Hessian's diagonal, as a fraction of its mean.") var damp: Float = 0.01
    @Option(help: ArgumentHelp("GPTQ: column order, act (most important blocks first) or natural.", visibility: .hidden))
    var gptqOrder: String = "act"
    @Option(help: ArgumentHelp(
        "GPTQ: how a tied embedding (token_embd serving as the output head) is rounded: walk (GPTQ with the head's Hessian, which also moves the rows looked up as input vectors) or weighted (the type's importance-weighted rounding, importance = the head's Hessian diagonal).",
        valueName: "walk|weighted"))
    var gptqTiedEmbedding: String = "walk"
    @Option(help: ArgumentHelp(
        "GPTQ: sequential (each layer's Hessians from the layers before it already quantized) or one-pass (every Hessian from the unquantized model: layers quantize independently, and --shard splits them).",
        valueName: "sequential|one-pass"))
    var gptqMode: String = "sequential"
    @Option(help: "Threads for quantization and the calibration forward pass.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Keep tensors whose GGUF name matches this glob unquantized (F32); repeatable.")
    var keep: [String] = []
    @Option(help: "A recipe file whose rules come before the built-in recipe's.") var recipe: String?
    @Flag(help: "Replace an existing output.") var force = false
    @Flag(help: "Print a JSON summary instead of text.") var json = false
    @OptionGroup var shard: ShardOptions
    @Option(help: "Budget: a sensitivity file from `smelt sensitivity` (else --calibration-text measures one).")
    var sensitivity: String?
    @Option(help: "Budget: bits per weight, 8 × (bytes of all tensors) ÷ parameters.") var targetBpw: Double?
    @Option(help: "Budget: the GGUF file's size in bytes (500MB, 90MiB, 123456789), header included; never exceeded.")
    var targetSize: String?
    @Option(help: "Budget: the smallest mix whose predicted mean KLD is at most this.") var maxKld: Double?
    @Option(help: "Budget: write the chosen mix as a recipe that --recipe replays.") var writeRecipe: String?
    @Option(help: ArgumentHelp("Budget: choose only among these stored types (comma-separated, e.g. q4_0,q5_0,q4_k,q6_k,q8_0).", valueName: "LIST"))
    var types: String?

    /// The file type named by --type, or a pure mix of a block type smelt encodes.
    var mix: FileTypeMix? {
        guard let type else { return nil }
        if let m = FileTypeMix.named(type) { return m }
        guard let t = DType(name: type), Quantize.supportedTypes.contains(t) else { return nil }
        return FileTypeMix.pure(t, fileType: ModelQuantizer.fileType(t))
    }

    func validate() throws {
        try Usage.oneOf("--format", format, ["gguf", "mlx"] + Self.folderFormats)
        if format == "mlx" {
            try validateMLX()
            return
        }
        if Self.folderFormats.contains(format) { return try validateFolder() }
        if bits != nil || groupSize != nil || symmetry != nil {
            throw ValidationError("--bits, --group-size and --sym/--asym are for --format mlx|gptq|compressed-tensors")
        }
        try validateBudget()
        if type == nil && !budgetMode {
            throw ValidationError("give --type (the file type), a budget (--target-bpw, --target-size or --max-kld), or --format mlx|gptq|compressed-tensors")
        }
        if let type, mix == nil {
            throw ValidationError("unknown --type '\(Usage.echo(type))'; known: \(FileTypeMix.names.joined(separator: ", "))")
        }
        if exactGGML && pure == false, FileTypeMix.named(type ?? "") == nil {
            throw ValidationError("--exact-ggml needs a file type name (\(FileTypeMix.all.map(\.name).joined(separator: ", ")))")
        }
        if exactGGML && method == "gptq" { throw ValidationError("--exact-ggml reproduces llama-quantize, which has no GPTQ: use --method rtn") }
        guard let m = QuantMethod(rawValue: method) else {
            throw ValidationError("--method must be rtn or gptq, not '\(Usage.echo(method))'")
        }
        try Usage.oneOf("--gptq-order", gptqOrder, ["act", "natural"])
        try Usage.oneOf("--gptq-tied-embedding", gptqTiedEmbedding, ["walk", "weighted"])
        if m == .gptq, calibrationText == nil { throw ValidationError("--method gptq needs --calibration-text FILE") }
        if m == .rtn, calibrationText != nil, !budgetMode || sensitivity != nil {
            throw ValidationError("--calibration-text is for --method gptq, or a budget without --sensitivity")
        }
        guard ctx >= 16 else { throw ValidationError("--ctx must be at least 16") }
        guard chunks >= 1 else { throw ValidationError("--chunks must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard damp > 0, damp.isFinite else { throw ValidationError("--damp must be positive") }
        guard ["sequential", "one-pass"].contains(gptqMode) else { throw ValidationError("--gptq-mode must be sequential or one-pass") }
        if shard.partial != nil {
            guard output == nil else { throw ValidationError("give OUT or --partial FILE, not both") }
            guard m == .rtn || gptqMode == "one-pass" else {
                throw ValidationError("--shard quantizes parts independently: it takes --method rtn (with or without --imatrix) or --method gptq --gptq-mode one-pass, not sequential GPTQ")
            }
        } else {
            guard let output else { throw ValidationError("give OUT") }
            guard [.gguf, .ingot].contains(FormatRegistry.outputFormat(for: output)) else {
                throw ValidationError("OUT must end in .gguf (or .ingot)")
            }
        }
    }

    func run() throws {
        if Self.folderFormats.contains(format) { return try runFolder() }
        try SmeltCLI.run {
            if format == "mlx" { return try runMLX() }
            var mix = self.mix ?? .pure(.q8_0, fileType: nil)
            let method = QuantMethod(rawValue: method)!
            if let s = try shard.resolved() { return try runShard(s, mix: mix) }
            let output = output!
            if !force && Paths.exists(output) { throw OutputError.exists(path: output) }
            let started = Date()
            let graph = try ModelQuantizer.open(input) { Terminal.printErr("smelt: note: \($0)") }
            var recipe = QuantRecipe.builtIn()
            if let path = self.recipe { recipe = recipe.overridden(by: try QuantRecipe.read(path)) }
            recipe = recipe.keeping(keep)
            let matrix = try imatrix.map { try ImportanceMatrix.read($0) }
            var budget: Budget?
            if budgetMode {
                let b = try allocate(graph: graph, recipe: recipe, imatrix: matrix)
                (recipe, mix, budget) = (b.recipe, b.mix, b)
                if let path = writeRecipe { try Self.writeRecipe(b, to: path, replace: force) }
            }
            let type = mix.defaultType
            let request = ModelQuantizer.Request(mix: mix, pure: pure, exactGGML: exactGGML, hasImatrix: matrix != nil)
            let plan = ModelQuantizer.plan(graph, recipe: recipe, request: request)

            var precomputed: [String: [UInt8]] = [:]
            var calibrationSeconds = 0.0
            var gptqErrors: [String: Double] = [:]
            var rtnErrors: [String: Double] = [:]
            if method == .gptq {
                let t0 = Date()
                let loaded = (model: try LanguageModel(graph: graph, threads: threads), graph: graph)
                let tokens = try TextTokens.tokenize(file: calibrationText!, graph: loaded.graph)
                let bos = loaded.graph.tokenizer.addBOS == true ? loaded.graph.tokenizer.bosTokenID.map { Int32($0) } : nil
                let calibration = try Perplexity.chunks(of: tokens, ctx: ctx, limit: chunks, bos: bos)
                let runner = GPTQRunner(
                    model: loaded.model, targets: ModelQuantizer.gptqTargets(plan, model: loaded.model), chunks: calibration,
                    options: GPTQ.Options(damp: damp, scaleSearch: true, actOrder: gptqOrder != "natural", threads: threads,
                                      walkTiedEmbedding: gptqTiedEmbedding == "walk"))
                runner.compareWithRTN = true
                let bar = StepBar(label: "gptq")
                if gptqMode == "one-pass" {
                    try runner.runOnePass(units: 0..<GPTQRunner.unitCount(loaded.model)) { phase, done, total in
                        bar.update(phase: phase, done: done, total: total)
                    }
                } else {
                    try runner.run { phase, done, total in bar.update(phase: phase, done: done, total: total) }
                }
                bar.finish()
                precomputed = runner.results
                gptqErrors = runner.relativeErrors
                rtnErrors = runner.rtnRelativeErrors
                calibrationSeconds = Date().timeIntervalSince(t0)
            }

            let (quantized, usedImportance) = try ModelQuantizer.output(
                graph, plan: plan, type: type, fileType: mix.fileType, imatrix: matrix, imatrixPath: imatrix,
                precomputed: precomputed, method: method, weighted: request.weightedMethod)
            if let matrix, usedImportance == 0 {
                Terminal.printErr("smelt: warning: the importance matrix (\(matrix.entries.count) entries) names none of the quantized tensors")
            }
            if let limit = budget?.targetFileBytes {
                let (header, alignment) = try GGUFWriter.layout(quantized)
                let bytes = quantized.tensors.reduce(header) { $0 + ($1.byteCount + alignment - 1) / alignment * alignment }
                guard bytes <= limit else {
                    throw CalibrationError.badInput("internal: the allocated file would take \(bytes) bytes, above --target-size \(limit); nothing written")
                }
            }
            let progress = GroupProgress(label: "quantize", tensors: quantized.tensors)
            if FormatRegistry.outputFormat(for: output) == .ingot {
                // An Ingot of the GGUF graph: `smelt convert OUT.ingot X.gguf` gives the GGUF back.
                _ = try IngotWriter.write(quantized, to: output, threads: threads, sourceFormat: ModelFormat.gguf.rawValue,
                                          replace: force, progress: progress.advance)
            } else {
                try GGUFWriter.write(quantized, to: output, replace: force, progress: progress.advance)
            }
            progress.finish()
            let secs = Date().timeIntervalSince(started)
            let size = ModelQuantizer.size(quantized)
            let fileBytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? size.bytes
            var counts: [DType: Int] = [:]
            for p in plan { counts[p.target, default: 0] += 1 }
            let tensorMix = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }
                .map { "\($0.value) \($0.key.displayName)" }.joined(separator: ", ")
            let fallbacks = plan.filter { $0.note != nil && $0.rule?.target == .requested }
            if json {
                print(JSONWriter.write(.object([
                    ("input", .string(input)), ("output", .string(output)), ("type", .string(type.rawValue)),
                    ("file_type", .string(mix.name)), ("pure", .bool(budget == nil && (pure || !request.appliesMix))), ("exact_ggml", .bool(exactGGML)),
                    ("fallbacks", .array(fallbacks.map { .object([("tensor", .string($0.name)), ("type", .string($0.target.rawValue)),
                                                                 ("why", .string($0.note!))]) })),
                    ("method", .string(method.rawValue)), ("imatrix", imatrix.map(JSONValue.string) ?? .null),
                    ("importance_tensors", .int(usedImportance)),
                    ("tensors", .object(counts.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.rawValue, .int($0.value)) })),
                    ("parameters", .int(size.parameters)), ("tensor_bytes", .int(size.bytes)), ("file_bytes", .int(fileBytes)),
                    ("bits_per_weight", .double(size.bitsPerWeight)), ("seconds", .double(secs)),
                    ("calibration_seconds", .double(calibrationSeconds)),
                    ("gptq_relative_error", .object(gptqErrors.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) })),
                    ("rtn_relative_error", .object(rtnErrors.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) })),
                    ("allocation", budget.map { .object($0.json + [("recipe", writeRecipe.map(JSONValue.string) ?? .null)]) } ?? .null),
                ]), indent: 2))
            } else {
                let how = method == .gptq ? "gptq" : (usedImportance > 0 ? "rtn + importance matrix (\(usedImportance) tensors)" : "rtn")
                let kind = budget != nil ? "budgeted mix" : request.appliesMix ? "\(mix.name) mix" : "\(type.displayName), pure"
                print("wrote \(output): \(kind) (\(how)\(exactGGML ? ", exact ggml" : "")); tensors: \(tensorMix)")
                if !fallbacks.isEmpty {
                    // One line per distinct reason, with how many tensors it covers.
                    var reasons: [(String, Int)] = []
                    for f in fallbacks {
                        if let i = reasons.firstIndex(where: { $0.0 == f.note! }) { reasons[i].1 += 1 } else { reasons.append((f.note!, 1)) }
                    }
                    for (why, n) in reasons { print("fallback: \(n) tensor\(n == 1 ? "" : "s"): \(why)") }
                }
                print(String(
                    format: "%@ parameters, %@ (%.4f bits per weight), %.2f s%@", Terminal.humanCount(size.parameters),
                    Terminal.humanBytes(fileBytes), size.bitsPerWeight, secs,
                    method == .gptq ? String(format: " (calibration and GPTQ %.1f s)", calibrationSeconds) : ""))
                if let b = budget {
                    print(String(format: "budget: %@ (reachable %@); predicted mean KLD %.5f (sum of the tensors' predictions)%@",
                                 b.asked, b.reachable, b.predictedKld, writeRecipe.map { "; recipe written to \($0)" } ?? ""))
                }
                if !gptqErrors.isEmpty {
                    let mean = gptqErrors.values.reduce(0, +) / Double(gptqErrors.count)
                    let worst = gptqErrors.max { $0.value < $1.value }!
                    let rtnMean = rtnErrors.isEmpty ? Double.nan : rtnErrors.values.reduce(0, +) / Double(rtnErrors.count)
                    print(String(
                        format: "relative output error ‖X(W−Ŵ)‖²/‖XW‖² on the calibration inputs: GPTQ mean %.5f (worst %.5f, %@), "
                            + "round-to-nearest mean %.5f", mean, worst.value, worst.key, rtnMean))
                }
            }
        }
    }
}

extension QuantizeCommand {
    /// The recipe this command line asks for.
    func quantRecipe() throws -> QuantRecipe {
        var recipe = QuantRecipe.builtIn()
        if let path = self.recipe { recipe = recipe.overridden(by: try QuantRecipe.read(path)) }
        return recipe.keeping(keep)
    }

    /// `--shard K/N --partial FILE`: the output graph's tensors in shard K's contiguous share of the
    /// tensor order, with the whole output's metadata, as a GGUF for `smelt merge`.
    func runShard(_ s: (k: Int, n: Int), mix: FileTypeMix) throws {
        let started = Date()
        let type = mix.defaultType
        let graph = try ModelQuantizer.open(input) { Terminal.printErr("smelt: note: \($0)") }
        let matrix = try imatrix.map { try ImportanceMatrix.read($0) }
        let request = ModelQuantizer.Request(mix: mix, pure: pure, exactGGML: exactGGML, hasImatrix: matrix != nil)
        let plan = ModelQuantizer.plan(graph, recipe: try quantRecipe(), request: request)
        var fingerprint = ["kind=quantize", "smelt=\(SmeltVersion.string)", "executable=\(Fingerprint.executableHash())"]
        for (role, path) in [("input", Optional(input)), ("imatrix", imatrix), ("recipe", recipe), ("calibration", calibrationText)] {
            guard let path else { continue }
            for (name, size, hash, how) in try Fingerprint.modelFiles(path) {
                fingerprint.append("\(role).file[\(name)]=\(size) bytes, xxh64-\(how) \(Fingerprint.hex(hash))")
            }
        }
        fingerprint += ["type=\(mix.name)", "pure=\(pure)", "exact_ggml=\(exactGGML)", "keep=\(keep.joined(separator: ","))", "method=\(method)"]
        var precomputed: [String: [UInt8]] = [:]
        let units: Int, range: Range<Int>
        var inShard: (Int, Tensor) -> Bool
        if method == "gptq" {
            // One-pass GPTQ: shards take contiguous units (layers, then the output head).
            let loaded = (model: try LanguageModel(graph: graph, threads: threads), graph: graph)
            let tokens = try TextTokens.tokenize(file: calibrationText!, graph: loaded.graph)
            let bos = loaded.graph.tokenizer.addBOS == true ? loaded.graph.tokenizer.bosTokenID.map { Int32($0) } : nil
            let calibration = try Perplexity.chunks(of: tokens, ctx: ctx, limit: chunks, bos: bos)
            units = GPTQRunner.unitCount(loaded.model)
            guard s.n <= units else { throw EvaluatorError.badInput("\(s.n) shards for \(units) layers and the head: every shard needs one") }
            range = Perplexity.shardRange(s.k, of: s.n, chunks: units)
            fingerprint += ["gptq=one-pass", "ctx=\(ctx)", "chunks=\(chunks)", "damp=\(damp)", "order=\(gptqOrder)", "tied=\(gptqTiedEmbedding)",
                            "threads=\(threads)", "blas_core=\(BLASLibrary.current.core)", "units=\(units)"]
            let runner = GPTQRunner(
                model: loaded.model, targets: ModelQuantizer.gptqTargets(plan, model: loaded.model), chunks: calibration,
                options: GPTQ.Options(damp: damp, scaleSearch: true, actOrder: gptqOrder != "natural", threads: threads,
                                      walkTiedEmbedding: gptqTiedEmbedding == "walk"))
            let bar = StepBar(label: "gptq \(s.k)/\(s.n)")
            try runner.runOnePass(units: range) { phase, done, total in bar.update(phase: phase, done: done, total: total) }
            bar.finish()
            precomputed = runner.results
            let layers = units - 1
            inShard = { _, t in range.contains(GPTQRunner.unit(of: t.name, layers: layers)) }
        } else {
            units = graph.tensors.count
            guard s.n <= units else { throw EvaluatorError.badInput("\(s.n) shards for \(units) tensors: every shard needs at least one tensor") }
            range = Perplexity.shardRange(s.k, of: s.n, chunks: units)
            fingerprint += ["tensors=\(units)"]
            inShard = { i, _ in range.contains(i) }
        }
        let (quantized, _) = try ModelQuantizer.output(
            graph, plan: plan, type: type, fileType: mix.fileType, imatrix: matrix, imatrixPath: imatrix,
            precomputed: precomputed, method: QuantMethod(rawValue: method)!, weighted: request.weightedMethod)
        let mine = quantized.tensors.enumerated().filter { inShard($0.offset, $0.element) }.map(\.element)
        var partial = PartialFile(
            kind: .quantize, shard: s.k, shards: s.n, chunks: range, totalChunks: units, ctx: 0, fingerprint: fingerprint,
            paths: [input], text: "", seconds: Date().timeIntervalSince(started), threads: threads, tensors: [])
        var m = partial.metadata(base: quantized.metadata, tensorCount: mine.count)
        m[PartialFile.keyPrefix + "tensor_names"] = .array(elementType: .string, values: quantized.tensors.map { .string($0.name) })
        var shardGraph = try TensorGraph(metadata: m)
        for t in mine { try shardGraph.append(t) }
        let progress = GroupProgress(label: "quantize \(s.k)/\(s.n)", tensors: mine)
        try GGUFWriter.write(shardGraph, to: shard.partial!, replace: true, progress: progress.advance)
        progress.finish()
        partial.seconds = Date().timeIntervalSince(started)
        print(partial.summary(written: shard.partial!).replacingOccurrences(of: "chunks", with: method == "gptq" ? "units" : "tensors")
            + ", \(mine.count) tensors")
    }
}

/// A progress bar per tensor group (`blk.N`, or a tensor's own name) as the writer streams bytes.
final class GroupProgress: @unchecked Sendable {
    private var groups: [(label: String, bytes: Int)] = []
    private var index = 0
    private var doneInGroup = 0
    private var current: Terminal.Progress?
    private let label: String
    private let lock = NSLock()

    init(label: String, tensors: [Tensor]) {
        self.label = label
        for t in tensors {
            let parts = t.name.split(separator: ".")
            let g = parts.count > 2 && parts[0] == "blk" ? "blk.\(parts[1])" : t.name
            if let last = groups.last, last.label == g {
                groups[groups.count - 1].bytes += t.byteCount
            } else {
                groups.append((g, t.byteCount))
            }
        }
        groups.removeAll { $0.bytes == 0 }
    }

    func advance(_ n: Int) {
        lock.lock()
        defer { lock.unlock() }
        var n = n
        while n > 0 && index < groups.count {
            let g = groups[index]
            if current == nil { current = Terminal.Progress(label: "\(label) \(g.label) [\(index + 1)/\(groups.count)]", total: g.bytes) }
            let take = min(n, g.bytes - doneInGroup)
            current!.advance(take)
            doneInGroup += take
            n -= take
            if doneInGroup >= g.bytes {
                index += 1
                doneInGroup = 0
                current = nil
            }
        }
    }

    func finish() {
        current?.finish()
        Terminal.Progress(label: label, total: 0).finish()
    }
}

/// A progress bar over named steps (GPTQ's layers), on stderr when it is a terminal.
final class StepBar {
    let label: String
    private let start = Date()
    private var shown = false
    init(label: String) { self.label = label }

    func update(phase: String, done: Int, total: Int) {
        guard Terminal.stderrIsTTY else { return }
        let frac = total > 0 ? Double(done) / Double(total) : 1
        let width = 30
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let elapsed = Date().timeIntervalSince(start)
        let left = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let line = String(format: "\r\u{1b}[K%@ %@ %d/%d  %@  %.0fs left ", label, bar, done, total, phase, left)
        FileHandle.standardError.write(Data(line.utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
        shown = false
    }
}
