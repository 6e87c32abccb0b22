import Foundation
import Formats
import TensorGraph
import TestSupport
import XCTest

/// Builds GGUF files byte by byte for the tests (little-endian, no validation: hostile files are
/// the point).
struct GGUFBytes {
    var bytes: [UInt8] = []

    mutating func raw(_ b: [UInt8]) { bytes += b }
    mutating func int<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u8(_ v: UInt8) { int(v) }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    mutating func string(_ s: String) { stringBytes(Array(s.utf8)) }
    mutating func stringBytes(_ b: [UInt8]) {
        u64(UInt64(b.count))
        bytes += b
    }

    /// Magic, version and the two counts.
    mutating func header(version: UInt32 = 3, tensors: UInt64, keys: UInt64) {
        raw(Array("GGUF".utf8))
        u32(version)
        u64(tensors)
        u64(keys)
    }

    /// A key with a scalar uint32 value.
    mutating func kvU32(_ key: String, _ v: UInt32) {
        string(key)
        u32(MetadataType.uint32.rawValue)
        u32(v)
    }

    mutating func kvString(_ key: String, _ v: String) {
        string(key)
        u32(MetadataType.string.rawValue)
        string(v)
    }

    /// A tensor info; `ne` innermost first, as stored.
    mutating func tensorInfo(_ name: String, ne: [UInt64], type: UInt32 = 0, offset: UInt64 = 0, nDims: UInt32? = nil) {
        string(name)
        u32(nDims ?? UInt32(ne.count))
        for d in ne { u64(d) }
        u32(type)
        u64(offset)
    }

    mutating func pad(to alignment: Int = 32) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    mutating func zeros(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }
}

/// Comparisons between what Smelt reads and golden/check_gguf.py's description of a file.
enum GGUFJSON {
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(bytes.count * 2)
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 15)])
        }
        return s
    }

    static func bits<T: FixedWidthInteger>(_ v: T) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: MemoryLayout<T>.size * 2 - s.count) + s
    }

    /// A value as check_gguf.py writes it: `{"type": T, "value": V}` or the array form.
    static func typed(_ v: MetadataValue) -> JSONValue {
        if case let .array(t, values) = v {
            return .object([
                ("type", .string("array")), ("element_type", .string(t.name)), ("values", .array(values.map(bare))),
            ])
        }
        return .object([("type", .string(v.type.name)), ("value", bare(v))])
    }

    /// An array element: scalars bare, arrays typed.
    static func bare(_ v: MetadataValue) -> JSONValue {
        switch v {
        case let .uint8(x): .number(String(x))
        case let .int8(x): .number(String(x))
        case let .uint16(x): .number(String(x))
        case let .int16(x): .number(String(x))
        case let .uint32(x): .number(String(x))
        case let .int32(x): .number(String(x))
        case let .uint64(x): .number(String(x))
        case let .int64(x): .number(String(x))
        case let .float32(x): .string(bits(x.bitPattern))
        case let .float64(x): .string(bits(x.bitPattern))
        case let .bool(x): .bool(x)
        case let .string(s): .string(s)
        case .array: typed(v)
        }
    }

    /// Metadata in check_gguf.py's form: `[{"key": k, "value": typed}]`.
    static func metadata(_ m: Metadata) -> JSONValue {
        .array(m.entries.map { .object([("key", .string($0.key)), ("value", typed($0.value))]) })
    }

    /// The differences between two JSON values (objects as unordered maps; strings compared by
    /// their UTF-8 bytes, so canonically equivalent but different strings differ).
    static func differences(_ a: JSONValue, _ b: JSONValue, at path: String = "$", limit: Int = 20) -> [String] {
        var out: [String] = []
        diff(a, b, path, &out, limit)
        return out
    }

    private static func diff(_ a: JSONValue, _ b: JSONValue, _ path: String, _ out: inout [String], _ limit: Int) {
        guard out.count < limit else { return }
        switch (a, b) {
        case let (.object(x), .object(y)):
            let kx = Set(x.map(\.0)), ky = Set(y.map(\.0))
            for k in kx.symmetricDifference(ky).sorted() { out.append("\(path).\(k): only on one side") }
            for (k, v) in x where ky.contains(k) { diff(v, b[k]!, "\(path).\(k)", &out, limit) }
        case let (.array(x), .array(y)):
            if x.count != y.count { out.append("\(path): \(x.count) items vs \(y.count)") }
            for (i, (p, q)) in zip(x, y).enumerated() { diff(p, q, "\(path)[\(i)]", &out, limit) }
        case let (.string(x), .string(y)):
            if Array(x.utf8) != Array(y.utf8) { out.append("\(path): \"\(x.prefix(60))\" vs \"\(y.prefix(60))\"") }
        default:
            if a != b { out.append("\(path): \(a) vs \(b)") }
        }
    }

    static func load(_ path: String) throws -> JSONValue {
        let file = try ReadableFile(path: path)
        return try JSONParser.parse(try file.readBytes(at: 0, count: file.size))
    }

    /// Runs `check_gguf.py dump` on a file and parses the description.
    static func pythonDump(_ path: String, hexLimit: Int = 1 << 16) throws -> JSONValue {
        let r = try TestSupport.python(["golden/check_gguf.py", "dump", path, "--hex-limit", String(hexLimit)])
        // gguf-py missing or failing is a failure: interop tests must not pass by not running.
        guard r.status == 0 else {
            throw TestSupport.MissingInput(message: "golden/check_gguf.py dump \(path) failed (exit \(r.status)); gguf-py is needed (make pydeps): \(r.stderr)")
        }
        return try JSONParser.parse(r.stdout)
    }

    /// Asserts a parsed file matches a description: version, alignment, data offset, metadata
    /// (order, types, values), and every tensor's name, type, shape, data offset, size and bytes
    /// (when the description has them in hex).
    static func assertMatches(
        _ f: GGUFFile, _ expected: JSONValue, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        XCTAssertEqual(expected["version"]?.intValue, Int(f.version), "version", file: file, line: line)
        XCTAssertEqual(expected["alignment"]?.intValue, f.alignment, "alignment", file: file, line: line)
        XCTAssertEqual(expected["data_offset"]?.intValue, f.dataOffset, "data offset", file: file, line: line)
        let md = differences(metadata(f.metadata), expected["metadata"]!, at: "metadata")
        XCTAssertEqual(md, [], "metadata differs", file: file, line: line)
        let tensors = expected["tensors"]!.arrayValue!
        XCTAssertEqual(f.tensors.count, tensors.count, "tensor count", file: file, line: line)
        for (t, e) in zip(f.tensors, tensors) {
            let info = f.tensorInfos.first { $0.name == t.name }!
            XCTAssertEqual(t.name, e["name"]?.stringValue, file: file, line: line)
            XCTAssertEqual(Int(info.ggmlType), e["ggml_type"]?.intValue, t.name, file: file, line: line)
            XCTAssertEqual(t.dtype.displayName, e["type"]?.stringValue, t.name, file: file, line: line)
            XCTAssertEqual(t.shape, e["shape"]?.arrayValue?.compactMap(\.intValue), t.name, file: file, line: line)
            XCTAssertEqual(info.ne.map { Int($0) }, e["ne"]?.arrayValue?.compactMap(\.intValue), t.name, file: file, line: line)
            XCTAssertEqual((t.storage as? FileRegion)?.offset, e["data_offset"]?.intValue, t.name, file: file, line: line)
            XCTAssertEqual(t.byteCount, e["nbytes"]?.intValue, t.name, file: file, line: line)
            if let h = e["hex"]?.stringValue {
                XCTAssertEqual(hex(try t.storage.readAll()), h, t.name, file: file, line: line)
            }
        }
    }

    /// Asserts two graphs hold the same metadata (types and values, in order) and tensors (names,
    /// dtypes, shapes and bytes, compared chunk by chunk).
    static func assertSameContent(
        _ a: TensorGraph, _ b: TensorGraph, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        XCTAssertEqual(differences(metadata(a.metadata), metadata(b.metadata)), [], "metadata", file: file, line: line)
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), file: file, line: line)
        for (x, y) in zip(a.tensors, b.tensors) {
            XCTAssertEqual(x.dtype, y.dtype, x.name, file: file, line: line)
            XCTAssertEqual(x.shape, y.shape, x.name, file: file, line: line)
            XCTAssertTrue(try sameBytes(x.storage, y.storage), "bytes of \(x.name) differ", file: file, line: line)
        }
    }

    static func sameBytes(_ a: any TensorStorage, _ b: any TensorStorage) throws -> Bool {
        guard a.byteCount == b.byteCount else { return false }
        let chunk = 1 << 20
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        let q = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { p.deallocate(); q.deallocate() }
        var offset = 0
        while offset < a.byteCount {
            let n = min(chunk, a.byteCount - offset)
            try a.read(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: p[0..<n]))
            try b.read(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: q[0..<n]))
            if memcmp(p.baseAddress!, q.baseAddress!, n) != 0 { return false }
            offset += n
        }
        return true
    }

    static func fileBytes(_ path: String) throws -> [UInt8] {
        let f = try ReadableFile(path: path)
        return try f.readBytes(at: 0, count: f.size)
    }
}
