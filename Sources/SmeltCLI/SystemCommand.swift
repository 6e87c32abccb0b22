import ArgumentParser
import Evaluator
import Formats
import Foundation
import Kernels

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Show the processor, the BLAS library and the kernels smelt runs on, and benchmark them.",
        discussion: """
            Prints the processor (model, cpuid family/model, the vector features the OS enables), the \
            BLAS library (version, build options, the core whose kernels run and who chose it) and a \
            self-check of its sgemm against a double-precision reference.

            OpenBLAS picks its kernels when it loads, from the processor models it knows. On a model \
            newer than the library it falls back to generic SSE3 kernels, several times slower; smelt \
            then re-runs itself once with the kernels matching the processor's features (SkylakeX \
            for AVX-512, Haswell for AVX2). A user's OPENBLAS_CORETYPE always wins; \
            SMELT_BLAS_SELECT=off turns the selection off.

            --bench measures the kernels: their one-thread peak (a 1024³ product) and, with \
            --model, the rate on every matrix product of one --ctx forward pass of that model, split \
            over --threads as the evaluator splits it, with the weights cold (a pool of copies larger \
            than the caches, as a forward pass meets each weight once), and the tokens per second the \
            products alone would allow (the sgemm-bound limit that `smelt perplexity` can be compared with).
            """
    )

    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Benchmark the sgemm kernels (about a second; more with --model).") var bench = false
    @Option(help: "With --bench: measure the products of this model's forward pass.") var model: String?
    @Option(help: "With --model: tokens per forward pass, as perplexity's --ctx.") var ctx: Int = 512
    @Option(help: "Threads for the benchmark.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4") }
        if model != nil && !bench { throw ValidationError("--model goes with --bench") }
    }

    func run() throws {
        try SmeltCLI.run {
            let check = BLASRuntime.sgemmSelfCheck()
            let passed = check <= BLASRuntime.selfCheckTolerance
            var fields = SystemReport.json(threads: threads).objectEntries ?? []
            fields.append(("sgemm_self_check", .object([
                ("max_relative_error", .double(check)), ("tolerance", .double(BLASRuntime.selfCheckTolerance)),
                ("passed", .bool(passed)),
            ])))
            if !json {
                SystemReport.lines(threads: threads).forEach { print($0) }
                print(String(format: "sgemm self-check: max relative error %.2e (%@)", check, passed ? "ok" : "FAILED"))
            }
            if bench { fields.append(("bench", try runBench())) }
            if json { print(JSONWriter.write(.object(fields), indent: 2)) }
            if !passed { throw ExitCode(2) }
        }
    }

    private func runBench() throws -> JSONValue {
        let peak = SgemmBench.peak()
        if !json { print(String(format: "sgemm peak, 1 thread, 1024x1024x1024: %.1f GFLOP/s", peak)) }
        var fields: [(String, JSONValue)] = [("peak_gflops_one_thread", .double(peak)), ("threads", .int(threads))]
        guard let model else { return .object(fields) }
        let loaded = try ModelLoader.load(model, threads: threads)
        let products = try loaded.model.products(tokens: ctx, outputRows: Perplexity.scoredRows(ctx: ctx))
        var rows: [JSONValue] = []
        var seconds = 0.0, flops = 0.0
        if !json {
            print("products of one \(ctx)-token forward pass of \(model), \(threads) threads:")
            print("  m     n     k      count  GFLOP/s  % of peak×threads  label")
        }
        for p in products {
            // Linear layers are tiled over the threads, their weights cold (read from memory, as a
            // pass meets them); attention products run one per thread on keys and values just made.
            let rate = p.tiled ? SgemmBench.rate(p.shape, threads: threads, seconds: 0.05)
                : SgemmBench.rate(p.shape, threads: 1, seconds: 0.02, coldWeights: false) * Double(threads)
            let f = p.shape.flops * Double(p.count)
            seconds += f / (rate * 1e9)
            flops += f
            let share = rate / (peak * Double(threads)) * 100
            rows.append(.object([
                ("m", .int(p.shape.m)), ("n", .int(p.shape.n)), ("k", .int(p.shape.k)),
                ("transpose_b", .bool(p.shape.transposeB)), ("count", .int(p.count)), ("gflops", .double(rate)),
                ("label", .string(p.label)),
            ]))
            if !json {
                print(String(format: "  %-5d %-5d %-6d %5d  %7.1f  %5.1f %%  %@", p.shape.m, p.shape.n, p.shape.k, p.count,
                             rate, share, p.label))
            }
        }
        let limit = Double(ctx) / seconds
        if !json {
            print(String(format: "all products: %.1f GFLOP per pass, %.3f s at these rates → sgemm-bound limit %.0f tokens/s (%d threads)",
                         flops / 1e9, seconds, limit, threads))
        }
        fields += [("model", .string(model)), ("ctx", .int(ctx)), ("products", .array(rows)),
                   ("gflop_per_pass", .double(flops / 1e9)), ("seconds_per_pass", .double(seconds)),
                   ("sgemm_bound_tokens_per_second", .double(limit))]
        return .object(fields)
    }
}

/// The processor and BLAS facts every report carries (`smelt system`, `--verbose`, JSON reports).
enum SystemReport {
    static func json(threads: Int) -> JSONValue {
        let cpu = CPUFeatures.current, blas = BLASLibrary.current, state = BLASRuntime.state
        var blasFields: [(String, JSONValue)] = [
            ("library", .string(blas.name)), ("config", .string(blas.config)), ("core", .string(blas.core)),
            ("core_tier", blas.tier.map { .string($0.name) } ?? .null), ("core_source", .string(source(state.source))),
        ]
        if case .smelt(let replaced) = state.source { blasFields.append(("replaced_core", .string(replaced))) }
        if let faster = state.faster { blasFields.append(("faster_core", .string(faster))) }
        blasFields += [("dynamic_arch", .bool(blas.dynamicArch)), ("threads_per_call", .int(1)), ("note", .string(state.note))]
        return .object([
            ("cpu", .object([
                ("model_name", .string(cpu.modelName)), ("vendor", .string(cpu.vendor)), ("family", .int(cpu.family)),
                ("model", .int(cpu.model)), ("stepping", .int(cpu.stepping)), ("tier", .string(cpu.tier.name)),
                ("features", .array(cpu.features.map(JSONValue.string))),
                ("disabled_by_os", .array(cpu.disabledByOS.map(JSONValue.string))),
                ("logical_cpus", .int(ProcessInfo.processInfo.activeProcessorCount)),
            ])),
            ("blas", .object(blasFields)),
            ("threads", .int(threads)),
        ])
    }

    static func source(_ s: BLASRuntime.CoreSource) -> String {
        switch s {
        case .library: return "library"
        case .environment: return "environment"
        case .smelt: return "smelt"
        }
    }

    static func lines(threads: Int) -> [String] {
        let cpu = CPUFeatures.current, blas = BLASLibrary.current
        var out = [
            "cpu: \(cpu.modelName) (\(cpu.vendor) family \(cpu.family) model \(cpu.model) stepping \(cpu.stepping)), \(ProcessInfo.processInfo.activeProcessorCount) logical CPUs",
            "cpu features (\(cpu.tier.name)): \(cpu.features.joined(separator: " "))",
        ]
        if !cpu.disabledByOS.isEmpty { out.append("advertised but not enabled by the OS: \(cpu.disabledByOS.joined(separator: " "))") }
        out += [
            "blas: \(blas.config)",
            "blas kernels: \(blas.core) (\(blas.tier?.name ?? "unknown tier")), chosen by \(source(BLASRuntime.state.source)); threads: \(threads), one BLAS thread per call",
            BLASRuntime.state.note,
        ]
        return out
    }

    /// The report lines on stderr (for --verbose).
    static func printVerbose(threads: Int) {
        for line in lines(threads: threads) { FileHandle.standardError.write(Data("smelt: \(line)\n".utf8)) }
    }
}
