import Foundation

/// Text made safe for HTML element content and for double-quoted attribute values.
public enum HTML {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters (but tab and newline) have no place in a page: shown as U+FFFD.
                if ch.value < 0x20 && ch != "\n" && ch != "\t" || ch.value == 0x7f {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        return out
    }

    /// A value's exact text for `data-value` (the shortest text that reads back the same double,
    /// as the JSON beside the page writes it); non-finite values are `null`, as in that JSON.
    public static func exact(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }
}

/// A number as the page shows it: the formatted text, and the exact value and the key of the
/// JSON field it comes from as `data-value` / `data-key`, so a test (or a reader's tooling) can
/// check the page against the JSON.
public struct Figure: Sendable {
    public let value: Double
    public let key: String?
    public let text: String

    /// `digits` significant digits (`%.Ng`), or a fixed `decimals`.
    public init(_ value: Double, key: String?, digits: Int = 5, decimals: Int? = nil, suffix: String = "") {
        self.value = value
        self.key = key
        if !value.isFinite {
            text = "–"
        } else if let decimals {
            text = String(format: "%.\(decimals)f", value) + suffix
        } else {
            text = Figure.significant(value, digits) + suffix
        }
    }

    public init(int value: Int, key: String?) {
        self.value = Double(value)
        self.key = key
        text = String(value)
    }

    static func significant(_ v: Double, _ digits: Int) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e-4 && a < 1e7 {
            let decimals = max(0, digits - 1 - Int(floor(log10(a))))
            return String(format: "%.\(decimals)f", v)
        }
        return String(format: "%.\(max(0, digits - 1))e", v)
    }

    public var html: String {
        var attrs = "class=\"num\""
        if let key { attrs += " data-key=\"\(HTML.escape(key))\" data-value=\"\(HTML.exact(value))\"" }
        return "<span \(attrs)>\(HTML.escape(text))</span>"
    }
}

/// A table cell: text (escaped) or a figure.
public enum Cell: Sendable {
    case text(String)
    case figure(Figure)
    /// Markup made by this module (a badge), inserted as it is.
    case markup(String)

    var html: String {
        switch self {
        case let .text(s): return HTML.escape(s)
        case let .figure(f): return f.html
        case let .markup(m): return m
        }
    }
    var numeric: Bool { if case .figure = self { return true } else { return false } }
}

/// One self-contained page: inline CSS, inline SVG, no script, no request to anywhere (a
/// Content-Security-Policy that forbids every fetch says so to the browser too). Built section by
/// section; `html` is the finished document.
public struct HTMLPage: Sendable {
    public let title: String
    private var body: [String] = []

    public init(title: String) { self.title = title }

    public mutating func heading(_ text: String, level: Int = 2, id: String? = nil) {
        let l = min(6, max(1, level))
        let idAttr = id.map { " id=\"\(HTML.escape($0))\"" } ?? ""
        body.append("<h\(l)\(idAttr)>\(HTML.escape(text))</h\(l)>")
    }

    public mutating func paragraph(_ text: String, note: Bool = false) {
        body.append(note ? "<p class=\"note\">\(HTML.escape(text))</p>" : "<p>\(HTML.escape(text))</p>")
    }

    /// A paragraph of text pieces and figures, in order.
    public mutating func sentence(_ cells: [Cell]) {
        body.append("<p>" + cells.map(\.html).joined() + "</p>")
    }

    /// A definition list of labelled figures (the summary).
    public mutating func facts(_ rows: [(label: String, value: Cell)], id: String? = nil) {
        let idAttr = id.map { " id=\"\(HTML.escape($0))\"" } ?? ""
        var s = "<dl class=\"facts\"\(idAttr)>"
        for r in rows { s += "<dt>\(HTML.escape(r.label))</dt><dd>\(r.value.html)</dd>" }
        body.append(s + "</dl>")
    }

    public mutating func table(headers: [String], rows: [[Cell]], id: String? = nil, collapsed: String? = nil) {
        let idAttr = id.map { " id=\"\(HTML.escape($0))\"" } ?? ""
        var s = "<table\(idAttr)><thead><tr>" + headers.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for r in rows {
            s += "<tr>" + r.map { "<td\($0.numeric ? " class=\"r\"" : "")>\($0.html)</td>" }.joined() + "</tr>"
        }
        s += "</tbody></table>"
        if let collapsed { s = "<details><summary>\(HTML.escape(collapsed))</summary>\(s)</details>" }
        body.append(s)
    }

    /// A chart (SVG made by `Chart`) with a caption.
    public mutating func chart(_ svg: String, caption: String, id: String? = nil) {
        let idAttr = id.map { " id=\"\(HTML.escape($0))\"" } ?? ""
        body.append("<figure class=\"chart\"\(idAttr)>\(svg)<figcaption>\(HTML.escape(caption))</figcaption></figure>")
    }

    /// A pass/fail badge for a gate.
    public static func badge(passed: Bool) -> Cell {
        .markup(passed ? "<span class=\"pass\" data-passed=\"true\">PASS</span>" : "<span class=\"fail\" data-passed=\"false\">FAIL</span>")
    }

    public var html: String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(title))</title>
        <style>\(Self.css)</style>
        </head>
        <body>
        <h1>\(HTML.escape(title))</h1>
        \(body.joined(separator: "\n"))
        </body>
        </html>

        """
    }

    static let css = """
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;background:#fff;line-height:1.4}\
        h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}\
        table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left}\
        td.r{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}\
        dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1.2em}dt{color:#555}dd{margin:0;font-variant-numeric:tabular-nums}\
        .pass{background:#2e7d32;color:#fff;padding:0 .4em;border-radius:3px;font-weight:bold}\
        .fail{background:#c62828;color:#fff;padding:0 .4em;border-radius:3px;font-weight:bold}\
        figure.chart{margin:1em 0}figcaption{font-size:.85em;color:#555}\
        svg{font-family:inherit;font-size:11px;max-width:100%;height:auto}.note{color:#666;font-size:.9em}\
        code{background:#f4f4f4;padding:0 .2em}
        """
}
