/// GPT-2's reversible byte ↔ character mapping used by byte-level BPE vocabularies: printable
/// Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves, the other 68 bytes map in
/// increasing order to U+0100, U+0101, … (so a space is `Ġ`, a newline `Ċ`).
public enum ByteLevel {
    /// The character each byte stands for, by byte value.
    public static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable(UInt8(b)) {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The UTF-8 encoding of each byte's character (1 or 2 bytes), by byte value.
    static let utf8: [[UInt8]] = characters.map { Array(String(Character($0)).utf8) }

    /// Bytes whose character is themselves.
    static func isPrintable(_ b: UInt8) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The byte a character stands for, or nil for a character outside the mapping.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        if v < 256 { return isPrintable(UInt8(v)) ? UInt8(v) : nil }
        if v < 256 + 68 { return reverseHigh[Int(v - 256)] }
        return nil
    }

    private static let reverseHigh: [UInt8] = (0..<256).compactMap { b in isPrintable(UInt8(b)) ? nil : UInt8(b) }

    /// The text of raw bytes in the mapping (what a vocabulary entry for those bytes looks like).
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(characters[Int(b)]) }
        return String(s)
    }

    /// The bytes a vocabulary entry stands for; characters outside the mapping are kept as their
    /// own UTF-8 bytes.
    public static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars {
            if let b = byte(for: u) { out.append(b) } else { out.append(contentsOf: String(Character(u)).utf8) }
        }
        return out
    }
}
