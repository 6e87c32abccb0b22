import ArgumentParser
import Formats
import Foundation
import TensorGraph

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum of an Ingot file and decode every chunk.",
        discussion: """
            Checks the prelude, trailer and header checksums, then reads every chunk on all cores, \
            compares its XXH64 checksum and decodes it into a buffer of its declared size (nothing \
            is written anywhere: this is also the way to time pure decompression). Exit status 0 \
            when everything is intact, 2 on the first problem found (the bad chunk is named by \
            tensor and chunk number; the number of bad chunks is counted).
            """
    )

    @Argument(help: "The .ingot file.") var path: String
    @Option(help: "Threads to decode with (default: all cores).") var threads: Int = 0
    @Flag(help: "Print a JSON report instead of text.") var json = false

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be 0 (all cores) or more, not \(threads)") }
    }

    func run() throws {
        try SmeltCLI.run {
            let started = Date()
            let file = try IngotReader.open(path)
            let progress = Terminal.Progress(label: "verify", total: file.rawBytes)
            let result = file.verify(threads: threads, progress: { n in progress.advance(n) })
            progress.finish()
            let secs = Date().timeIntervalSince(started)
            let rate = secs > 0 ? Double(result.rawBytes) / secs / 1e6 : 0
            if json {
                var entries: [(String, JSONValue)] = [
                    ("path", .string(path)), ("ok", .bool(result.ok)), ("tensors", .int(result.tensors)),
                    ("chunks", .int(result.chunks)), ("raw_bytes", .int(result.rawBytes)),
                    ("stored_bytes", .int(result.storedBytes)), ("file_bytes", .int(file.fileSize)),
                    ("seconds", .double(secs)), ("mb_per_s", .double(rate)),
                    ("bad_chunks", .int(result.failures.count)),
                ]
                if let first = result.failures.first {
                    var e: [(String, JSONValue)] = [("message", .string(first.description))]
                    if let c = first.chunk { e += [("tensor", .string(c.tensor)), ("chunk", .int(c.chunk))] }
                    entries.append(("first_error", .object(e)))
                }
                print(JSONWriter.write(.object(entries), indent: 2))
            }
            if let first = result.failures.first {
                if !json {
                    Terminal.printErr("smelt: error: \(first)")
                    Terminal.printErr("smelt: \(result.failures.count) of \(result.chunks) chunks are bad")
                }
                throw ExitCode(2)
            }
            if !json {
                print("\(path): OK")
                print("  \(result.tensors) tensors, \(result.chunks) chunks, every checksum matches")
                print("  \(result.rawBytes) raw bytes (\(Terminal.humanBytes(result.rawBytes))) from \(result.storedBytes) stored (\(String(format: "%.3f", Double(result.storedBytes) / Double(max(1, result.rawBytes)))))")
                print("  decoded in \(String(format: "%.3f", secs)) s: \(String(format: "%.0f", rate)) MB/s")
            }
        }
    }
}

/// What `smelt inspect` adds for an Ingot file: its version and origin, stored against raw sizes,
/// and with --tensors each tensor's transform, chunks, sizes and ratio.
extension Inspect {
    func ingotJSON(_ f: IngotFile) -> JSONValue {
        var e: [(String, JSONValue)] = [
            ("version", .string("\(f.majorVersion).\(f.minorVersion)")),
            ("source_format", f.sourceFormat.map(JSONValue.string) ?? .null),
            ("file_bytes", .int(f.fileSize)), ("raw_bytes", .int(f.rawBytes)), ("stored_bytes", .int(f.storedBytes)),
            ("ratio", .double(ratio(f.storedBytes, f.rawBytes))), ("chunks", .int(f.chunkCount)),
            ("header_stored_bytes", .int(f.headerStoredSize)), ("header_raw_bytes", .int(f.headerRawSize)),
        ]
        if tensors {
            e.append(("tensors", .array(f.tensors.map { t in
                .object([
                    ("name", .string(t.name)), ("dtype", .string(t.dtype.displayName)),
                    ("transform", .string(t.layout.description)), ("chunks", .int(t.chunks.count)),
                    ("raw_bytes", .int(t.byteCount)), ("stored_bytes", .int(t.storedBytes)),
                    ("ratio", .double(ratio(t.storedBytes, t.byteCount))),
                ])
            })))
        }
        return .object(e)
    }

    func printIngot(_ f: IngotFile) {
        print("ingot:         version \(f.majorVersion).\(f.minorVersion), from \(f.sourceFormat ?? "(not recorded)"), \(f.chunkCount) chunks")
        print("  stored:      \(f.storedBytes) of \(f.rawBytes) raw bytes (\(String(format: "%.3f", ratio(f.storedBytes, f.rawBytes))))")
        print("  header:      \(f.headerStoredSize) bytes (\(f.headerRawSize) raw); file \(f.fileSize) bytes (\(Terminal.humanBytes(f.fileSize)))")
        guard tensors else { return }
        print("")
        let rows = f.tensors.map { t in
            [t.name, t.dtype.displayName, t.layout.description, String(t.chunks.count), String(t.byteCount),
             String(t.storedBytes), String(format: "%.3f", ratio(t.storedBytes, t.byteCount))]
        }
        print(Terminal.table(["name", "dtype", "transform", "chunks", "raw", "stored", "ratio"], rows, rightAligned: [3, 4, 5, 6]))
    }

    private func ratio(_ stored: Int, _ raw: Int) -> Double { raw > 0 ? Double(stored) / Double(raw) : 1 }
}
