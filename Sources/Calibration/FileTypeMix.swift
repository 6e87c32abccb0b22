import Architectures
import Formats
import Quantization
import TensorGraph

/// A llama.cpp file type (`Q4_K_M`, `Q6_K`, `IQ4_XS`, `Q4_0`, …): its default block type, its
/// `general.file_type` number, and the per-tensor mix llama-quantize applies — rules over the
/// tensor's role, its position among the tensors of that role, the grouped-query ratio, the row
/// length and whether an importance matrix is used. Each file type is one data file,
/// `formats/recipes/<NAME>.json` (embedded); the row-length fallbacks are
/// `formats/recipes/fallbacks.json`.
public struct FileTypeMix: Sendable {
    /// A tensor's role, as llama-quantize classifies GGUF names.
    public enum Role: String, Sendable, CaseIterable {
        /// `output.weight`, and the token embedding when it is tied to the output (no `output.weight`).
        case output
        /// The token embedding of a model with a separate output head.
        case tokenEmbedding = "token_embd"
        /// Attention value (and fused query/key/value) projections.
        case attnV = "attn_v"
        case attnK = "attn_k"
        case attnQ = "attn_q"
        case attnOutput = "attn_output"
        case ffnDown = "ffn_down"
        case ffnGate = "ffn_gate"
        case ffnUp = "ffn_up"

        /// The role of GGUF tensor `name` (nil: none of these), as llama-quantize's categories
        /// (substring matches, in its order).
        public static func of(_ name: String, tiedEmbedding: Bool) -> Role? {
            if name == "output.weight" { return .output }
            if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { return tiedEmbedding ? .output : .tokenEmbedding }
            if name.contains("attn_qkv.weight") || name.contains("attn_kv_b.weight") || name.contains("attn_v.weight") { return .attnV }
            if name.contains("attn_k.weight") { return .attnK }
            if name.contains("attn_q.weight") { return .attnQ }
            if name.contains("attn_output.weight") { return .attnOutput }
            if name.contains("ffn_up") { return .ffnUp }
            if name.contains("ffn_gate") { return .ffnGate }
            if name.contains("ffn_down") { return .ffnDown }
            return nil
        }
    }

    /// Which positions among a role's tensors a rule covers (i the position, n the count).
    public enum Layers: Sendable, Equatable {
        /// llama.cpp's `use_more_bits`: i < n/8, i ≥ 7n/8, or every third from n/8 on.
        case moreBits
        /// i < n / `denominator`.
        case firstFraction(Int)
        /// n/8 ≤ i < 7n/8.
        case middle
        /// i < count.
        case first(Int)

        public func contains(_ i: Int, _ n: Int) -> Bool {
            switch self {
            case .moreBits: return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
            case let .firstFraction(d): return i < n / d
            case .middle: return i >= n / 8 && i < 7 * n / 8
            case let .first(c): return i < c
            }
        }
    }

    public struct Rule: Sendable {
        public var role: Role
        public var layers: Layers?
        /// Whether the row length must (true) or must not (false) divide into the default type's blocks.
        public var rowFitsDefault: Bool?
        /// At least this many query heads per key/value head.
        public var gqaAtLeast: Int?
        /// Whether an importance matrix must (true) or must not (false) be in use.
        public var imatrix: Bool?
        /// Whether the tensor must (true) or must not (false) hold several experts (3-D with more
        /// than one along the outermost dimension: llama-quantize's `ne[2] > 1`).
        public var experts: Bool? = nil
        public var type: DType
        public var why: String?
    }

    /// What the rules look at besides the tensor: counts over the whole model.
    public struct Context: Sendable {
        public var tiedEmbedding: Bool
        /// Tensors per role, and the block count (llama-quantize's n for the feed-forward roles).
        public var roleCounts: [Role: Int]
        public var blockCount: Int?
        public var gqa: Int
        public var hasImatrix: Bool

        public init(tensors: [Tensor], hyperparameters: Hyperparameters, hasImatrix: Bool) {
            tiedEmbedding = !tensors.contains { $0.name == "output.weight" }
            var counts: [Role: Int] = [:]
            for t in tensors { if let r = Role.of(t.name, tiedEmbedding: tiedEmbedding) { counts[r, default: 0] += 1 } }
            roleCounts = counts
            blockCount = hyperparameters.blockCount
            let heads = hyperparameters.headCount ?? 1, kv = hyperparameters.headCountKV ?? heads
            gqa = kv > 0 ? heads / kv : 1
            self.hasImatrix = hasImatrix
        }

        /// n for a role's positions.
        func count(_ role: Role) -> Int {
            switch role {
            case .ffnDown, .ffnGate, .ffnUp: return blockCount ?? roleCounts[role] ?? 0
            default: return roleCounts[role] ?? 0
            }
        }
    }

    public let name: String
    public let aliases: [String]
    /// `general.file_type` (llama_ftype).
    public let fileType: UInt32
    /// The block type most tensors get.
    public let defaultType: DType
    /// Whether the mix applies without `--exact-ggml` (the legacy types stay pure by default).
    public let mixByDefault: Bool
    public let rules: [Rule]
    public let about: String?

    /// The type this mix gives a tensor of `role` at position `index` among that role's tensors,
    /// with rows of `rowLength` (`experts`: it holds several experts), and the rule that decided
    /// (nil: the default type).
    public func decide(role: Role?, index: Int, rowLength: Int, experts: Bool = false, context: Context) -> (DType, Rule?) {
        guard let role else { return (defaultType, nil) }
        for r in rules where r.role == role {
            if let e = r.experts, e != experts { continue }
            if let l = r.layers, !l.contains(index, context.count(role)) { continue }
            if let f = r.rowFitsDefault, (rowLength % defaultType.blockSize == 0) != f { continue }
            if let g = r.gqaAtLeast, context.gqa < g { continue }
            if let m = r.imatrix, m != context.hasImatrix { continue }
            return (r.type, r)
        }
        return (defaultType, nil)
    }

    // MARK: - The tables

    /// The file types, from `formats/recipes/*.json` (embedded), in file-type order.
    public static let all: [FileTypeMix] = {
        // The embedded tables are checked by the tests; a parse failure is a build defect.
        FormatTables.paths(in: "recipes/").compactMap { path -> FileTypeMix? in
            let text = FormatTables.text(path)!
            guard text.contains("\"file_type\"") else { return nil }  // user recipes and the fallback table
            return try! parse(text, origin: path)
        }.sorted { $0.fileType < $1.fileType }
    }()

    /// The file type called `name` (either case; aliases such as `Q4_K` for `Q4_K_M` included).
    public static func named(_ name: String) -> FileTypeMix? {
        let u = name.uppercased()
        return all.first { $0.name == u || $0.aliases.contains(u) }
    }

    /// Every name `named` accepts.
    public static var names: [String] { all.flatMap { [$0.name] + $0.aliases } }

    /// A type → the type llama-quantize uses when rows do not divide into its blocks.
    public static let fallbacks: [DType: DType] = {
        let json = try! JSONParser.parse(FormatTables.text("recipes/fallbacks.json")!)
        var out: [DType: DType] = [:]
        for (k, v) in json["fallbacks"]!.objectEntries! { out[DType(name: k)!] = DType(name: v.stringValue!)! }
        return out
    }()

    /// `want`, or its fallbacks, for a tensor of `shape`: the first that divides the rows (with the
    /// fallbacks that were needed, in order); nil when none does.
    public static func fitting(_ want: DType, shape: [Int]) -> (type: DType, via: [DType])? {
        let row = shape.last ?? 0
        var t = want, via: [DType] = []
        while true {
            if !t.isQuantized || (shape.count >= 2 && row > 0 && row % t.blockSize == 0) { return (t, via) }
            guard shape.count >= 2, let next = fallbacks[t] else { return nil }
            via.append(t)
            t = next
        }
    }

    public static func parse(_ text: String, origin: String) throws -> FileTypeMix {
        func bad(_ reason: String) -> CalibrationError { .badRecipe(path: origin, reason: reason) }
        let json: JSONValue
        do { json = try JSONParser.parse(text) } catch { throw bad("\(error)") }
        guard let name = json["name"]?.stringValue, let ft = json["file_type"]?.intValue, ft >= 0,
              let typeName = json["type"]?.stringValue, let type = DType(name: typeName), Quantize.isSupported(type)
        else { throw bad("expected \"name\", \"file_type\" and \"type\" (a type smelt encodes)") }
        var rules: [Rule] = []
        for (i, item) in (json["rules"]?.arrayValue ?? []).enumerated() {
            guard let roleName = item["role"]?.stringValue, let role = Role(rawValue: roleName) else {
                throw bad("rule \(i): \"role\" must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let tn = item["type"]?.stringValue, let t = DType(name: tn), Quantize.isSupported(t) || t == .f16 || t == .f32 else {
                throw bad("rule \(i) (\(roleName)): missing or unknown \"type\"")
            }
            var layers: Layers?
            if let l = item["layers"], !l.isNull {
                switch l.stringValue {
                case "more_bits": layers = .moreBits
                case "first_eighth": layers = .firstFraction(8)
                case "first_sixteenth": layers = .firstFraction(16)
                case "middle": layers = .middle
                default:
                    guard let n = l["first"]?.intValue, n >= 0 else {
                        throw bad("rule \(i) (\(roleName)): \"layers\" must be more_bits, first_eighth, first_sixteenth, middle or {\"first\": N}")
                    }
                    layers = .first(n)
                }
            }
            for key in item.objectEntries?.map(\.0) ?? []
            where !["role", "type", "layers", "row_fits_default", "gqa_at_least", "imatrix", "experts", "why"].contains(key) {
                throw bad("rule \(i) (\(roleName)): unknown key \"\(key)\"")
            }
            rules.append(Rule(
                role: role, layers: layers, rowFitsDefault: item["row_fits_default"]?.boolValue,
                gqaAtLeast: item["gqa_at_least"]?.intValue, imatrix: item["imatrix"]?.boolValue,
                experts: item["experts"]?.boolValue, type: t, why: item["why"]?.stringValue))
        }
        return FileTypeMix(
            name: name.uppercased(), aliases: (json["aliases"]?.arrayValue ?? []).compactMap { $0.stringValue?.uppercased() },
            fileType: UInt32(ft), defaultType: type, mixByDefault: json["mix_by_default"]?.boolValue ?? true, rules: rules,
            about: json["about"]?.stringValue)
    }

    /// A mix of one type and no rules (`--pure`, or a block type named directly).
    public static func pure(_ type: DType, fileType: UInt32?) -> FileTypeMix {
        FileTypeMix(name: type.displayName, aliases: [], fileType: fileType ?? UInt32.max, defaultType: type,
                    mixByDefault: false, rules: [], about: nil)
    }
}

extension FileTypeMix {
    /// One row of a model's mix: a role (or `other`), its tensors by type, parameters and bytes.
    public struct RoleSummary: Sendable {
        public let role: String
        public let types: [(type: DType, tensors: Int)]
        public let tensors: Int
        public let parameters: Int
        public let bytes: Int
        public var bitsPerWeight: Double { parameters > 0 ? Double(bytes) * 8 / Double(parameters) : 0 }
    }

    /// The mix of `graph`'s tensors by role (llama-quantize's categories, in `Role` order, then
    /// `other`), the file type its `general.file_type` names, and its bits per weight overall.
    public static func summary(of graph: TensorGraph) -> (fileType: String?, bitsPerWeight: Double, roles: [RoleSummary]) {
        let tied = !graph.tensors.contains { $0.name == "output.weight" }
        var groups: [String: [Tensor]] = [:]
        for t in graph.tensors { groups[Role.of(t.name, tiedEmbedding: tied)?.rawValue ?? "other", default: []].append(t) }
        let order = Role.allCases.map(\.rawValue) + ["other"]
        let roles = order.compactMap { name -> RoleSummary? in
            guard let ts = groups[name] else { return nil }
            var byType: [DType: Int] = [:]
            for t in ts { byType[t.dtype, default: 0] += 1 }
            let types = byType.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }
                .map { (type: $0.key, tensors: $0.value) }
            return RoleSummary(
                role: name, types: types, tensors: ts.count, parameters: ts.reduce(0) { $0 + $1.elementCount },
                bytes: ts.reduce(0) { $0 + $1.byteCount })
        }
        var fileType: String?
        if case let .uint32(ft)? = graph.metadata["general.file_type"] {
            fileType = all.first { $0.fileType == ft }?.name ?? (ft == 0 ? "F32" : ft == 1 ? "F16" : "file type \(ft)")
        }
        let params = graph.parameterCount
        return (fileType, params > 0 ? Double(graph.totalBytes) * 8 / Double(params) : 0, roles)
    }
}
