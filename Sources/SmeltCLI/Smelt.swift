import ArgumentParser
import Foundation
import Kernels

@main
struct Smelt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smelt",
        abstract: "Convert, quantize and evaluate open-weight language models.",
        discussion: """
            Formats: safetensors (single files and sharded sets), Hugging Face model folders, GGUF v3 \
            (every ggml block type, split sets) and Ingot, smelt's zstd-compressed container. \
            Architectures the evaluator runs: llama (Llama, Mistral, SmolLM checkpoints), qwen2, gpt2.

            inspect and verify look at a file; convert moves a model between formats (and casts); \
            quantize rounds weights to Q8_0/Q4_0/Q4_1 (round-to-nearest, importance matrix or GPTQ); \
            calibrate computes an importance matrix; perplexity and drift evaluate a model, and drift \
            gates a build on how far a candidate strays from its base; merge combines the partial \
            results of those three and of quantize run as shards (--shard K/N) into one run's \
            result; tokenize prints token ids. \
            `smelt help SUBCOMMAND` explains each.

            Exit status: 0 success, 1 a failed drift gate, 2 a runtime error (bad input, I/O), 64 a usage error.
            """,
        subcommands: [Inspect.self, Convert.self, Verify.self, Tokenize.self, PerplexityCommand.self, DriftCommand.self,
            QuantizeCommand.self, CalibrateCommand.self, SensitivityCommand.self, MergeCommand.self, SystemCommand.self]
    )

    /// Chooses the BLAS kernels first (this may re-execute the process once; see
    /// `BLASRuntime.prepareProcess`), then parses the command line.
    static func main() {
        BLASRuntime.prepareProcess()
        main(nil)
    }
}

/// Runs a command body, turning thrown errors into a message on stderr and exit status 2.
func run(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        Terminal.clearProgress()
        FileHandle.standardError.write(Data("smelt: error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}
