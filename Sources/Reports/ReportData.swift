import Formats

/// A report's JSON, read by path: every figure a page shows is taken from here under its path,
/// which the page writes as the figure's `data-key` (dot-separated; array elements by index,
/// e.g. `per_chunk.3.ppl_base`).
public struct ReportData: Sendable {
    public let json: JSONValue

    public init(_ json: JSONValue) { self.json = json }

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "the report data has no value at \(path)" }
    }

    /// The value at `path` (nil when absent).
    public func value(_ path: String) -> JSONValue? {
        var v: JSONValue? = json
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let cur = v else { return nil }
            if let i = Int(part), let a = cur.arrayValue {
                v = i >= 0 && i < a.count ? a[i] : nil
            } else {
                v = cur[String(part)]
            }
        }
        return v
    }

    public func has(_ path: String) -> Bool { value(path).map { !$0.isNull } ?? false }

    public func double(_ path: String) throws -> Double {
        guard let v = value(path) else { throw Missing(path: path) }
        if v.isNull { return .nan }
        // Foundation's JSONEncoder writes non-finite values as strings (SensitivityReport does).
        switch v.stringValue {
        case "nan": return .nan
        case "inf": return .infinity
        case "-inf": return -.infinity
        default: break
        }
        guard let d = v.doubleValue else { throw Missing(path: path) }
        return d
    }

    public func string(_ path: String) throws -> String {
        guard let s = value(path)?.stringValue else { throw Missing(path: path) }
        return s
    }

    public func count(_ path: String) -> Int { value(path)?.arrayValue?.count ?? 0 }

    /// The figure at `path`, keyed by it.
    public func figure(_ path: String, digits: Int = 5, decimals: Int? = nil, suffix: String = "") throws -> Figure {
        Figure(try double(path), key: path, digits: digits, decimals: decimals, suffix: suffix)
    }

    public func cell(_ path: String, digits: Int = 5, decimals: Int? = nil) throws -> Cell {
        .figure(try figure(path, digits: digits, decimals: decimals))
    }

    public func mark(_ path: String) throws -> Chart.Mark { Chart.Mark(try double(path), key: path) }
}
