import Architectures
import Foundation
import Formats
import Quantization
import TensorGraph

#if canImport(Glibc)
import Glibc
#endif

/// Which tensors are quantized and to what: ordered rules over GGUF tensor names, the first match
/// deciding. The built-in recipe is data (`formats/quant-recipe.json`, embedded in the binary);
/// a user's recipe file has the same layout and its rules come first; `--keep PATTERN` rules
/// (keep as F32) come before everything.
public struct QuantRecipe: Sendable {
    /// What a rule asks for.
    public enum Target: Sendable, Equatable, CustomStringConvertible {
        /// The requested type (or F32 when rows do not divide into its blocks).
        case requested
        /// A fixed type: f32, f16 or a block type with an encoder.
        case fixed(DType)

        public var description: String {
            switch self {
            case .requested: return "requested"
            case let .fixed(t): return t.rawValue
            }
        }
    }

    public struct Rule: Sendable {
        public var pattern: String
        public var dims: Int?
        public var target: Target
        public var why: String?
        /// Where the rule comes from (`built-in`, a recipe path, `--keep`).
        public var origin: String

        public init(pattern: String, dims: Int? = nil, target: Target, why: String? = nil, origin: String) {
            self.pattern = pattern
            self.dims = dims
            self.target = target
            self.why = why
            self.origin = origin
        }

        public func matches(name: String, dims d: Int) -> Bool {
            if let dims, dims != d { return false }
            return QuantRecipe.glob(pattern, name)
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule]) { self.rules = rules }

    /// The built-in recipe (`formats/quant-recipe.json`).
    public static func builtIn() -> QuantRecipe {
        // The embedded table is checked by the tests; a parse failure is a build defect.
        try! parse(FormatTables.text("quant-recipe.json")!, origin: "built-in")
    }

    /// Reads a recipe file.
    public static func read(_ path: String) throws -> QuantRecipe {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CalibrationError.badRecipe(path: path, reason: "cannot read the file")
        }
        return try parse(String(decoding: data, as: UTF8.self), origin: path)
    }

    /// Parses a recipe: `{"rules": [{"pattern": GLOB, "dims": N?, "type": T, "why": TEXT?}, …]}`.
    public static func parse(_ text: String, origin: String) throws -> QuantRecipe {
        let json: JSONValue
        do { json = try JSONParser.parse(text) } catch { throw CalibrationError.badRecipe(path: origin, reason: "\(error)") }
        guard let list = json["rules"]?.arrayValue else {
            throw CalibrationError.badRecipe(path: origin, reason: "expected an object with a \"rules\" array")
        }
        var rules: [Rule] = []
        for (i, item) in list.enumerated() {
            guard let pattern = item["pattern"]?.stringValue, !pattern.isEmpty else {
                throw CalibrationError.badRecipe(path: origin, reason: "rule \(i): missing \"pattern\"")
            }
            guard let typeName = item["type"]?.stringValue else {
                throw CalibrationError.badRecipe(path: origin, reason: "rule \(i) (\(pattern)): missing \"type\"")
            }
            let target = try parseTarget(typeName, origin: origin, rule: i)
            var dims: Int?
            if let d = item["dims"], !d.isNull {
                guard let v = d.intValue, v >= 1 else {
                    throw CalibrationError.badRecipe(path: origin, reason: "rule \(i) (\(pattern)): \"dims\" must be a positive integer")
                }
                dims = v
            }
            for key in item.objectEntries?.map(\.0) ?? [] where !["pattern", "dims", "type", "why"].contains(key) {
                throw CalibrationError.badRecipe(path: origin, reason: "rule \(i) (\(pattern)): unknown key \"\(key)\"")
            }
            rules.append(Rule(pattern: pattern, dims: dims, target: target, why: item["why"]?.stringValue, origin: origin))
        }
        return QuantRecipe(rules: rules)
    }

    static func parseTarget(_ name: String, origin: String, rule: Int) throws -> Target {
        if name.lowercased() == "requested" { return .requested }
        guard let t = DType(name: name), t == .f32 || t == .f16 || Quantize.isSupported(t) else {
            let known = ["requested", "f32", "f16"] + Quantize.supportedTypes.map { $0.rawValue }
            throw CalibrationError.badRecipe(
                path: origin, reason: "rule \(rule): type '\(name)' is not one of \(known.joined(separator: ", "))")
        }
        return .fixed(t)
    }

    /// This recipe with `other`'s rules in front.
    public func overridden(by other: QuantRecipe) -> QuantRecipe { QuantRecipe(rules: other.rules + rules) }

    /// This recipe with rules keeping every name matching `patterns` as F32, in front.
    public func keeping(_ patterns: [String]) -> QuantRecipe {
        QuantRecipe(rules: patterns.map { Rule(pattern: $0, target: .fixed(.f32), why: "--keep", origin: "--keep") } + rules)
    }

    /// The decision for one tensor.
    public struct Decision: Sendable {
        public let dtype: DType
        /// The rule that decided (nil: no rule matched, the tensor is kept as F32).
        public let rule: Rule?
        /// Why the requested type was not used, when it was not (a fallback, F16 or F32).
        public let note: String?
        /// Why the file type's mix chose this type for the tensor, when one of its rules did.
        public var mix: String? = nil
    }

    /// The type `tensor` gets when `requested` is asked for. Tensors whose type is neither float
    /// nor decodable (integers) are left as they are.
    public func decide(_ tensor: Tensor, requested: DType, exactGGML: Bool = false) -> Decision {
        decide(tensor, exactGGML: exactGGML) { _ in (requested, nil) }
    }

    /// The type `tensor` gets, `resolve` giving the requested type for it (a file type's mix) and
    /// why. A type whose blocks do not divide the rows takes its fallbacks
    /// (`FileTypeMix.fallbacks`); when none fits, F16 with `exactGGML` (llama-quantize's last
    /// resort), F32 otherwise.
    public func decide(_ tensor: Tensor, exactGGML: Bool = false, resolve: (Tensor) -> (DType, String?)) -> Decision {
        let floatLike = tensor.dtype.isFloat || tensor.dtype.isQuantized
        guard floatLike else { return Decision(dtype: tensor.dtype, rule: nil, note: "not a float tensor") }
        guard let rule = rules.first(where: { $0.matches(name: tensor.name, dims: tensor.shape.count) }) else {
            return Decision(dtype: .f32, rule: nil, note: nil)
        }
        let want: DType
        var why: String?
        switch rule.target {
        case .requested: (want, why) = resolve(tensor)
        case let .fixed(t): want = t
        }
        guard want.isQuantized else { return Decision(dtype: want, rule: rule, note: nil, mix: why) }
        let row = tensor.shape.last ?? 0
        if let fit = FileTypeMix.fitting(want, shape: tensor.shape) {
            guard let first = fit.via.first else { return Decision(dtype: want, rule: rule, note: nil, mix: why) }
            return Decision(
                dtype: fit.type, rule: rule,
                note: "row length \(row) is not a multiple of \(first.displayName)'s block of \(first.blockSize): fallback "
                    + (fit.via.dropFirst().map(\.displayName) + [fit.type.displayName]).joined(separator: " → "),
                mix: why)
        }
        let last: DType = exactGGML && tensor.shape.count >= 2 ? .f16 : .f32
        return Decision(
            dtype: last, rule: rule,
            note: tensor.shape.count < 2
                ? "a \(tensor.shape.count)-D tensor cannot take \(want.displayName): \(last.displayName)"
                : "row length \(row) is not a multiple of \(want.displayName)'s block of \(want.blockSize) (nor its fallbacks'): \(last.displayName)",
            mix: why)
    }

    /// Shell-style glob match (`*`, `?`, `[...]`) of the whole name.
    public static func glob(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
