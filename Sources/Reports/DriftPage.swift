import Foundation
import Formats

/// The page of `smelt drift --report`: drawn from the report's JSON (the object `--json` writes,
/// plus `kld_histogram`, `per_chunk` and, when there is one, `breakdown`), every figure keyed by
/// its path in that JSON.
public enum DriftPage {
    public static func render(_ json: JSONValue) throws -> String {
        let d = ReportData(json)
        var page = HTMLPage(title: "Smelt drift report")
        page.facts([
            ("base", .text(try d.string("base.model"))),
            ("candidate", .text(try d.string("candidate.model"))),
            ("text", .sentence([
                .figure(try d.figure("chunks", decimals: 0)), .text(" chunks of "), .figure(try d.figure("ctx", decimals: 0)),
                .text(" tokens, "), .figure(try d.figure("positions", decimals: 0)), .text(" positions scored"),
            ])),
        ], id: "inputs")

        // Gates first: the verdict is what a reader looks for.
        page.heading("Gates", id: "gates")
        let gates = d.count("gates")
        if gates == 0 {
            page.paragraph("No gate was set (--max-ppl-ratio, --max-kld, --min-top1).", note: true)
        } else {
            let passed = d.value("passed")?.boolValue ?? false
            page.sentence([.text("Verdict: "), HTMLPage.badge(passed: passed)])
            var rows: [[Cell]] = []
            for i in 0..<gates {
                let p = "gates.\(i)"
                rows.append([
                    .text("--" + (try d.string("\(p).gate"))), try d.cell("\(p).limit", digits: 6), try d.cell("\(p).value", digits: 6),
                    HTMLPage.badge(passed: d.value("\(p).passed")?.boolValue ?? false), .text(try d.string("\(p).message")),
                ])
            }
            page.table(headers: ["gate", "limit", "value", "result", "detail"], rows: rows, id: "gate-table")
        }

        page.heading("Summary", id: "summary")
        page.table(headers: ["", "value"], rows: [
            [.text("PPL base"), .figure(try d.figure("base.ppl", digits: 6))],
            [.text("PPL base ± (stderr)"), .figure(try d.figure("base.ppl_stderr", digits: 3))],
            [.text("PPL candidate"), .figure(try d.figure("candidate.ppl", digits: 6))],
            [.text("PPL candidate ± (stderr)"), .figure(try d.figure("candidate.ppl_stderr", digits: 3))],
            [.text("PPL ratio (candidate / base)"), .figure(try d.figure("ppl_ratio", digits: 6))],
            [.text("PPL difference"), .figure(try d.figure("ppl_difference", digits: 5))],
            [.text("KLD mean (nats)"), .figure(try d.figure("kld.mean", digits: 5))],
            [.text("KLD mean ± (stderr)"), .figure(try d.figure("kld.stderr", digits: 3))],
            [.text("KLD median"), .figure(try d.figure("kld.median", digits: 5))],
            [.text("KLD 90th / 95th percentile"), .sentence([.figure(try d.figure("kld.p90")), .text(" / "), .figure(try d.figure("kld.p95"))])],
            [.text("KLD 99th / 99.9th percentile"), .sentence([.figure(try d.figure("kld.p99")), .text(" / "), .figure(try d.figure("kld.p99_9"))])],
            [.text("KLD max"), .figure(try d.figure("kld.max"))],
            [.text("RMS Δp (fraction)"), .figure(try d.figure("rms_delta_p", digits: 4))],
            [.text("top-1 agreement (fraction)"), .figure(try d.figure("top1_agreement", digits: 6))],
            [.text("top-1 agreement ± (stderr)"), .figure(try d.figure("top1_agreement_stderr", digits: 3))],
        ], id: "summary-table")

        page.heading("KL divergence per position", id: "kld")
        let bins = d.count("kld_histogram.bins")
        if bins > 0 {
            var marks: [Chart.Bin] = []
            for i in 0..<bins {
                let p = "kld_histogram.bins.\(i)"
                marks.append(Chart.Bin(low: try d.double("\(p).low"), high: try d.double("\(p).high"), count: try d.mark("\(p).count")))
            }
            page.chart(
                Chart.histogram(marks, xLabel: "KL(base ‖ candidate) per position, nats (log scale)", logX: true, id: "kld-histogram"),
                caption: "Positions per KLD bin (bins equal on a log scale).")
            page.sentence([
                .figure(try d.figure("kld_histogram.below", decimals: 0)), .text(" positions have a KLD below "),
                .figure(try d.figure("kld_histogram.floor", digits: 2)),
                .text(" nats (zeros included) and are not drawn."),
            ])
        } else {
            page.paragraph("Every position's KLD is below \(Figure(try d.double("kld_histogram.floor"), key: nil, digits: 2).text) nats: nothing to draw.", note: true)
        }

        page.heading("Per chunk", id: "chunks")
        let chunks = d.count("per_chunk")
        let xs = (0..<chunks).map(Double.init)
        page.chart(
            Chart.lines([
                Chart.Series(name: "base", x: xs, y: try (0..<chunks).map { try d.mark("per_chunk.\($0).ppl_base") }),
                Chart.Series(name: "candidate", x: xs, y: try (0..<chunks).map { try d.mark("per_chunk.\($0).ppl_candidate") }),
            ], xLabel: "chunk", yLabel: "perplexity", id: "chunk-ppl"),
            caption: "Perplexity of each chunk's scored positions, both models.")
        page.chart(
            Chart.lines([Chart.Series(name: "mean KLD", x: xs, y: try (0..<chunks).map { try d.mark("per_chunk.\($0).kld_mean") })],
                        xLabel: "chunk", yLabel: "mean KLD (nats)", id: "chunk-kld"),
            caption: "Mean KLD per chunk.")
        page.chart(
            Chart.lines([Chart.Series(name: "top-1 agreement", x: xs, y: try (0..<chunks).map { try d.mark("per_chunk.\($0).top1_agreement") })],
                        xLabel: "chunk", yLabel: "top-1 agreement (fraction)", id: "chunk-top1"),
            caption: "Share of positions where both models' most likely token is the same, per chunk.")
        var chunkRows: [[Cell]] = []
        for i in 0..<chunks {
            let p = "per_chunk.\(i)"
            chunkRows.append([.text(String(i)), try d.cell("\(p).ppl_base", digits: 6), try d.cell("\(p).ppl_candidate", digits: 6),
                              try d.cell("\(p).kld_mean"), try d.cell("\(p).top1_agreement", digits: 5)])
        }
        page.table(headers: ["chunk", "PPL base", "PPL candidate", "mean KLD", "top-1 agreement"], rows: chunkRows,
                   id: "chunk-table", collapsed: "The per-chunk figures (\(chunks) chunks)")

        if d.has("breakdown") { try breakdown(d, into: &page) }
        page.paragraph("Made by smelt drift. Figures carry their JSON path (data-key) and exact value (data-value); report.json beside this page holds them all.", note: true)
        return page.html
    }

    /// Bytes (and predicted drift, when a sensitivity file was given) per layer, per role, per tensor.
    static func breakdown(_ d: ReportData, into page: inout HTMLPage) throws {
        page.heading("Where the bytes and the drift are", id: "breakdown")
        var sources: [Cell] = [.text("Bytes and types from the candidate file")]
        if let s = d.value("breakdown.sensitivity")?.stringValue {
            sources += [.text("; predicted drift (KLD, summed over tensors as the allocator sums it) from the sensitivity file "), .text(s)]
        }
        if let r = d.value("breakdown.recipe")?.stringValue { sources += [.text("; recipe "), .text(r)] }
        page.sentence(sources + [.text(".")])
        if d.has("breakdown.predicted_kld_total") {
            page.sentence([.text("Predicted drift of this mix (the tensors' predictions summed): "),
                           .figure(try d.figure("breakdown.predicted_kld_total")), .text(" nats; measured mean KLD above: "),
                           .figure(try d.figure("kld.mean")), .text(" nats.")])
            let missing = (d.value("breakdown.unpredicted_tensors")?.arrayValue ?? []).compactMap(\.stringValue)
            if !missing.isEmpty {
                page.paragraph("No prediction in the sensitivity file for these tensors at the type they have (counted as 0): "
                    + missing.joined(separator: ", ") + ".", note: true)
            }
        }
        if d.has("breakdown.recipe_mismatches") {
            page.sentence([.text("Tensors whose type differs from the one the recipe gives them: "),
                           .figure(try d.figure("breakdown.recipe_mismatches", decimals: 0)), .text(".")])
        }
        let predicted = d.has("breakdown.sensitivity")
        for (group, label) in [("layers", "layer"), ("roles", "tensor role")] {
            let n = d.count("breakdown.\(group)")
            guard n > 0 else { continue }
            let names = try (0..<n).map { try d.string("breakdown.\(group).\($0).name") }
            page.chart(
                Chart.bars(categories: names, [Chart.BarSeries(name: "MiB", values: try (0..<n).map { try d.mark("breakdown.\(group).\($0).mib") })],
                           yLabel: "MiB", xLabel: label, id: "\(group)-bytes"),
                caption: "Tensor bytes per \(label) (MiB) in the candidate.")
            if predicted {
                page.chart(
                    Chart.bars(categories: names, [Chart.BarSeries(name: "predicted KLD",
                                                                   values: try (0..<n).map { try d.mark("breakdown.\(group).\($0).predicted_kld") })],
                               yLabel: "predicted KLD (nats)", xLabel: label, id: "\(group)-drift"),
                    caption: "Predicted drift per \(label): the sensitivity file's KLD for each tensor at the type it has, summed.")
            }
            var rows: [[Cell]] = []
            for i in 0..<n {
                let p = "breakdown.\(group).\(i)"
                var row: [Cell] = [.text(names[i]), try d.cell("\(p).tensors", decimals: 0), try d.cell("\(p).parameters", decimals: 0),
                                   try d.cell("\(p).bytes", decimals: 0), try d.cell("\(p).bits_per_weight", decimals: 3),
                                   .text(try d.string("\(p).types"))]
                if predicted { row.append(try d.cell("\(p).predicted_kld")) }
                rows.append(row)
            }
            page.table(headers: [label, "tensors", "parameters", "bytes", "bits/weight", "types"] + (predicted ? ["predicted KLD"] : []),
                       rows: rows, id: "\(group)-table")
        }
        let tensors = d.count("breakdown.tensors")
        if tensors > 0 {
            var rows: [[Cell]] = []
            for i in 0..<tensors {
                let p = "breakdown.tensors.\(i)"
                var row: [Cell] = [.text(try d.string("\(p).name")), .text(try d.string("\(p).type")),
                                   try d.cell("\(p).parameters", decimals: 0), try d.cell("\(p).bytes", decimals: 0)]
                if predicted { row.append(d.has("\(p).predicted_kld") ? try d.cell("\(p).predicted_kld") : .text("–")) }
                if d.has("breakdown.recipe") { row.append(.text(d.value("\(p).recipe_type")?.stringValue ?? "–")) }
                rows.append(row)
            }
            page.table(headers: ["tensor", "type", "parameters", "bytes"] + (predicted ? ["predicted KLD"] : [])
                + (d.has("breakdown.recipe") ? ["recipe type"] : []),
                       rows: rows, id: "tensor-table", collapsed: "Every tensor (\(tensors))")
        }
    }
}

extension Cell {
    /// Several cells in one (a figure inside a sentence).
    static func sentence(_ parts: [Cell]) -> Cell { .markup(parts.map(\.html).joined()) }
}
