import Foundation
import Formats
import TensorGraph

/// One architecture's tensor-name table, read from `formats/architectures/<name>.json`:
/// Hugging Face ↔ GGUF tensor names (with `{bid}` for the block number), the layout transform each
/// tensor needs, and `config.json` key ↔ `{arch}.*` GGUF key pairs.
public struct ArchitectureSpec: Sendable {
    /// How a tensor's layout differs between the two sides.
    public enum Transform: String, Sendable {
        /// llama.cpp's row permutation of the query projection (heads = attention heads).
        case ropePermuteQ = "rope_permute_q"
        /// The same for the key projection (heads = key/value heads).
        case ropePermuteK = "rope_permute_k"
        /// GPT-2's Conv1D weights are stored [in, out]; GGUF wants [out, in].
        case transpose
    }

    /// What GGUF holds for the output head when Hugging Face ties it to the embedding.
    public enum TiedOutput: String, Sendable {
        /// No `output.weight`: llama.cpp falls back to `token_embd.weight`.
        case omit
        /// `output.weight` is written as a copy of `token_embd.weight` (GPT-2 needs it).
        case duplicate
    }

    public struct TensorRule: Sendable {
        public let hf: NamePattern
        public let gguf: NamePattern
        public let transform: Transform?
    }

    /// Tensors that do not map one for one: several Hugging Face tensors → one GGUF tensor, or one
    /// → several (`formats/architectures/<name>.json`, `tensor_groups`). The first Hugging Face
    /// name leads the group (the GGUF tensors are made where it sits); the others are consumed.
    public struct GroupRule: Sendable {
        /// Which checkpoint form the group belongs to (`mxfp4`, `float`, `any`): GGUF → Hugging
        /// Face picks the form by the GGUF tensor's type and the requested dtype.
        public let form: String
        public let transform: TensorGroups.Transform
        public let hf: [NamePattern]
        public let gguf: [NamePattern]
    }

    public struct ConfigRule: Sendable {
        public let hfKey: String
        /// The GGUF key without the `{arch}.` prefix.
        public let ggufKey: String
        /// `u32`, `f32` or `str`. The Hugging Face key may be a dotted path (`rope_scaling.factor`).
        public let type: String
    }

    public let architecture: String
    public let hfModelTypes: [String]
    public let hfClass: String
    public let hfStripPrefix: String?
    public let hfWritePrefix: String?
    public let tiedOutput: TiedOutput
    public let hfActivation: String
    public let skipHF: [NamePattern]
    public let tensors: [TensorRule]
    public let groups: [GroupRule]
    /// Experts one tensor each in the checkpoint ↔ one stacked GGUF tensor (`expert_stacks`:
    /// rows of [hf with {bid} and {xid}, gguf with {bid}]).
    public let expertStacks: [ExpertStacks.Rule]
    /// config.json's `quantization_config` for a folder whose tensors take an `mxfp4` group's
    /// form (blocks + scales), as transformers reads them.
    public let hfMXFP4QuantizationConfig: JSONValue?
    public let config: [ConfigRule]

    init(json: JSONValue, file: String) throws {
        func string(_ key: String) throws -> String {
            guard let s = json[key]?.stringValue else { throw ArchitectureError.badTable(file: file, reason: "missing '\(key)'") }
            return s
        }
        architecture = try string("architecture")
        hfModelTypes = json["hf_model_types"]?.arrayValue?.compactMap(\.stringValue) ?? [architecture]
        hfClass = try string("hf_class")
        hfStripPrefix = json["hf_strip_prefix"]?.stringValue
        hfWritePrefix = json["hf_write_prefix"]?.stringValue
        guard let tied = TiedOutput(rawValue: try string("tied_output")) else {
            throw ArchitectureError.badTable(file: file, reason: "unknown tied_output")
        }
        tiedOutput = tied
        hfActivation = try string("hf_act")
        skipHF = (json["skip_hf"]?.arrayValue ?? []).compactMap(\.stringValue).map(NamePattern.init)
        var rules: [TensorRule] = []
        for row in json["tensors"]?.arrayValue ?? [] {
            guard let cols = row.arrayValue?.compactMap(\.stringValue), cols.count >= 2 else {
                throw ArchitectureError.badTable(file: file, reason: "tensor row \(row) is not [hf, gguf, transform?]")
            }
            var transform: Transform?
            if cols.count > 2 {
                guard let t = Transform(rawValue: cols[2]) else {
                    throw ArchitectureError.badTable(file: file, reason: "unknown transform '\(cols[2])'")
                }
                transform = t
            }
            rules.append(TensorRule(hf: NamePattern(cols[0]), gguf: NamePattern(cols[1]), transform: transform))
        }
        tensors = rules
        hfMXFP4QuantizationConfig = json["hf_mxfp4_quantization_config"]
        groups = try (json["tensor_groups"]?.arrayValue ?? []).map { row in
            let hf = row["hf"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let gguf = row["gguf"]?.arrayValue?.compactMap(\.stringValue) ?? []
            guard !hf.isEmpty, !gguf.isEmpty, let t = row["transform"]?.stringValue.flatMap(TensorGroups.Transform.init(rawValue:)),
                let form = row["form"]?.stringValue, ["mxfp4", "float", "any"].contains(form)
            else {
                throw ArchitectureError.badTable(file: file, reason: "tensor group \(row) is not {form: mxfp4|float|any, transform, hf: [...], gguf: [...]}")
            }
            return GroupRule(form: form, transform: t, hf: hf.map(NamePattern.init), gguf: gguf.map(NamePattern.init))
        }
        expertStacks = try (json["expert_stacks"]?.arrayValue ?? []).map { row in
            guard let c = row.arrayValue?.compactMap(\.stringValue), c.count == 2, let hf = ExpertStacks.Pattern(c[0]) else {
                throw ArchitectureError.badTable(file: file, reason: "expert stack row \(row) is not [hf with {bid} and {xid}, gguf with {bid}]")
            }
            return ExpertStacks.Rule(hf: hf, gguf: NamePattern(c[1]))
        }
        config = try (json["config"]?.arrayValue ?? []).map { row in
            guard let c = row.arrayValue?.compactMap(\.stringValue), c.count == 3, ["u32", "f32", "str"].contains(c[2]) else {
                throw ArchitectureError.badTable(file: file, reason: "config row \(row) is not [hf_key, gguf_key, u32|f32|str]")
            }
            return ConfigRule(hfKey: c[0], ggufKey: c[1], type: c[2])
        }
    }

    /// The GGUF name and transform for a Hugging Face tensor name (prefix already stripped).
    public func ggufName(forHF name: String) -> (name: String, transform: Transform?)? {
        for rule in tensors {
            if let bid = rule.hf.match(name) { return (rule.gguf.fill(bid), rule.transform) }
        }
        return nil
    }

    /// The Hugging Face name (without prefix) and transform for a GGUF tensor name.
    public func hfName(forGGUF name: String) -> (name: String, transform: Transform?)? {
        for rule in tensors {
            if let bid = rule.gguf.match(name) { return (rule.hf.fill(bid), rule.transform) }
        }
        return nil
    }

    /// The group a Hugging Face tensor belongs to, its block number and its place among the
    /// group's Hugging Face names (0: the leader).
    public func group(forHF name: String) -> (rule: GroupRule, bid: Int, index: Int)? {
        for rule in groups {
            for (i, p) in rule.hf.enumerated() { if let bid = p.match(name) { return (rule, bid, i) } }
        }
        return nil
    }

    /// The groups a GGUF tensor belongs to (one per checkpoint form), its block number and its
    /// place among each group's GGUF names.
    public func groups(forGGUF name: String) -> [(rule: GroupRule, bid: Int, index: Int)] {
        groups.compactMap { rule in
            for (i, p) in rule.gguf.enumerated() { if let bid = p.match(name) { return (rule, bid, i) } }
            return nil
        }
    }

    /// The expert stack a Hugging Face tensor belongs to, with its block and expert numbers.
    public func expertStack(forHF name: String) -> (rule: ExpertStacks.Rule, bid: Int, xid: Int)? {
        for rule in expertStacks { if let (b, x) = rule.hf.match(name) { return (rule, b, x) } }
        return nil
    }

    /// The expert stack a GGUF tensor is, with its block number.
    public func expertStack(forGGUF name: String) -> (rule: ExpertStacks.Rule, bid: Int)? {
        for rule in expertStacks { if let b = rule.gguf.match(name) { return (rule, b) } }
        return nil
    }

    public func isSkippedHF(_ name: String) -> Bool { skipHF.contains { $0.match(name) != nil } }
}

/// A tensor name with an optional `{bid}` placeholder for the block number.
public struct NamePattern: Sendable, CustomStringConvertible {
    let prefix: String
    let suffix: String?  // nil: no placeholder, the name is `prefix` exactly

    public init(_ text: String) {
        if let r = text.range(of: "{bid}") {
            prefix = String(text[..<r.lowerBound])
            suffix = String(text[r.upperBound...])
        } else {
            prefix = text
            suffix = nil
        }
    }

    /// The block number when `name` matches (-1 for a pattern without a placeholder).
    public func match(_ name: String) -> Int? {
        guard let suffix else { return name == prefix ? -1 : nil }
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count > prefix.count + suffix.count else { return nil }
        let middle = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard middle.allSatisfy(\.isASCII), middle.allSatisfy(\.isNumber), let n = Int(middle) else { return nil }
        return n
    }

    public func fill(_ bid: Int) -> String { suffix.map { prefix + String(bid) + $0 } ?? prefix }

    public var description: String { suffix.map { prefix + "{bid}" + $0 } ?? prefix }
}

public enum ArchitectureError: Error, CustomStringConvertible {
    case badTable(file: String, reason: String)
    case unsupported(architecture: String?, supported: [String])
    case missingConfig(key: String, architecture: String)
    case badConfig(key: String, reason: String)
    case unmappedTensor(name: String, architecture: String)
    case badShape(tensor: String, shape: [Int], reason: String)
    case missingTokenizer(reason: String)
    /// `file`: which of the tokenizer files (`tokenizer.json`, `tokenizer_config.json`).
    case badTokenizer(file: String = "tokenizer.json", reason: String)

    public var description: String {
        switch self {
        case let .badTable(file, reason): return "formats/\(file): \(reason)"
        case let .unsupported(arch, supported):
            return "architecture '\(arch.map { Echo.value($0) } ?? "(not stated)")' is not supported for this conversion (supported: \(supported.joined(separator: ", ")))"
        case let .missingConfig(key, arch): return "\(Echo.value(arch)): the model's configuration lacks '\(Echo.value(key))'"
        case let .badConfig(key, reason): return "configuration key '\(Echo.value(key))': \(Echo.text(reason))"
        case let .unmappedTensor(name, arch): return "tensor '\(Echo.value(name))' has no \(Echo.value(arch)) mapping (see formats/architectures/\(Echo.value(arch)).json)"
        case let .badShape(tensor, shape, reason): return "tensor '\(Echo.value(tensor))' \(shape): \(Echo.text(reason))"
        case let .missingTokenizer(reason): return "tokenizer: \(Echo.text(reason))"
        case let .badTokenizer(file, reason): return "\(file): \(Echo.text(reason))"
        }
    }
}
