import Foundation
import Formats
import TensorGraph

/// One architecture as a self-contained unit (a file under `Architectures/Models/`): a value of the
/// type is a configured model of that architecture. The type owns
/// - its configuration: the stored properties, decoded (`Codable`) from a Hugging Face
///   `config.json`, or from the GGUF keys through its table's `config` rows, with the defaults
///   the reference implementation (transformers) uses;
/// - its tensor-name table (`formats/architectures/<name>.json`, as data);
/// - its conversion hooks (tensors made from others, config.json entries GGUF does not carry);
/// - the description of its forward pass (`ForwardPlan`), which the evaluator builds from shared
///   blocks.
///
/// Adding one is a new file and one line in `ArchitectureRegistry.all`.
public protocol Architecture: Codable, Sendable {
    /// GGUF's `general.architecture`, and the name of the table file.
    static var name: String { get }

    /// The forward pass. Throws when the configuration contradicts itself (heads that do not
    /// divide, a head size the tensors cannot have).
    func forwardPlan() throws -> ForwardPlan

    /// config.json entries that no GGUF key carries (activation, biases, …), for GGUF → Hugging
    /// Face; `gguf` is the graph being converted.
    func hfConfigExtras(gguf: TensorGraph) -> [(String, JSONValue)]

    /// Tensors a GGUF holds that no Hugging Face tensor maps to one for one, made from the
    /// configuration and the Hugging Face graph (HF → GGUF appends them after the mapped ones).
    func generatedTensors(hf: TensorGraph) throws -> [Tensor]

    /// GGUF → Hugging Face: takes back into the configuration what the GGUF holds as generated
    /// tensors (Llama 3's `rope_freqs.weight` → `rope_scaling`) and returns their names, which the
    /// Hugging Face folder does not get. Throws when the configuration cannot be restored exactly.
    mutating func restore(fromGGUF graph: TensorGraph) throws -> Set<String>

    /// A mapped tensor's values on their way to GGUF (after the table's transform), e.g. Gemma's
    /// norm weights stored + 1; `transformToHF` undoes it.
    func transformToGGUF(_ t: Tensor, ggufName: String) throws -> Tensor
    func transformToHF(_ t: Tensor, ggufName: String) throws -> Tensor

    /// The rotary scaling the configuration states (nil: none, or no rotary positions).
    var ropeScaling: RopeScaling? { get }

    /// What `inspect` shows of the configuration (`ArchitectureSummary.entries` by default).
    func summary() throws -> [(String, JSONValue)]

    /// `tokenizer.ggml.add_space_prefix` for a SentencePiece `tokenizer.model`, when the
    /// architecture's converter states one (Gemma 3: false); nil leaves it to the folder.
    static var sentencePieceSpacePrefix: Bool? { get }

    /// How a `tokenizer.model` vocabulary takes the folder's added tokens (as the architecture's
    /// llama.cpp converter does).
    static var sentencePieceAddedTokens: HFTokenizer.AddedTokens { get }

    /// HF → GGUF: the number of `token_embd.weight` rows to keep when the embedding has more rows
    /// than the vocabulary (llama.cpp's converter trims Gemma's); nil keeps them all.
    func vocabularyRows(hf: TensorGraph) throws -> Int?
}

extension Architecture {
    public func hfConfigExtras(gguf: TensorGraph) -> [(String, JSONValue)] { [] }
    public func generatedTensors(hf: TensorGraph) throws -> [Tensor] { [] }
    public mutating func restore(fromGGUF graph: TensorGraph) throws -> Set<String> { [] }
    public func transformToGGUF(_ t: Tensor, ggufName: String) throws -> Tensor { t }
    public func transformToHF(_ t: Tensor, ggufName: String) throws -> Tensor { t }
    public var ropeScaling: RopeScaling? { nil }
    public static var sentencePieceSpacePrefix: Bool? { nil }
    public static var sentencePieceAddedTokens: HFTokenizer.AddedTokens { .decoderLooksSpecial }
    public func vocabularyRows(hf: TensorGraph) throws -> Int? { nil }
    public func summary() throws -> [(String, JSONValue)] {
        ArchitectureSummary.entries(plan: try forwardPlan(), ropeScaling: ropeScaling)
    }

    /// The architecture's table.
    public static var table: ArchitectureSpec { ArchitectureRegistry.table(name) }

    /// The configuration a Hugging Face `config.json` states.
    public static func configuration(hfConfig text: String) throws -> Self {
        try ConfigCoding.decode(Self.self, json: Data(text.utf8), architecture: name, keyName: { $0 })
    }

    /// The configuration the `{arch}.*` GGUF keys state, read through the table's `config` rows
    /// (a row's Hugging Face key may be a dotted path into a nested object). A missing required
    /// key is named by its GGUF name.
    public static func configuration(gguf metadata: Metadata) throws -> Self {
        let table = Self.table
        var object = JSONValue.object([])
        for row in table.config {
            guard let v = metadata[GGUFKeys.key(name, row.ggufKey)] else { continue }
            let json: JSONValue
            switch row.type {
            case "u32":
                guard let i = v.intValue else { throw ArchitectureError.badConfig(key: GGUFKeys.key(name, row.ggufKey), reason: "expected an integer, found \(v)") }
                json = .int(i)
            case "str":
                guard let s = v.stringValue else { throw ArchitectureError.badConfig(key: GGUFKeys.key(name, row.ggufKey), reason: "expected a string, found \(v)") }
                json = .string(s)
            default:
                // float32 in GGUF: the shortest decimal that reads back as the same float32.
                guard let d = v.doubleValue else { throw ArchitectureError.badConfig(key: GGUFKeys.key(name, row.ggufKey), reason: "expected a number, found \(v)") }
                json = .number("\(Float(d))")
            }
            object = ConfigCoding.setting(object, path: row.hfKey.split(separator: ".").map(String.init), to: json)
        }
        let data = Data(JSONWriter.write(object).utf8)
        return try ConfigCoding.decode(Self.self, json: data, architecture: name) { hfKey in
            table.config.first { $0.hfKey == hfKey || $0.hfKey.hasSuffix("." + hfKey) }.map { GGUFKeys.key(name, $0.ggufKey) } ?? hfKey
        }
    }

    /// The configuration as config.json entries (every value resolved, defaults included), in the
    /// order of the table's rows, then the rest.
    public func hfConfigEntries() throws -> [(String, JSONValue)] { try configEntries(forGGUF: false) }

    /// `forGGUF`: the entries the table's rows turn into GGUF keys (see `ConfigWriter.forGGUF`).
    func configEntries(forGGUF: Bool) throws -> [(String, JSONValue)] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.userInfo[ConfigCoding.forGGUFKey] = forGGUF
        let doubles = ConfigCoding.DoublePaths()
        encoder.userInfo[ConfigCoding.doublePathsKey] = doubles
        // JSONEncoder writes 2.0 as 2; transformers' configs are strict about floats, so the
        // values written as Double get their decimal point back.
        let json = ConfigCoding.markingDoubles(try JSONParser.parse(Array(try encoder.encode(self))), doubles.paths, at: [])
        let entries = json.objectEntries ?? []
        let order = Self.table.config.map { $0.hfKey.split(separator: ".").first.map(String.init) ?? $0.hfKey }
        func rank(_ k: String) -> Int { order.firstIndex(of: k) ?? order.count }
        return entries.enumerated().sorted { (rank($0.element.0), $0.offset) < (rank($1.element.0), $1.offset) }.map(\.element)
    }

    /// The `{arch}.*` GGUF keys of the configuration, through the table's `config` rows, in row
    /// order; rows whose value the configuration leaves unset are not written.
    public func ggufKeys() throws -> [(String, MetadataValue)] {
        let json = JSONValue.object(try configEntries(forGGUF: true))
        var out: [(String, MetadataValue)] = []
        for row in Self.table.config {
            var v: JSONValue? = json
            for part in row.hfKey.split(separator: ".") { v = v?[String(part)] }
            guard let v, !v.isNull else { continue }
            let key = GGUFKeys.key(Self.name, row.ggufKey)
            switch row.type {
            case "u32":
                guard let i = v.intValue, let u = UInt32(exactly: i) else { throw ArchitectureError.badConfig(key: row.hfKey, reason: "expected a count, found \(v)") }
                out.append((key, .uint32(u)))
            case "str":
                guard let s = v.stringValue else { throw ArchitectureError.badConfig(key: row.hfKey, reason: "expected a string, found \(v)") }
                out.append((key, .string(s)))
            default:
                guard let d = v.doubleValue else { throw ArchitectureError.badConfig(key: row.hfKey, reason: "expected a number, found \(v)") }
                out.append((key, .float32(Float(d))))
            }
        }
        return out
    }
}

/// Decoding and encoding helpers for the configurations: `config.json` keys by name, errors that
/// name the key (in the source's own naming).
public enum ConfigCoding {
    /// A config.json key by name.
    public struct Key: CodingKey, Hashable {
        public let stringValue: String
        public init(_ s: String) { stringValue = s }
        public init?(stringValue: String) { self.stringValue = stringValue }
        public var intValue: Int? { nil }
        public init?(intValue: Int) { nil }
    }

    /// `Encoder.userInfo` key: the encoding is for GGUF keys rather than a config.json.
    static let forGGUFKey = CodingUserInfoKey(rawValue: "smelt.forGGUF")!

    static let doublePathsKey = CodingUserInfoKey(rawValue: "smelt.doublePaths")!

    /// The key paths `ConfigWriter` wrote a Double at.
    final class DoublePaths: @unchecked Sendable {
        var paths: Set<[String]> = []
    }

    static func markingDoubles(_ v: JSONValue, _ paths: Set<[String]>, at path: [String]) -> JSONValue {
        switch v {
        case let .object(entries):
            return .object(entries.map { ($0.0, markingDoubles($0.1, paths, at: path + [$0.0])) })
        case let .number(text) where paths.contains(path) && !text.contains(where: { ".eE".contains($0) }):
            return .number(text + ".0")
        default:
            return v
        }
    }

    /// Whether `w` writes for GGUF keys (a unit may lay a value out differently for them).
    public static func isForGGUF(_ w: ConfigWriter) -> Bool { w.forGGUF }

    static func decode<T: Decodable>(_ type: T.Type, json: Data, architecture: String, keyName: (String) -> String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: json)
        } catch let ArchitectureError.missingConfig(key, arch) {
            throw ArchitectureError.missingConfig(key: keyName(key), architecture: arch)
        } catch let ArchitectureError.badConfig(key, reason) {
            throw ArchitectureError.badConfig(key: keyName(key), reason: reason)
        } catch let e as DecodingError {
            switch e {
            case let .typeMismatch(_, ctx), let .valueNotFound(_, ctx), let .dataCorrupted(ctx):
                let key = ctx.codingPath.map(\.stringValue).joined(separator: ".")
                throw ArchitectureError.badConfig(key: keyName(key), reason: ctx.debugDescription)
            case let .keyNotFound(k, _):
                throw ArchitectureError.missingConfig(key: keyName(k.stringValue), architecture: architecture)
            @unknown default:
                throw ArchitectureError.badConfig(key: "config.json", reason: "\(e)")
            }
        }
    }

    /// `object` with `value` at the key path (objects made on the way).
    static func setting(_ object: JSONValue, path: [String], to value: JSONValue) -> JSONValue {
        guard let first = path.first else { return value }
        var entries = object.objectEntries ?? []
        let inner = entries.first { $0.0 == first }?.1 ?? .object([])
        let updated = setting(inner, path: Array(path.dropFirst()), to: value)
        if let i = entries.firstIndex(where: { $0.0 == first }) { entries[i].1 = updated } else { entries.append((first, updated)) }
        return .object(entries)
    }
}

/// Reads a config.json object by key, with the errors the converters report.
public struct ConfigReader {
    let c: KeyedDecodingContainer<ConfigCoding.Key>
    let architecture: String

    public init(_ decoder: Decoder, architecture: String) throws {
        c = try decoder.container(keyedBy: ConfigCoding.Key.self)
        self.architecture = architecture
    }

    init(_ c: KeyedDecodingContainer<ConfigCoding.Key>, architecture: String) {
        self.c = c
        self.architecture = architecture
    }

    public func has(_ key: String) -> Bool { c.contains(.init(key)) && !((try? c.decodeNil(forKey: .init(key))) ?? true) }

    public func int(_ key: String) throws -> Int? {
        guard has(key) else { return nil }
        if let i = try? c.decode(Int.self, forKey: .init(key)) { return i }
        // 64.0 is a count too.
        let d = try c.decode(Double.self, forKey: .init(key))
        guard let i = Int(exactly: d) else { throw ArchitectureError.badConfig(key: key, reason: "expected an integer, found \(d)") }
        return i
    }

    public func double(_ key: String) throws -> Double? { has(key) ? try c.decode(Double.self, forKey: .init(key)) : nil }
    public func bool(_ key: String) throws -> Bool? { has(key) ? try c.decode(Bool.self, forKey: .init(key)) : nil }
    public func string(_ key: String) throws -> String? { has(key) ? try c.decode(String.self, forKey: .init(key)) : nil }

    public func require(_ key: String) throws -> Int {
        guard let v = try int(key) else { throw ArchitectureError.missingConfig(key: key, architecture: architecture) }
        guard v > 0 else { throw ArchitectureError.badConfig(key: key, reason: "must be positive, not \(v)") }
        return v
    }

    /// A nested object (`rope_parameters`, `rope_scaling`), when present and not null.
    public func object(_ key: String) throws -> ConfigReader? {
        guard has(key) else { return nil }
        return ConfigReader(try c.nestedContainer(keyedBy: ConfigCoding.Key.self, forKey: .init(key)), architecture: architecture)
    }

    /// The rotary parameters: transformers 5 keeps them under `rope_parameters`, earlier versions
    /// at the top level (`rope_theta`) and under `rope_scaling`.
    public func ropeParameters() throws -> ConfigReader? { try object("rope_parameters") ?? object("rope_scaling") }
}

/// Writes config.json entries by key, skipping unset values.
public struct ConfigWriter {
    var c: KeyedEncodingContainer<ConfigCoding.Key>
    /// The values go to GGUF keys (through the table's rows), not to a config.json.
    public let forGGUF: Bool
    let path: [String]
    let doubles: ConfigCoding.DoublePaths?

    public init(_ encoder: Encoder) {
        c = encoder.container(keyedBy: ConfigCoding.Key.self)
        forGGUF = encoder.userInfo[ConfigCoding.forGGUFKey] as? Bool ?? false
        doubles = encoder.userInfo[ConfigCoding.doublePathsKey] as? ConfigCoding.DoublePaths
        path = []
    }

    public mutating func put<T: Encodable>(_ key: String, _ value: T?) throws {
        guard let value else { return }
        if value is Double { doubles?.paths.insert(path + [key]) }
        try c.encode(value, forKey: .init(key))
    }

    /// A nested object (`rope_parameters`).
    public mutating func nested(_ key: String) -> ConfigWriter {
        ConfigWriter(container: c.nestedContainer(keyedBy: ConfigCoding.Key.self, forKey: .init(key)), forGGUF: forGGUF,
                     path: path + [key], doubles: doubles)
    }

    init(container: KeyedEncodingContainer<ConfigCoding.Key>, forGGUF: Bool, path: [String], doubles: ConfigCoding.DoublePaths?) {
        c = container
        self.forGGUF = forGGUF
        self.path = path
        self.doubles = doubles
    }
}

/// The one place architectures are registered: one line per architecture unit.
public enum ArchitectureRegistry {
    public static let all: [any Architecture.Type] = [
        GPT2.self,
        Llama.self,
        Qwen2.self,
        Qwen3.self,
        Qwen3Moe.self,
        Gemma3.self,
        GptOss.self,
        Phi3.self,
    ]

    /// Every unit's GGUF name, in registry order.
    public static let names: [String] = all.map(name(of:))

    /// Every unit's table (`formats/architectures/<name>.json`), in registry order.
    public static let tables: [ArchitectureSpec] = names.map(table)

    /// Every Hugging Face `model_type` a unit reads, in registry order.
    public static var hfModelTypes: [String] { tables.flatMap(\.hfModelTypes) }

    private static func name(of unit: any Architecture.Type) -> String { unit.name }

    static func table(_ name: String) -> ArchitectureSpec {
        let file = "architectures/\(name).json"
        // The tables are part of the build and checked by the tests, so a missing or bad one is a
        // programming error rather than bad input.
        guard let text = EmbeddedTables.files[file] else { fatalError("formats/\(file) is not embedded") }
        return try! ArchitectureSpec(json: try! JSONParser.parse(text), file: file)
    }

    /// The unit for a Hugging Face `model_type` (`llama`, `mistral`, `gpt2`, `qwen2`, `qwen3`).
    public static func unit(hfModelType: String?) throws -> any Architecture.Type {
        if let t = hfModelType, let i = tables.firstIndex(where: { $0.hfModelTypes.contains(t) }) { return all[i] }
        throw ArchitectureError.unsupported(architecture: hfModelType, supported: hfModelTypes)
    }

    /// The unit for a GGUF `general.architecture`.
    public static func unit(gguf architecture: String?) throws -> any Architecture.Type {
        if let a = architecture, let i = names.firstIndex(of: a) { return all[i] }
        throw ArchitectureError.unsupported(architecture: architecture, supported: names)
    }

    /// The table for a Hugging Face `model_type`.
    public static func spec(hfModelType: String?) throws -> ArchitectureSpec { try unit(hfModelType: hfModelType).table }

    /// The table for a GGUF `general.architecture`.
    public static func spec(gguf architecture: String?) throws -> ArchitectureSpec { try unit(gguf: architecture).table }

    /// The configured architecture of a graph in GGUF layout (its `general.architecture` and
    /// `{arch}.*` keys).
    public static func configuration(gguf graph: TensorGraph) throws -> any Architecture {
        try unit(gguf: graph.architecture).configuration(gguf: graph.metadata)
    }

    /// The forward pass of a graph in GGUF layout. A contradiction between keys is named by the
    /// GGUF key (`llama.attention.head_count_kv`), not the config.json name the unit checks it by.
    public static func forwardPlan(gguf graph: TensorGraph) throws -> ForwardPlan {
        let unit = try unit(gguf: graph.architecture)
        do {
            return try unit.configuration(gguf: graph.metadata).forwardPlan()
        } catch let ArchitectureError.badConfig(key, reason) {
            let row = unit.table.config.first { $0.hfKey == key || $0.hfKey.hasSuffix("." + key) }
            throw ArchitectureError.badConfig(key: row.map { GGUFKeys.key(unit.name, $0.ggufKey) } ?? key, reason: reason)
        }
    }
}
