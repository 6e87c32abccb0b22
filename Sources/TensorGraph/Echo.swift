/// How error messages show input they echo (keys, tensor names, dtype names, paths, JSON): on one
/// line, with every control character escaped (`\x1b`, `\n`, `\u{202e}`), and values cut to a
/// length that fits a terminal, saying how long they were. Every error type's `description` goes
/// through these, so a corrupt file cannot write to the terminal or flood it.
public enum Echo {
    /// Values longer than this (in characters, after escaping) are cut.
    public static let valueLimit = 80
    /// Paths are cut only when absurd: the user needs to see which file.
    public static let pathLimit = 1024

    /// `text` escaped and, past `limit` characters, cut: `abc…(1234 bytes)`.
    public static func value(_ text: String, limit: Int = valueLimit) -> String {
        let escaped = escape(text)
        guard escaped.count > limit else { return escaped }
        return String(escaped.prefix(limit)) + "…(\(text.utf8.count) bytes)"
    }

    /// Parts of a message composed from input already echoed (`what`, `reason`): escaped, and
    /// cut only as a safety net.
    public static func text(_ text: String) -> String { value(text, limit: textLimit) }
    public static let textLimit = 600

    /// A file or folder path as a message shows it: escaped, cut only past `pathLimit`.
    public static func path(_ path: String) -> String { value(path, limit: pathLimit) }

    /// Raw bytes (not necessarily UTF-8): invalid sequences become U+FFFD, then as `value`.
    public static func bytes<C: Collection<UInt8>>(_ bytes: C, limit: Int = valueLimit) -> String {
        value(String(decoding: bytes, as: UTF8.self), limit: limit)
    }

    /// `text` with control and invisible formatting characters written as escapes: `\n`, `\r`,
    /// `\t`, `\xHH` for the other C0 and C1 controls and DEL, `\u{HHHH}` for bidirectional and
    /// zero-width formatting characters (which can make a message read differently than it is).
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for u in text.unicodeScalars {
            guard needsEscape(u) else {
                out.unicodeScalars.append(u)
                continue
            }
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                out += u.value < 0x100 ? "\\x" + hex(u.value, digits: 2) : "\\u{" + hex(u.value, digits: 4) + "}"
            }
        }
        return out
    }

    static func needsEscape(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0..<0x20, 0x7f..<0xa0: return true
        // Zero-width and bidirectional controls, line/paragraph separators, BOM.
        case 0x200b...0x200f, 0x2028...0x202e, 0x2060...0x2069, 0xfeff: return true
        default: return false
        }
    }

    public static func hex(_ v: UInt32, digits: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, digits - s.count)) + s
    }
}
