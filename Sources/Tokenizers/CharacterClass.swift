/// The character classes the pre-tokenizer patterns use, per Unicode scalar: `\p{L}` (general
/// category L*, and which of Lu/Lt, Ll, Lm/Lo), `\p{M}`, `\p{N}` (Nd, Nl, No), `\p{P}` (P*) and `\s`. `\s` is Unicode's White_Space set
/// (the 25 scalars llama.cpp's `unicode_set_whitespace` and Oniguruma's `\s` both use), fixed
/// here rather than read from the running Swift's tables. Categories are Swift's, as of Unicode
/// 15.1: scalars assigned later count as unassigned, so that the classes stay those of
/// llama.cpp's generated tables (identical for all 1,114,112 code points when checked against
/// its `unicode-data.cpp`) whatever Unicode version the Swift runtime has.
struct CharacterClass: OptionSet, Sendable {
    let rawValue: UInt8
    static let letter = CharacterClass(rawValue: 1)
    static let number = CharacterClass(rawValue: 2)
    static let whitespace = CharacterClass(rawValue: 4)
    static let punctuation = CharacterClass(rawValue: 8)
    /// Letter subcategories and marks, for patterns that tell cases apart (o200k): Lu and Lt,
    /// Ll, Lm and Lo, and M (Mn, Mc, Me; not part of `.letter`).
    static let upperOrTitle = CharacterClass(rawValue: 16)
    static let lowercase = CharacterClass(rawValue: 32)
    static let modifierOrOther = CharacterClass(rawValue: 64)
    static let mark = CharacterClass(rawValue: 128)

    /// Classes of the Basic Multilingual Plane, computed once; other planes are looked up.
    private static let bmp: [CharacterClass] = (0..<0x10000).map { compute(UInt32($0)) }

    @inline(__always)
    static func of(_ v: UInt32) -> CharacterClass {
        v < 0x10000 ? bmp.withUnsafeBufferPointer { $0[Int(v)] } : compute(v)
    }

    /// The Unicode version whose assignments count.
    static let unicodeVersion = (15, 1)

    static let whitespaceScalars: Set<UInt32> = [
        0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680,
        0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A,
        0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
    ]

    static func compute(_ v: UInt32) -> CharacterClass {
        guard let scalar = Unicode.Scalar(v) else { return [] }  // surrogates: Cs
        guard let age = scalar.properties.age, (age.major, age.minor) <= unicodeVersion else { return [] }
        var c: CharacterClass = whitespaceScalars.contains(v) ? .whitespace : []
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .titlecaseLetter:
            c.formUnion([.letter, .upperOrTitle])
        case .lowercaseLetter:
            c.formUnion([.letter, .lowercase])
        case .modifierLetter, .otherLetter:
            c.formUnion([.letter, .modifierOrOther])
        case .nonspacingMark, .spacingMark, .enclosingMark:
            c.insert(.mark)
        case .decimalNumber, .letterNumber, .otherNumber:
            c.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            c.insert(.punctuation)
        default:
            break
        }
        return c
    }
}
