import Calibration
import Formats
import Reports

/// `smelt sensitivity --report DIR`: the sensitivity file's JSON with what the page adds
/// (`SensitivityPage.data`) as `DIR/report.json`, and the page drawn from it as
/// `DIR/index.html`, the folder published whole.
enum SensitivityReportOutput {
    static func write(_ report: SensitivityReport, to dir: String, force: Bool) throws {
        let json = try JSONParser.parse(Array(try report.json()))
        let data = SensitivityPage.data(sensitivity: json, fileTypeNames: FileTypeMix.all.map(\.name))
        try DriftReport.write(data, page: SensitivityPage.render, to: dir, force: force)
    }
}
