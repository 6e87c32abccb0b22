import TensorGraph

/// A strict JSON parser (RFC 8259) that keeps object keys in order and rejects duplicate keys, as
/// a model header must. Works on raw bytes; invalid UTF-8 is an error.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// Numbers keep their text so integers of any size survive; see `intValue` / `doubleValue`.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case let .object(entries) = self { return entries.first { $0.0 == key }?.1 }
        return nil
    }

    public var objectEntries: [(String, JSONValue)]? {
        if case let .object(e) = self { return e }
        return nil
    }
    public var arrayValue: [JSONValue]? {
        if case let .array(a) = self { return a }
        return nil
    }
    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }
    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }
    /// The number as an exact integer (no fraction or exponent), when it fits in `Int`.
    public var intValue: Int? {
        if case let .number(s) = self { return Int(s) }
        return nil
    }
    public var doubleValue: Double? {
        if case let .number(s) = self { return Double(s) }
        return nil
    }
    public var isNull: Bool { self == .null }
}

/// Where and why JSON text was rejected.
public struct JSONError: Error, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    /// Set when the text repeats a key inside one object.
    public var duplicateKey: String? = nil
    public var description: String { "invalid JSON at byte \(offset): \(Echo.text(reason))" }
}

public struct JSONParser {
    /// Nesting beyond this is refused (hostile input must not exhaust the stack).
    public static let maxDepth = 128

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        var p = JSONParser(bytes: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.pos == bytes.count else { throw p.fail("unexpected text after the end of the value") }
        return v
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        let r = bytes.withUnsafeBytes { b in Result { () throws(JSONError) in try parse(b) } }
        return try r.get()
    }

    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func fail(_ reason: String) -> JSONError { JSONError(offset: pos, reason: reason) }

    private var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipSpace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0a, 0x0d: pos += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: String, _ v: JSONValue) throws(JSONError) -> JSONValue {
        let lit = Array(literal.utf8)
        let n = lit.count
        guard pos + n <= bytes.count else { throw fail("unexpected end of text") }
        for i in 0..<n where bytes[pos + i] != lit[i] { throw fail("invalid literal") }
        pos += n
        return v
    }

    private mutating func value(depth: Int) throws(JSONError) -> JSONValue {
        guard depth < JSONParser.maxDepth else { throw fail("nesting deeper than \(JSONParser.maxDepth)") }
        guard let c = peek else { throw fail("unexpected end of text") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default:
            let shown = c >= 0x20 && c < 0x7f ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(Echo.hex(UInt32(c), digits: 2))"
            throw fail("unexpected character \(shown)")
        }
    }

    private mutating func object(depth: Int) throws(JSONError) -> JSONValue {
        pos += 1
        var entries: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipSpace()
        if peek == UInt8(ascii: "}") { pos += 1; return .object(entries) }
        while true {
            skipSpace()
            guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyStart = pos
            let key = try string()
            guard seen.insert(key).inserted else {
                throw JSONError(offset: keyStart, reason: "duplicate key \"\(Echo.value(key))\"", duplicateKey: key)
            }
            skipSpace()
            guard peek == UInt8(ascii: ":") else { throw fail("expected ':'") }
            pos += 1
            skipSpace()
            entries.append((key, try value(depth: depth + 1)))
            skipSpace()
            switch peek {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1; return .object(entries)
            default: throw fail("expected ',' or '}'")
            }
        }
    }

    private mutating func array(depth: Int) throws(JSONError) -> JSONValue {
        pos += 1
        var items: [JSONValue] = []
        skipSpace()
        if peek == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            switch peek {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "]"): pos += 1; return .array(items)
            default: throw fail("expected ',' or ']'")
            }
        }
    }

    private mutating func number() throws(JSONError) -> JSONValue {
        let start = pos
        if peek == UInt8(ascii: "-") { pos += 1 }
        func digits(_ p: inout JSONParser) -> Int {
            var n = 0
            while let c = p.peek, c >= 0x30, c <= 0x39 { p.pos += 1; n += 1 }
            return n
        }
        if peek == UInt8(ascii: "0") { pos += 1 } else if digits(&self) == 0 { throw fail("invalid number") }
        if peek == UInt8(ascii: ".") {
            pos += 1
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            guard digits(&self) > 0 else { throw fail("invalid number") }
        }
        return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self))
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private mutating func string() throws(JSONError) -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<pos])
                guard let s = String(validating: raw, as: UTF8.self) else {
                    throw JSONError(offset: start, reason: "string is not valid UTF-8")
                }
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in string") }
            pos += 1
        }
        var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<pos]))
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            pos += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw JSONError(offset: start, reason: "string is not valid UTF-8")
                }
                return s
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw fail("unterminated string") }
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5c)
                case UInt8(ascii: "/"): out.append(0x2f)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
                        else { throw fail("unpaired surrogate") }
                        pos += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("unpaired surrogate")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default: throw fail("invalid escape")
                }
            default:
                if c < 0x20 { throw fail("control character in string") }
                out.append(c)
            }
        }
    }
}

/// JSON text output with stable formatting.
public enum JSONWriter {
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// Serialises a value; `indent` > 0 pretty-prints.
    public static func write(_ v: JSONValue, indent: Int = 0) -> String {
        var out = ""
        emit(v, indent: indent, level: 0, into: &out)
        return out
    }

    private static func emit(_ v: JSONValue, indent: Int, level: Int, into out: inout String) {
        let nl = indent > 0 ? "\n" : ""
        let pad = { (l: Int) in String(repeating: " ", count: indent * l) }
        let sep = indent > 0 ? ": " : ":"
        switch v {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(s): out += s
        case let .string(s): out += quote(s)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "[" + nl
            for (i, item) in items.enumerated() {
                out += pad(level + 1)
                emit(item, indent: indent, level: level + 1, into: &out)
                out += (i + 1 < items.count ? "," : "") + nl
            }
            out += pad(level) + "]"
        case let .object(entries):
            if entries.isEmpty { out += "{}"; return }
            out += "{" + nl
            for (i, (k, item)) in entries.enumerated() {
                out += pad(level + 1) + quote(k) + sep
                emit(item, indent: indent, level: level + 1, into: &out)
                out += (i + 1 < entries.count ? "," : "") + nl
            }
            out += pad(level) + "}"
        }
    }
}

extension JSONValue {
    public static func int(_ v: Int) -> JSONValue { .number(String(v)) }
    /// A double as JSON (Swift prints the shortest text that reads back the same); non-finite → null.
    public static func double(_ v: Double) -> JSONValue { v.isFinite ? .number("\(v)") : .null }
}

extension Echo {
    /// A JSON value as an error message shows it: compact JSON text, escaped and cut as `value`.
    public static func json(_ v: JSONValue, limit: Int = valueLimit) -> String {
        value(JSONWriter.write(v), limit: limit)
    }
}
