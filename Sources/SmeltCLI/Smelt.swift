import ArgumentParser
import Foundation

@main
struct Smelt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smelt",
        abstract: "Convert, quantize and evaluate open-weight language models.",
        discussion: """
            Reads safetensors files and sharded sets, Hugging Face model folders; writes the same.
            Exit status: 0 success, 1 a failed drift gate, 2 a runtime error (bad input, I/O), 64 a usage error.
            """,
        subcommands: [Inspect.self, Convert.self, Verify.self, Tokenize.self, PerplexityCommand.self, DriftCommand.self,
            QuantizeCommand.self, CalibrateCommand.self]
    )
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
