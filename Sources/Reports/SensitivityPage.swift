import Foundation
import Formats

/// The page of `smelt sensitivity --report`: drawn from a sensitivity file's JSON
/// (`formats/sensitivity.md`), every figure keyed by its path there: the size-vs-predicted-drift
/// curve of the allocator with llama.cpp's file types marked on it, the file types' table, the
/// held-out check, and the measured sensitivity per layer and per role.
public enum SensitivityPage {
    /// The page's data: the sensitivity file's JSON plus what the page draws beyond it — the
    /// measured single-tensor KLDs summed per layer (`blk.N` in order, then `other`) and per role
    /// (`measured_by_layer`, `measured_by_role`), and the file types of `fileTypeNames` the file
    /// has no point for (`file_types_missing`: `smelt sensitivity` leaves out a file type when
    /// some tensor's type under it has no prediction).
    public static func data(sensitivity json: JSONValue, fileTypeNames: [String]) -> JSONValue {
        let derived = ["measured_by_layer", "measured_by_role", "file_types_missing"]
        var fields = (json.objectEntries ?? []).filter { !derived.contains($0.0) }
        var layers: [(String, Double)] = [], roles: [(String, Double)] = []
        func add(_ list: inout [(String, Double)], _ key: String, _ v: Double) {
            if let i = list.firstIndex(where: { $0.0 == key }) { list[i].1 += v } else { list.append((key, v)) }
        }
        for t in json["tensors"]?.arrayValue ?? [] {
            let v = t["measured_kld"]?.doubleValue ?? 0
            add(&layers, t["layer"]?.intValue.map { "blk.\($0)" } ?? "other", v)
            add(&roles, t["role"]?.stringValue ?? "other", v)
        }
        layers.sort { a, b in
            let la = Int(a.0.dropFirst(4)) ?? Int.max, lb = Int(b.0.dropFirst(4)) ?? Int.max
            return la != lb ? la < lb : a.0 < b.0
        }
        for (key, list) in [("measured_by_layer", layers), ("measured_by_role", roles)] {
            fields.append((key, .array(list.map { .object([("name", .string($0.0)), ("measured_kld", .double($0.1))]) })))
        }
        let priced = Set((json["file_types"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
        fields.append(("file_types_missing", .array(fileTypeNames.filter { !priced.contains($0) }.map { .string($0) })))
        return .object(fields)
    }

    public static func render(_ json: JSONValue) throws -> String {
        let d = ReportData(json)
        var page = HTMLPage(title: "Smelt sensitivity report")
        var facts: [(label: String, value: Cell)] = [("model", .text(try d.string("model")))]
        if let a = d.value("architecture")?.stringValue { facts.append(("architecture", .text(a))) }
        facts += [
            ("calibration text", .text(try d.string("calibration.text"))),
            ("chunks", .sentence([.figure(try d.figure("calibration.chunks", decimals: 0)), .text(" of "),
                                  .figure(try d.figure("calibration.ctx", decimals: 0)), .text(" tokens")])),
            ("rounding", .text(try d.string("rounding"))),
            ("estimator", .text(try d.string("estimator"))),
            ("parameters", .figure(try d.figure("parameters", decimals: 0))),
            ("tensors chosen for", .text(String(d.count("tensors")))),
            ("seconds", .figure(try d.figure("seconds", decimals: 1))),
        ]
        page.facts(facts, id: "inputs")

        page.heading("Size against predicted drift", id: "curve")
        let curveN = d.count("curve"), typesN = d.count("file_types")
        let curve = curveN > 0 ? Chart.Series(
            name: "budgeted mix (the allocator's optimum)",
            x: try (0..<curveN).map { try d.double("curve.\($0).bits_per_weight") },
            y: try (0..<curveN).map { try d.mark("curve.\($0).predicted_kld") }) : nil
        let points = try (0..<typesN).map { i in
            Chart.LabeledPoint(label: try d.string("file_types.\(i).name"), x: try d.mark("file_types.\(i).bits_per_weight"),
                               y: try d.mark("file_types.\(i).predicted_kld"))
        }
        if curve == nil && points.isEmpty {
            page.paragraph("The sensitivity file has neither a curve nor file types to draw.", note: true)
        } else {
            let allY = (curve?.y.map(\.value) ?? []) + points.map(\.y.value)
            let positive = allY.filter { $0 > 0 && $0.isFinite }
            let logY = !positive.isEmpty && (positive.max()! / positive.min()! > 20)
            let zeros = allY.contains(0)
            page.chart(
                Chart.scatter(curve: curve, points: points, xLabel: "bits per weight (all tensors)",
                              yLabel: "predicted mean KLD (nats)" + (logY ? ", log scale" : ""), logY: logY, id: "size-drift"),
                caption: "Predicted drift (the sum of the tensors' predicted KLDs) against size: the line is the least predicted drift at each size, the diamonds llama.cpp's file types."
                    + (logY && zeros ? " A prediction of 0 is drawn on the axis' floor." : ""))
        }
        if typesN > 0 {
            page.paragraph("llama.cpp's file types: each tensor gets the type the file type's recipe in formats/recipes/ gives it on this model (as smelt quantize plans it), priced with this file's predictions.", note: true)
            var rows: [[Cell]] = []
            for i in 0..<typesN {
                let p = "file_types.\(i)"
                rows.append([.text(try d.string("\(p).name")), try d.cell("\(p).tensor_bytes", decimals: 0),
                             try d.cell("\(p).bits_per_weight", decimals: 3), try d.cell("\(p).predicted_kld")])
            }
            page.table(headers: ["file type", "tensor bytes", "bits/weight", "predicted KLD"], rows: rows, id: "file-types")
        }
        let missing = (d.value("file_types_missing")?.arrayValue ?? []).compactMap(\.stringValue)
        if !missing.isEmpty {
            page.paragraph("Not priced (some tensor's type under them has no prediction in the file): " + missing.joined(separator: ", ") + ".",
                           note: true)
        }
        if curveN > 0 {
            var rows: [[Cell]] = []
            for i in 0..<curveN {
                let p = "curve.\(i)"
                rows.append([try d.cell("\(p).tensor_bytes", decimals: 0), try d.cell("\(p).bits_per_weight", decimals: 3),
                             try d.cell("\(p).predicted_kld")])
            }
            page.table(headers: ["tensor bytes", "bits/weight", "predicted KLD"], rows: rows, id: "curve-table",
                       collapsed: "The curve's points (\(curveN))")
        }

        if d.has("check") {
            page.heading("How well the prediction held", id: "check")
            page.sentence([
                .text("On held-out exact measurements: Spearman rank correlation "), .figure(try d.figure("check.spearman", digits: 3)),
                .text(", median predicted ÷ measured "), .figure(try d.figure("check.median_ratio", digits: 3)), .text("."),
            ])
            let n = d.count("check.pairs")
            if n > 0 {
                var rows: [[Cell]] = []
                for i in 0..<n {
                    let p = "check.pairs.\(i)"
                    rows.append([.text(try d.string("\(p).tensor")), .text(try d.string("\(p).type")),
                                 try d.cell("\(p).predicted_kld"), try d.cell("\(p).measured_kld")])
                }
                page.table(headers: ["tensor", "type", "predicted KLD", "measured KLD"], rows: rows, id: "check-pairs",
                           collapsed: "The \(n) measured pairs")
            }
        }

        try sensitivityByGroup(d, into: &page)
        page.paragraph("Made by smelt sensitivity. Figures carry their JSON path (data-key) and exact value (data-value); report.json beside this page holds them all.", note: true)
        return page.html
    }

    /// The measured single-tensor KLD (at each tensor's reference type) summed per layer and per
    /// role (`measured_by_layer`, `measured_by_role`, which the report data adds): where the model
    /// is sensitive; and every tensor's figures.
    static func sensitivityByGroup(_ d: ReportData, into page: inout HTMLPage) throws {
        let n = d.count("tensors")
        guard n > 0 else { return }
        page.heading("Where the model is sensitive", id: "sensitive")
        for (group, label, id) in [("measured_by_layer", "layer", "layers"), ("measured_by_role", "tensor role", "roles")] {
            let m = d.count(group)
            guard m > 0 else { continue }
            let names = try (0..<m).map { try d.string("\(group).\($0).name") }
            page.chart(
                Chart.bars(categories: names, [Chart.BarSeries(name: "measured KLD", values: try (0..<m).map { try d.mark("\(group).\($0).measured_kld") })],
                           yLabel: "summed measured KLD (nats)", xLabel: label, id: "\(id)-sensitivity"),
                caption: "Each tensor's measured KLD when it alone is quantized to its reference type, summed per \(label).")
        }
        var rows: [[Cell]] = []
        for i in 0..<n {
            let p = "tensors.\(i)"
            rows.append([.text(try d.string("\(p).name")), .text(d.value("\(p).role")?.stringValue ?? "–"),
                         try d.cell("\(p).parameters", decimals: 0), .text(try d.string("\(p).reference")),
                         try d.cell("\(p).measured_kld"), try d.cell("\(p).gain")])
        }
        page.table(headers: ["tensor", "role", "parameters", "reference type", "measured KLD", "gain"], rows: rows,
                   id: "tensor-table", collapsed: "Every tensor (\(n))")
    }
}
