import Foundation

/// Terminal output helpers: human sizes, aligned tables, a progress bar on stderr when it is a TTY.
enum Terminal {
    static let stderrIsTTY = isatty(2) == 1
    nonisolated(unsafe) private static var progressShown = false

    static func humanBytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[u])
    }

    static func humanCount(_ n: Int) -> String {
        if n >= 1_000_000_000 { return String(format: "%.2fB", Double(n) / 1e9) }
        if n >= 1_000_000 { return String(format: "%.2fM", Double(n) / 1e6) }
        if n >= 1_000 { return String(format: "%.1fK", Double(n) / 1e3) }
        return "\(n)"
    }

    /// Rows as aligned columns; `rightAligned` marks numeric columns.
    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ r: [String]) -> String {
            r.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    static func printErr(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    /// A progress reporter for `total` units of work, drawn at most ~10 times a second.
    final class Progress: @unchecked Sendable {
        let label: String
        let total: Int
        private var done = 0
        private let start = Date()
        private var lastDraw = Date.distantPast
        private let lock = NSLock()

        init(label: String, total: Int) {
            self.label = label
            self.total = total
        }

        func advance(_ n: Int) {
            lock.lock()
            defer { lock.unlock() }
            done += n
            guard Terminal.stderrIsTTY else { return }
            let now = Date()
            if now.timeIntervalSince(lastDraw) < 0.1 && done < total { return }
            lastDraw = now
            draw(now)
        }

        private func draw(_ now: Date) {
            let frac = total > 0 ? min(1, Double(done) / Double(total)) : 1
            let width = 30
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let secs = now.timeIntervalSince(start)
            let rate = secs > 0 ? Double(done) / secs : 0
            let eta = rate > 0 ? Double(total - done) / rate : 0
            let line = String(
                format: "\r%@ %@ %3.0f%% %@/%@ %.0f MB/s eta %.0fs ", label, bar, frac * 100,
                Terminal.humanBytes(done), Terminal.humanBytes(total), rate / 1e6, eta)
            FileHandle.standardError.write(Data(line.utf8))
            Terminal.progressShown = true
        }

        func finish() {
            lock.lock()
            defer { lock.unlock() }
            Terminal.clearProgress()
        }
    }

    static let stdoutIsTTY = isatty(1) == 1

    /// A progress bar for chunked evaluation: chunks done, tokens/s, time left (TTY only).
    final class ChunkProgress: @unchecked Sendable {
        let label: String
        private let start = Date()
        init(label: String) { self.label = label }

        func update(done: Int, total: Int, tokensPerSecond: Double) {
            guard Terminal.stderrIsTTY else { return }
            let frac = total > 0 ? Double(done) / Double(total) : 1
            let width = 30
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let elapsed = Date().timeIntervalSince(start)
            let left = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            let line = String(format: "\r%@ %@ %d/%d chunks  %.0f tokens/s  %.0fs left ", label, bar, done, total, tokensPerSecond, left)
            FileHandle.standardError.write(Data(line.utf8))
            Terminal.progressShown = true
        }

        func finish() { Terminal.clearProgress() }
    }

    static func clearProgress() {
        if progressShown {
            FileHandle.standardError.write(Data("\r\u{1b}[K".utf8))
            progressShown = false
        }
    }
}

/// Parses sizes such as `500MB`, `2GB`, `1.5GiB`, `4096`.
func parseSize(_ text: String) -> Int? {
    let t = text.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [(String, Double)] = [
        ("KIB", 1024), ("MIB", 1_048_576), ("GIB", 1_073_741_824), ("TIB", 1_099_511_627_776),
        ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("K", 1e3), ("M", 1e6), ("G", 1e9), ("B", 1),
    ]
    for (suffix, mult) in units where t.hasSuffix(suffix) {
        guard let v = Double(t.dropLast(suffix.count)), v > 0 else { return nil }
        return Int(v * mult)
    }
    guard let v = Int(t), v > 0 else { return nil }
    return v
}
