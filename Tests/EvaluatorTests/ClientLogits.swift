@testable import Evaluator
import Foundation
import TestSupport
import XCTest

/// What the real-client checks (`MLXClientTests`, `GPTQClientTests`) share: the Python named by an
/// environment variable (the test skips, with a banner, when it is unset), and one comparison — a
/// client script writes `OUT.json` (`ids`, `shape`, anything else it reports) and `OUT.f32` (the
/// logits), and Smelt's forward pass runs on the same folder and ids.
enum ClientLogits {
    /// The Python in `variable`; skips the test when it is unset or empty.
    static func python(_ variable: String, banner: String) throws -> String {
        guard let p = ProcessInfo.processInfo.environment[variable], !p.isEmpty else {
            FileHandle.standardError.write(Data("\nSKIPPING \(banner): set \(variable)\n".utf8))
            throw XCTSkip("\(variable) is not set")
        }
        return p
    }

    /// Runs `script` (under scripts/) on `folder` with `arguments` after the folder and the output
    /// path; returns the largest difference between its logits and Smelt's, relative to the
    /// largest client logit, and the client's JSON.
    static func compare(
        python: String, script: String, client: String, folder: String, arguments: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> (error: Float, meta: [String: Any]) {
        let out = TestSupport.tempDir(String(script.prefix { $0 != "." })) + "/logits"
        let r = try TestSupport.run(python, [TestSupport.path("scripts/\(script)"), folder, out] + arguments)
        XCTAssertEqual(r.status, 0, "\(client) failed on \(folder): \(r.stderr)", file: file, line: line)
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + ".json"))) as! [String: Any]
        let ids = (meta["ids"] as! [Int]).map(Int32.init)
        let shape = meta["shape"] as! [Int]
        let ref = try Data(contentsOf: URL(fileURLWithPath: out + ".f32")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(ref.count, shape[0] * shape[1], file: file, line: line)
        let (model, _) = try ModelLoader.load(folder, threads: 2)
        let ours = try model.logits(tokens: ids, outputRows: 0..<ids.count)
        XCTAssertEqual(ours.count, ref.count, file: file, line: line)
        let scale = ref.map(abs).max() ?? 1
        return (zip(ours, ref).map { abs($0 - $1) }.max()! / scale, meta)
    }
}
