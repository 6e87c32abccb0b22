import TensorGraph

/// Where a GPTQ folder keeps its settings: `config.json`'s `quantization_config` (transformers,
/// GPTQModel) or, in AutoGPTQ-era folders, `quantize_config.json` beside it. Folders that carry
/// both (AutoGPTQ wrote one, transformers the other) must agree on every setting both files give;
/// `config.json` is used when they do.
extension GPTQ {
    /// The settings the two files may both give and must then agree on (`checkpoint_format` also
    /// read under its older name `format`).
    static let sharedSettingKeys = ["quant_method", "bits", "group_size", "desc_act", "sym", "checkpoint_format"]

    /// The settings object of a GPTQ folder (for `Settings.parse`), or an error naming both files and
    /// the key when they disagree, or saying that neither exists.
    public static func settingsObject(_ graph: TensorGraph, dir: String = "") throws(PackedCheckpointError) -> JSONValue {
        let config = FlavourRegistry.config(graph)?[PackedCheckpoint.configKey]
        let side = PackedCheckpoint.autoGPTQConfig(graph)
        switch (config, side) {
        case let (c?, s?):
            for key in sharedSettingKeys {
                guard let a = setting(c, key), let b = setting(s, key) else { continue }
                if normalized(a) != normalized(b) {
                    throw .conflictingSettings(dir: dir, key: key, config: Echo.json(a), quantizeConfig: Echo.json(b))
                }
            }
            return c
        case let (c?, nil): return c
        case let (nil, s?): return s
        case (nil, nil):
            throw .badSetting(
                dir: dir, key: PackedCheckpoint.configKey, value: "(missing)",
                reason: "neither config.json nor \(PackedCheckpoint.autoGPTQFile) gives the GPTQ settings")
        }
    }

    static func setting(_ q: JSONValue, _ key: String) -> JSONValue? {
        if key == "checkpoint_format" { return q[key] ?? q["format"] }
        return q[key]
    }

    /// One value as compared: numbers by value (`4` = `4.0`), strings case-blind.
    static func normalized(_ v: JSONValue) -> String {
        if let d = v.doubleValue { return "n:\(d)" }
        if let s = v.stringValue { return "s:" + s.lowercased() }
        return Echo.json(v)
    }
}
