import TensorGraph

/// How a Hugging Face folder (safetensors + `config.json`) stores its weights: plain floats, or one
/// of the quantized layouts other ecosystems write (MLX, GPTQ, compressed-tensors, AWQ). Each
/// flavour is one type in its own format folder, registered in `FlavourRegistry.all`.
///
/// A flavour translates between its own tensors and a *plain* graph: Hugging Face names, one tensor
/// per weight, each either a float type or a ggml block type (`DType.q4_0`, …) where the flavour's
/// grid is exactly that block type. `Conversion` unpacks a source's flavour and packs the target's,
/// so every move between two flavours (or a flavour and GGUF) goes through the block types, and is
/// exact wherever both ends can say the same numbers.
public protocol FolderFlavour {
    /// The name `inspect` prints and `convert --format` / `quantize --format` take.
    static var name: String { get }
    /// Whether `graph` (read from a folder or safetensors file; its side files under `hf.*`
    /// metadata) is stored in this flavour. Decided from `config.json` and the tensor names.
    static func recognises(_ graph: TensorGraph) -> Bool
    /// The plain graph: every quantized weight one tensor under its float name, as a ggml block
    /// type when `request.keepBlocks` and the grid is one exactly, else decoded to
    /// `request.floatType`. Every weight that changes representation is recorded in `moves`;
    /// `request.exact` refuses a move that is not exact.
    static func unpack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph
    /// A plain graph (float or block-typed tensors, Hugging Face names) stored in this flavour, on
    /// the grid `request` sets (bits, group size, symmetry; the flavour's defaults where unset), its
    /// `config.json` (metadata `hf.config.json`) saying so. Moves recorded as in `unpack`.
    static func pack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph
}

/// What a conversion asks of the flavours (`convert --format --bits --group-size --sym/--asym --exact`).
public struct FlavourRequest: Sendable {
    /// The flavour to write (`FolderFlavour.name`, or `FlavourRegistry.plainName`); `nil` keeps the
    /// source's flavour (plain for GGUF and Ingot sources).
    public var format: String?
    public var bits: Int?
    public var groupSize: Int?
    /// `true` symmetric (`--sym`), `false` asymmetric (`--asym`), `nil` the flavour's default.
    public var symmetric: Bool?
    /// Refuse any move that is not exact (`--exact`).
    public var exact: Bool
    /// Unpacking: whether ggml block types may stand for the flavour's grid (GGUF output, the
    /// evaluator, packing into another flavour); otherwise every weight is decoded to floats.
    public var keepBlocks: Bool
    /// Unpacking: the type of weights decoded to floats (f16 for GGUF output, f32 for evaluation).
    public var floatType: DType
    /// Packing from floats: per weight (Hugging Face name), the importance of each input column
    /// (an importance matrix's mean squared activations), for flavours that search their scales.
    public var importance: [String: [Float]] = [:]

    public init(
        format: String? = nil, bits: Int? = nil, groupSize: Int? = nil, symmetric: Bool? = nil, exact: Bool = false,
        keepBlocks: Bool = true, floatType: DType = .f32
    ) {
        self.format = format
        self.bits = bits
        self.groupSize = groupSize
        self.symmetric = symmetric
        self.exact = exact
        self.keepBlocks = keepBlocks
        self.floatType = floatType
    }

    /// Whether the request sets any part of the grid.
    public var setsGrid: Bool { bits != nil || groupSize != nil || symmetric != nil }
}

/// One weight that changed representation: from what, to what, whether every value stayed the
/// same, and if not, the largest absolute change of a value.
public struct TensorMove: Sendable, Equatable {
    public var tensor: String
    public var from: String
    public var to: String
    public var exact: Bool
    public var maxChange: Double

    public init(tensor: String, from: String, to: String, exact: Bool, maxChange: Double = 0) {
        self.tensor = tensor
        self.from = from
        self.to = to
        self.exact = exact
        self.maxChange = maxChange
    }
}

/// The folder flavours, one line each, and their recognition.
public enum FlavourRegistry {
    /// The name of plain (float) safetensors folders.
    public static let plainName = "hf"

    /// Every quantized flavour, tried in this order by `detect`.
    public static var all: [any FolderFlavour.Type] {
        [
            MLXFlavour.self,
            GPTQFlavour.self,
            CompressedTensorsFlavour.self,
            AWQFlavour.self,
        ]
    }

    /// Every name `--format` accepts.
    public static var names: [String] { [plainName] + all.map { $0.name } }

    /// The flavour called `name`; `nil` for the plain one. Unknown names throw.
    public static func named(_ name: String) throws(FlavourError) -> (any FolderFlavour.Type)? {
        if name == plainName { return nil }
        guard let f = all.first(where: { $0.name == name }) else { throw .unknown(name: name, known: names) }
        return f
    }

    /// The quantized flavour `graph` is stored in, or `nil` for plain floats.
    public static func detect(_ graph: TensorGraph) -> (any FolderFlavour.Type)? {
        all.first { $0.recognises(graph) }
    }

    /// The name of `graph`'s flavour (`plainName` when no quantized flavour recognises it).
    public static func name(of graph: TensorGraph) -> String { detect(graph)?.name ?? plainName }

    /// `config.json` of a graph read from a folder, parsed; `nil` when absent or not JSON.
    public static func config(_ graph: TensorGraph) -> JSONValue? {
        guard let text = graph.metadata[HFFolder.metadataPrefix + "config.json"]?.stringValue else { return nil }
        return try? JSONParser.parse(text)
    }

    /// `config.json` with the top-level `entries` set (replacing keys of the same name in place,
    /// appending new ones) and `removing` keys dropped, written back into `graph`'s metadata.
    public static func updateConfig(
        _ graph: inout TensorGraph, setting entries: [(String, JSONValue)], removing: Set<String> = []
    ) {
        var object = config(graph)?.objectEntries ?? []
        object.removeAll { removing.contains($0.0) }
        for (k, v) in entries {
            if let i = object.firstIndex(where: { $0.0 == k }) { object[i].1 = v } else { object.append((k, v)) }
        }
        graph.metadata[HFFolder.metadataPrefix + "config.json"] = .string(JSONWriter.write(.object(object), indent: 2) + "\n")
    }
}

/// Flavour failures, naming the tensor and the numbers involved.
public enum FlavourError: Error, CustomStringConvertible {
    case unknown(name: String, known: [String])
    /// A tensor (or the config entry describing it) that does not hold together.
    case badTensor(tensor: String, reason: String)
    /// A part a quantized weight needs (scales, biases, zero points) is absent.
    case missingPart(weight: String, missing: String)
    /// `config.json` says something the flavour cannot use.
    case badConfig(reason: String)
    /// `--exact` and a move that changes values.
    case notExact(tensor: String, from: String, to: String, maxChange: Double)
    /// The target grid cannot hold the tensor at all (shape, type).
    case unsupported(tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .unknown(name, known):
            return "unknown folder format '\(Echo.value(name))' (known: \(known.joined(separator: ", ")))"
        case let .badTensor(tensor, reason):
            return "tensor '\(Echo.value(tensor))': \(Echo.text(reason))"
        case let .missingPart(weight, missing):
            return "quantized weight '\(Echo.value(weight))': tensor '\(Echo.value(missing))' is missing"
        case let .badConfig(reason):
            return "config.json: \(Echo.text(reason))"
        case let .notExact(tensor, from, to, maxChange):
            return "tensor '\(Echo.value(tensor))': \(from) → \(to) is not exact (largest change \(maxChange)); --exact refuses it"
        case let .unsupported(tensor, reason):
            return "tensor '\(Echo.value(tensor))': \(Echo.text(reason))"
        }
    }
}
