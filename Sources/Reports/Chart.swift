import Foundation

/// Plain SVG charts for report pages: a histogram, lines over an index (per chunk), grouped bars
/// (per layer, per role) and a scatter with an optional curve (size vs drift). Each mark that
/// stands for a value carries `data-key` / `data-value` (the JSON field and its exact value) and a
/// `<title>` (the tooltip a browser shows), so the picture can be checked against the data.
public enum Chart {
    /// A mark's value and the JSON field it comes from.
    public struct Mark: Sendable {
        public var value: Double
        public var key: String?
        public init(_ value: Double, key: String? = nil) {
            self.value = value
            self.key = key
        }
    }

    public struct Bin: Sendable {
        public var low: Double
        public var high: Double
        public var count: Mark
        public init(low: Double, high: Double, count: Mark) {
            self.low = low
            self.high = high
            self.count = count
        }
    }

    public struct Series: Sendable {
        public var name: String
        public var x: [Double]
        public var y: [Mark]
        public init(name: String, x: [Double], y: [Mark]) {
            self.name = name
            self.x = x
            self.y = y
        }
    }

    public struct LabeledPoint: Sendable {
        public var label: String
        public var x: Mark
        public var y: Mark
        public init(label: String, x: Mark, y: Mark) {
            self.label = label
            self.x = x
            self.y = y
        }
    }

    public struct BarSeries: Sendable {
        public var name: String
        public var values: [Mark]
        public init(name: String, values: [Mark]) {
            self.name = name
            self.values = values
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    static let width = 760.0, height = 320.0
    static let left = 70.0, right = 20.0, top = 28.0, bottom = 48.0

    // MARK: - Scales

    struct Scale {
        var low: Double
        var high: Double
        var log: Bool
        var from: Double
        var to: Double

        init(_ values: [Double], log: Bool, from: Double, to: Double, zero: Bool = false) {
            let finite = values.filter { $0.isFinite && (!log || $0 > 0) }
            var lo = finite.min() ?? (log ? 1 : 0), hi = finite.max() ?? (log ? 10 : 1)
            if zero && !log { lo = min(lo, 0); hi = max(hi, 0) }
            if log {
                lo = pow(10, floor(log10(lo)))
                hi = pow(10, ceil(log10(hi)))
                if hi <= lo { hi = lo * 10 }
            } else {
                if hi == lo { let pad = hi == 0 ? 1 : abs(hi) * 0.1; lo -= zero && lo == 0 ? 0 : pad; hi += pad }
                let step = Scale.niceStep((hi - lo) / 5)
                lo = floor(lo / step) * step
                hi = ceil(hi / step) * step
            }
            low = lo
            high = hi
            self.log = log
            self.from = from
            self.to = to
        }

        static func niceStep(_ raw: Double) -> Double {
            guard raw > 0, raw.isFinite else { return 1 }
            let p = pow(10, floor(log10(raw)))
            let f = raw / p
            return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p
        }

        func callAsFunction(_ v: Double) -> Double {
            let t: Double
            if log {
                let c = max(v, low)
                t = (log10(c) - log10(low)) / (log10(high) - log10(low))
            } else {
                t = (v - low) / (high - low)
            }
            return from + (to - from) * t
        }

        var ticks: [Double] {
            if log {
                let a = Int(log10(low).rounded()), b = Int(log10(high).rounded())
                let stride = max(1, (b - a + 7) / 8)
                return Swift.stride(from: a, through: b, by: stride).map { pow(10, Double($0)) }
            }
            let step = Scale.niceStep((high - low) / 5)
            var out: [Double] = []
            var v = low
            while v <= high + step * 1e-9 {
                out.append(abs(v) < step * 1e-9 ? 0 : v)
                v += step
            }
            return out
        }
    }

    static func tickLabel(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 {
            let e = Int(floor(log10(a)))
            let m = v / pow(10, Double(e))
            return abs(m - 1) < 1e-9 ? "1e\(e)" : String(format: "%.3ge%d", m, e)
        }
        return String(format: "%.6g", v)
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func markAttrs(_ m: Mark, title: String) -> (attrs: String, title: String) {
        let attrs = m.key.map { " data-key=\"\(HTML.escape($0))\" data-value=\"\(HTML.exact(m.value))\"" } ?? ""
        return (attrs, "<title>\(HTML.escape(title))</title>")
    }

    static func frame(kind: String, id: String?, _ content: String) -> String {
        let idAttr = id.map { " id=\"\(HTML.escape($0))\"" } ?? ""
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart-\(kind)\"\(idAttr) viewBox=\"0 0 \(Int(width)) \(Int(height))\" "
            + "width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">"
            + "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fff\"/>" + content + "</svg>"
    }

    /// Grid lines, tick labels and axis titles (the x ticks given, or the scale's).
    static func axes(x: Scale, y: Scale, xLabel: String, yLabel: String, xTicks: [(Double, String)]? = nil) -> String {
        var s = ""
        let x0 = left, x1 = width - right, y0 = height - bottom, y1 = top
        for t in y.ticks {
            let py = y(t)
            s += "<line x1=\"\(f(x0))\" y1=\"\(f(py))\" x2=\"\(f(x1))\" y2=\"\(f(py))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(f(x0 - 6))\" y=\"\(f(py + 4))\" text-anchor=\"end\" fill=\"#444\">\(HTML.escape(tickLabel(t)))</text>"
        }
        for (t, label) in xTicks ?? x.ticks.map({ ($0, tickLabel($0)) }) {
            let px = x(t)
            s += "<line x1=\"\(f(px))\" y1=\"\(f(y0))\" x2=\"\(f(px))\" y2=\"\(f(y0 + 4))\" stroke=\"#888\"/>"
            s += "<text x=\"\(f(px))\" y=\"\(f(y0 + 16))\" text-anchor=\"middle\" fill=\"#444\">\(HTML.escape(label))</text>"
        }
        s += "<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x1))\" y2=\"\(f(y0))\" stroke=\"#888\"/>"
        s += "<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x0))\" y2=\"\(f(y1))\" stroke=\"#888\"/>"
        s += "<text x=\"\(f((x0 + x1) / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\" fill=\"#222\">\(HTML.escape(xLabel))</text>"
        s += "<text transform=\"translate(16 \(f((y0 + y1) / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">\(HTML.escape(yLabel))</text>"
        return s
    }

    static func legend(_ names: [String]) -> String {
        guard names.count > 1 else { return "" }
        var s = ""
        var x = left + 8
        for (i, n) in names.enumerated() {
            s += "<rect x=\"\(f(x))\" y=\"8\" width=\"12\" height=\"10\" fill=\"\(palette[i % palette.count])\"/>"
            s += "<text x=\"\(f(x + 16))\" y=\"17\" fill=\"#222\">\(HTML.escape(n))</text>"
            x += 30 + Double(n.count) * 6.5
        }
        return s
    }

    // MARK: - Charts

    /// Counts over bins (on a log axis when `logX`: bins must then be positive).
    public static func histogram(_ bins: [Bin], xLabel: String, yLabel: String = "positions", logX: Bool, id: String? = nil) -> String {
        let xs = Scale(bins.flatMap { [$0.low, $0.high] }, log: logX, from: left, to: width - right)
        let ys = Scale(bins.map(\.count.value), log: false, from: height - bottom, to: top, zero: true)
        var s = axes(x: xs, y: ys, xLabel: xLabel, yLabel: yLabel)
        for b in bins {
            let px0 = xs(b.low), px1 = xs(b.high), py = ys(b.count.value), base = ys(0)
            let (attrs, title) = markAttrs(b.count, title: "\(tickLabel(b.low)) – \(tickLabel(b.high)): \(Int(b.count.value))")
            s += "<rect class=\"bar\"\(attrs) x=\"\(f(px0 + 0.5))\" y=\"\(f(min(py, base)))\" width=\"\(f(max(0.5, px1 - px0 - 1)))\" "
                + "height=\"\(f(abs(base - py)))\" fill=\"\(palette[0])\">\(title)</rect>"
        }
        return frame(kind: "histogram", id: id, s)
    }

    /// Lines over x, one per series, each value a dot (with its key) on the line.
    public static func lines(_ series: [Series], xLabel: String, yLabel: String, logY: Bool = false, id: String? = nil) -> String {
        let xs = Scale(series.flatMap(\.x), log: false, from: left, to: width - right)
        let ys = Scale(series.flatMap { $0.y.map(\.value) }, log: logY, from: height - bottom, to: top)
        var s = axes(x: xs, y: ys, xLabel: xLabel, yLabel: yLabel) + legend(series.map(\.name))
        for (i, se) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = zip(se.x, se.y).filter { $0.1.value.isFinite }.map { "\(f(xs($0.0))),\(f(ys($0.1.value)))" }
            s += "<polyline class=\"line\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(pts.joined(separator: " "))\"/>"
            for (x, y) in zip(se.x, se.y) where y.value.isFinite {
                let (attrs, title) = markAttrs(y, title: "\(se.name) at \(tickLabel(x)): \(Figure.significant(y.value, 5))")
                s += "<circle class=\"dot\"\(attrs) cx=\"\(f(xs(x)))\" cy=\"\(f(ys(y.value)))\" r=\"2.5\" fill=\"\(color)\">\(title)</circle>"
            }
        }
        return frame(kind: "lines", id: id, s)
    }

    /// Bars per category, the series side by side (labels thinned out when there are many).
    public static func bars(categories: [String], _ series: [BarSeries], yLabel: String, xLabel: String = "", id: String? = nil) -> String {
        let n = max(1, categories.count)
        let slot = (width - right - left) / Double(n)
        let xScale = Scale(low: 0, high: Double(n), from: left, to: width - right)
        let ys = Scale(series.flatMap { $0.values.map(\.value) }, log: false, from: height - bottom, to: top, zero: true)
        let every = max(1, Int((Double(n) * 40 / (width - left - right)).rounded(.up)))
        let ticks = categories.enumerated().filter { $0.offset % every == 0 }.map { (Double($0.offset) + 0.5, $0.element) }
        var s = axes(x: xScale, y: ys, xLabel: xLabel, yLabel: yLabel, xTicks: ticks) + legend(series.map(\.name))
        let w = slot * 0.8 / Double(max(1, series.count))
        for (si, se) in series.enumerated() {
            for (ci, m) in se.values.enumerated() where ci < n && m.value.isFinite {
                let px = left + slot * Double(ci) + slot * 0.1 + w * Double(si)
                let py = ys(m.value), base = ys(0)
                let (attrs, title) = markAttrs(m, title: "\(categories[ci]) — \(se.name): \(Figure.significant(m.value, 5))")
                s += "<rect class=\"bar\"\(attrs) x=\"\(f(px))\" y=\"\(f(min(py, base)))\" width=\"\(f(max(0.5, w - 0.5)))\" "
                    + "height=\"\(f(abs(base - py)))\" fill=\"\(palette[si % palette.count])\">\(title)</rect>"
            }
        }
        return frame(kind: "bars", id: id, s)
    }

    /// A curve (a line through its points, in x order) and labelled points over it. On a log
    /// y axis, zeros are drawn on the axis' floor.
    public static func scatter(curve: Series?, points: [LabeledPoint], xLabel: String, yLabel: String, logY: Bool = false,
                               id: String? = nil) -> String {
        let allX = (curve?.x ?? []) + points.map(\.x.value)
        let allY = (curve?.y.map(\.value) ?? []) + points.map(\.y.value)
        let xs = Scale(allX, log: false, from: left, to: width - right)
        let ys = Scale(allY, log: logY, from: height - bottom, to: top)
        var s = axes(x: xs, y: ys, xLabel: xLabel, yLabel: yLabel)
        var names: [String] = []
        if let curve {
            names.append(curve.name)
            let pairs = zip(curve.x, curve.y).filter { $0.1.value.isFinite && (!logY || $0.1.value >= 0) }.sorted { $0.0 < $1.0 }
            s += "<polyline class=\"line\" fill=\"none\" stroke=\"\(palette[0])\" stroke-width=\"1.5\" points=\""
                + pairs.map { "\(f(xs($0.0))),\(f(ys($0.1.value)))" }.joined(separator: " ") + "\"/>"
            for (x, y) in pairs {
                let (attrs, title) = markAttrs(y, title: "\(curve.name): \(tickLabel(x)), \(Figure.significant(y.value, 4))")
                s += "<circle class=\"dot\"\(attrs) cx=\"\(f(xs(x)))\" cy=\"\(f(ys(y.value)))\" r=\"2\" fill=\"\(palette[0])\">\(title)</circle>"
            }
        }
        if !points.isEmpty { names.append("llama.cpp file types") }
        // Labels: points at the same spot share one label; a label that would overlap one already
        // placed moves down a line at a time.
        let drawn = points.filter { $0.x.value.isFinite && $0.y.value.isFinite && (!logY || $0.y.value >= 0) }
        var labelFor: [Int: String] = [:]
        var spots: [(x: Double, y: Double, first: Int)] = []
        for (i, p) in drawn.enumerated() {
            let px = xs(p.x.value), py = ys(p.y.value)
            if let j = spots.firstIndex(where: { abs($0.x - px) < 0.5 && abs($0.y - py) < 0.5 }) {
                labelFor[spots[j].first, default: ""] += ", " + p.label
            } else {
                spots.append((px, py, i))
                labelFor[i] = p.label
            }
        }
        var placed: [(x0: Double, x1: Double, y: Double)] = []
        for (i, p) in drawn.enumerated() {
            let px = xs(p.x.value), py = ys(p.y.value)
            let (yAttrs, title) = markAttrs(p.y, title: "\(p.label): \(Figure.significant(p.x.value, 4)) bits per weight, \(Figure.significant(p.y.value, 4))")
            let xAttrs = p.x.key.map { " data-x-key=\"\(HTML.escape($0))\" data-x-value=\"\(HTML.exact(p.x.value))\"" } ?? ""
            var label = ""
            if let text = labelFor[i] {
                let w = Double(text.count) * 6.2
                func free(_ x: Double, _ y: Double) -> Bool {
                    x >= left && x + w <= width - right && y - 9 >= top - 20 && y <= height - bottom
                        && !placed.contains { abs($0.y - y) < 11 && $0.x0 < x + w && x < $0.x1 }
                }
                // Right or left of the point, above or below it; else further down with a leader line.
                let spotsNear = [(px + 6, py - 5), (px - 6 - w, py - 5), (px + 6, py + 13), (px - 6 - w, py + 13)]
                var chosen = spotsNear.first { free($0.0, $0.1) }
                var leader = false
                if chosen == nil {
                    var ly = py + 24
                    let lx = px + 6 + w > width - right ? px - 6 - w : px + 6
                    while ly < height - bottom && !free(lx, ly) { ly += 11 }
                    chosen = (lx, min(ly, height - bottom))
                    leader = true
                }
                let (lx, ly) = chosen!
                placed.append((lx, lx + w, ly))
                if leader {
                    let ex = lx > px ? lx - 1 : lx + w + 1
                    label += "<line x1=\"\(f(px))\" y1=\"\(f(py))\" x2=\"\(f(ex))\" y2=\"\(f(ly - 4))\" stroke=\"#aaa\" stroke-width=\"0.8\"/>"
                }
                label += "<text x=\"\(f(lx))\" y=\"\(f(ly))\" fill=\"#222\">\(HTML.escape(text))</text>"
            }
            s += "<g class=\"point\" data-label=\"\(HTML.escape(p.label))\"\(yAttrs)\(xAttrs)>"
                + "<path d=\"M\(f(px - 4)),\(f(py)) L\(f(px)),\(f(py - 4)) L\(f(px + 4)),\(f(py)) L\(f(px)),\(f(py + 4)) Z\" fill=\"\(palette[1])\"/>"
                + label + title + "</g>"
        }
        return frame(kind: "scatter", id: id, s + legend(names))
    }
}

extension Chart.Scale {
    /// A linear scale over exactly [low, high] (no rounding to nice steps).
    init(low: Double, high: Double, from: Double, to: Double) {
        self.low = low
        self.high = high
        self.log = false
        self.from = from
        self.to = to
    }
}
