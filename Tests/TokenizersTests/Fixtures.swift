import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

@testable import Tokenizers

/// Shared inputs of the tokenizer tests: the real SmolLM2 vocabulary, the wiki text, golden files,
/// and the Python `tokenizers` reference.
enum Fixtures {
    static let wikiPath = TestSupport.wikiText
    static let goldenDir = TestSupport.path("golden/tokenizer")

    /// The SmolLM2 GGUF's tokenizer (`make models`), or a skip.
    static func smolLM2() throws -> Tokenizer {
        try TestSupport.requireModel(TestSupport.smolLM2)
        return try loaded.get()
    }

    private static let loaded: Result<Tokenizer, Error> = Result { try FormatRegistry.open(TestSupport.smolLM2).graph.tokenizer }

    /// SmolLM2's vocabulary and merges under another pre-tokenizer kind.
    static func smolLM2(kind: String) throws -> BPETokenizer {
        var t = try smolLM2()
        t.preTokenizer = kind
        return try BPETokenizer(tokenizer: t)
    }

    static func wikiBytes() throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: try TestSupport.requireFile(wikiPath)) else {
            throw TestSupport.MissingInput(message: "cannot read \(wikiPath)")
        }
        return [UInt8](data)
    }

    static func wikiText() throws -> String { String(decoding: try wikiBytes(), as: UTF8.self) }

    /// The seeded random text of tricky fragments golden/make_tokenizer_golden.sh made.
    static func fuzzText() throws -> String {
        String(decoding: try zstdDecompress(goldenDir + "/fuzz.txt.zst"), as: UTF8.self)
    }

    /// A golden text by its name in ids-by-kind.json.
    static func text(named name: String) throws -> String {
        name == "fuzz.txt" ? try fuzzText() : try wikiText()
    }

    /// Our ids for the whole wiki text under `kind` (SmolLM2 vocabulary), computed once per kind.
    static func wikiIDs(kind: String) throws -> [Int32] { try ids(text: "wiki.test.raw", kind: kind) }

    /// Our ids for a golden text (`wiki.test.raw` or `fuzz.txt`) under `kind`, computed once.
    static func ids(text name: String, kind: String) throws -> [Int32] {
        lock.lock()
        defer { lock.unlock() }
        let key = name + "/" + kind
        if let ids = wikiCache[key] { return ids }
        let ids = try smolLM2(kind: kind).encode(text(named: name), addBOS: false)
        wikiCache[key] = ids
        return ids
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var wikiCache: [String: [Int32]] = [:]

    static func goldenJSON(_ name: String) throws -> [String: Any] {
        let path = goldenDir + "/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TestSupport.MissingInput(message: "golden file \(path) missing (golden/make_tokenizer_golden.sh)")
        }
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Decompresses a .zst file with the `zstd` tool.
    static func zstdDecompress(_ path: String) throws -> Data {
        try runData("/usr/bin/env", ["zstd", "-dc", path])
    }

    /// Runs a command and returns its raw standard output.
    static func runData(_ exe: String, _ args: [String], stdin: Data? = nil) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.currentDirectoryURL = TestSupport.repoRoot
        let out = Pipe()
        p.standardOutput = out
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("tok-stderr-\(UUID())").path
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        var inPath: String?
        if let stdin {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("tok-stdin-\(UUID())").path
            FileManager.default.createFile(atPath: path, contents: stdin)
            p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            inPath = path
        }
        defer { if let inPath { try? FileManager.default.removeItem(atPath: inPath) } }
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw NSError(domain: "subprocess", code: Int(p.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "\(args.joined(separator: " ")) failed: \(err)"])
        }
        return data
    }

    static func u32LE(_ data: Data) -> [Int32] {
        var ids = [Int32](repeating: 0, count: data.count / 4)
        data.withUnsafeBytes { raw in
            for i in ids.indices { ids[i] = Int32(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
        }
        return ids
    }

    /// 64-bit FNV-1a of the ids as little-endian u32 bytes, as golden/make_tokenizer_golden.sh computes it.
    static func fnv1a64(_ ids: ArraySlice<Int32>) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for id in ids {
            var v = UInt32(bitPattern: id)
            for _ in 0..<4 {
                h = (h ^ UInt64(v & 0xFF)) &* 0x100_0000_01b3
                v >>= 8
            }
        }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// The first index where two id lists differ, with some context, for failure messages.
    static func firstDifference(_ a: [Int32], _ b: [Int32], tokenizer: BPETokenizer? = nil) -> String? {
        let n = min(a.count, b.count)
        var i = 0
        while i < n && a[i] == b[i] { i += 1 }
        if i == n && a.count == b.count { return nil }
        let lo = max(0, i - 5)
        let ctxA = Array(a[lo..<min(a.count, i + 6)]), ctxB = Array(b[lo..<min(b.count, i + 6)])
        var msg = "first difference at id #\(i) of \(a.count) vs \(b.count): ours \(ctxA) reference \(ctxB)"
        if let tokenizer {
            msg += " — ours \(ctxA.map { tokenizer.tokens[Int($0)] }) reference \(ctxB.map { $0 >= 0 && Int($0) < tokenizer.tokens.count ? tokenizer.tokens[Int($0)] : "?" })"
        }
        return msg
    }
}
