import TensorGraph

/// What GPTQ, compressed-tensors and AWQ checkpoints share: integer codes packed into 32-bit
/// words, per-group scales and zero points beside them, and a `quantization_config` in
/// `config.json`. Helpers to read those tensors as numbers and check their shapes, with errors
/// naming the folder and tensor.
public enum PackedCheckpoint {
    /// The `config.json` key the quantized flavours keep their settings under.
    public static let configKey = "quantization_config"
    /// Bit widths whose codes pack whole into 32-bit words (32 / bits codes per word).
    public static let packableBits: Set<Int> = [2, 4, 8]

    /// The tensor `name`, or an error saying which tensor needed it.
    static func require(_ graph: TensorGraph, _ name: String, dir: String, for user: String) throws(PackedCheckpointError) -> Tensor {
        guard let t = graph[name] else { throw .missingTensor(dir: dir, tensor: name, neededBy: user) }
        return t
    }

    /// The `qweight`, `qzeros` and `scales` of one layer (GPTQ and AWQ name them alike): words for the
    /// first two, floats for the scales, all 2-D; an error names the folder and tensor otherwise.
    static func requireQWeightSet(_ graph: TensorGraph, prefix: String, dir: String)
        throws(PackedCheckpointError) -> (qweight: Tensor, qzeros: Tensor, scales: Tensor)
    {
        let qweightName = prefix + ".qweight"
        let qweight = try require(graph, qweightName, dir: dir, for: qweightName)
        let qzeros = try require(graph, prefix + ".qzeros", dir: dir, for: qweightName)
        let scales = try require(graph, prefix + ".scales", dir: dir, for: qweightName)
        for t in [qweight, qzeros] {
            try checkDType(t, wordTypes, dir: dir)
            try checkRank2(t, dir: dir)
        }
        try checkDType(scales, floatTypes, dir: dir)
        try checkRank2(scales, dir: dir)
        return (qweight, qzeros, scales)
    }

    static func checkDType(_ t: Tensor, _ allowed: Set<DType>, dir: String) throws(PackedCheckpointError) {
        guard allowed.contains(t.dtype) else {
            throw .badDType(dir: dir, tensor: t.name, dtype: t.dtype, expected: allowed.map(\.displayName).sorted())
        }
    }

    static func checkRank2(_ t: Tensor, dir: String) throws(PackedCheckpointError) {
        guard t.shape.count == 2 else { throw .badShape(dir: dir, tensor: t.name, shape: t.shape, expected: "a 2-D tensor") }
    }

    /// A 32-bit word tensor (I32 or U32) as unsigned words.
    static func words(_ t: Tensor) throws -> [UInt32] {
        let bytes = try t.storage.readAll()
        return [UInt32](unsafeUninitializedCapacity: bytes.count / 4) { buf, n in
            bytes.withUnsafeBytes { raw in
                for i in 0..<(bytes.count / 4) { buf[i] = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
            }
            n = bytes.count / 4
        }
    }

    /// A float tensor (F16, BF16, F32) as f32 values (exact).
    static func floats(_ t: Tensor) throws -> [Float] {
        let bytes = try t.storage.readAll()
        let n = t.elementCount
        return [Float](unsafeUninitializedCapacity: n) { buf, count in
            bytes.withUnsafeBytes { raw in
                for i in 0..<n {
                    switch t.dtype {
                    case .f16: buf[i] = Half.f32(f16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                    case .bf16: buf[i] = Half.f32(bf16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                    default: buf[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                    }
                }
            }
            count = n
        }
    }

    /// An integer tensor (I8, I16, I32, I64, U8) as Int values.
    static func integers(_ t: Tensor) throws -> [Int] {
        let bytes = try t.storage.readAll()
        let n = t.elementCount
        return bytes.withUnsafeBytes { raw in
            (0..<n).map { i -> Int in
                switch t.dtype {
                case .i8: return Int(raw.loadUnaligned(fromByteOffset: i, as: Int8.self))
                case .u8: return Int(raw[i])
                case .i16: return Int(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
                case .i32: return Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
                default: return Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
                }
            }
        }
    }

    static let floatTypes: Set<DType> = [.f16, .bf16, .f32]
    static let wordTypes: Set<DType> = [.i32, .u32]
    static let indexTypes: Set<DType> = [.i32, .i64, .i16]

    /// AutoGPTQ's side file: the GPTQ settings of folders written before they moved into
    /// `config.json` (`bits`, `group_size`, `desc_act`, `sym`, and in later versions `quant_method`
    /// and `checkpoint_format`).
    public static let autoGPTQFile = "quantize_config.json"

    /// The settings object of a graph's `config.json` (`quantization_config`) and its `quant_method`;
    /// without one, AutoGPTQ's `quantize_config.json` (its method `gptq` unless it names another).
    /// Whether the two agree when both exist is the GPTQ reader's check (`GPTQ.settingsObject`).
    public static func settings(_ graph: TensorGraph) -> (method: String, settings: JSONValue)? {
        if let q = FlavourRegistry.config(graph)?[configKey] {
            guard let method = q["quant_method"]?.stringValue else { return nil }
            return (method.lowercased(), q)
        }
        guard let q = autoGPTQConfig(graph), q["bits"] != nil else { return nil }
        return ((q["quant_method"]?.stringValue ?? "gptq").lowercased(), q)
    }

    /// `quantize_config.json` of a graph read from a folder, parsed; `nil` when absent or not an object.
    static func autoGPTQConfig(_ graph: TensorGraph) -> JSONValue? {
        guard let text = graph.metadata[HFFolder.metadataPrefix + autoGPTQFile]?.stringValue,
            let q = try? JSONParser.parse(text), q.objectEntries != nil
        else { return nil }
        return q
    }

    /// The graph with the lifted tensors in place of the packed ones (`nil` entries dropped).
    static func replacing(_ graph: TensorGraph, _ packed: [String: Tensor?]) throws -> TensorGraph {
        var kept: [Tensor] = []
        for t in graph.tensors {
            if let entry = packed[t.name] {
                if let lifted = entry { kept.append(lifted) }
            } else {
                kept.append(t)
            }
        }
        return try TensorGraph(
            architecture: graph.architecture, hyperparameters: graph.hyperparameters, metadata: graph.metadata,
            tokenizer: graph.tokenizer, tensors: kept)
    }
}

/// A quantized checkpoint that does not hold together, naming the folder and the tensor.
public enum PackedCheckpointError: Error, CustomStringConvertible {
    case missingTensor(dir: String, tensor: String, neededBy: String)
    case badDType(dir: String, tensor: String, dtype: DType, expected: [String])
    case badShape(dir: String, tensor: String, shape: [Int], expected: String)
    /// The packed width disagrees with the bit width and the shape the other tensors give.
    case packedWidth(dir: String, tensor: String, shape: [Int], bits: Int, expected: String)
    case groupSize(dir: String, tensor: String, columns: Int, groupSize: Int)
    case groupCount(dir: String, tensor: String, columns: Int, groupSize: Int, groups: Int, found: Int)
    case groupIndexOutOfRange(dir: String, tensor: String, column: Int, value: Int, groups: Int)
    case badSetting(dir: String, key: String, value: String, reason: String)
    case orphan(dir: String, tensor: String, missing: String)
    case unmatchedModule(dir: String, module: String)
    /// `config.json`'s `quantization_config` and `quantize_config.json` set `key` differently.
    case conflictingSettings(dir: String, key: String, config: String, quantizeConfig: String)

    /// The folder in front of the message, when the error knows it (the CLI adds the input path
    /// through `InputError` otherwise).
    static func at(_ dir: String) -> String { dir.isEmpty ? "" : Echo.path(dir) + ": " }

    public var description: String {
        switch self {
        case let .missingTensor(dir, tensor, user):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))' is missing (needed by '\(Echo.value(user))')"
        case let .badDType(dir, tensor, dtype, expected):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))' is \(dtype.displayName), expected \(expected.joined(separator: " or "))"
        case let .badShape(dir, tensor, shape, expected):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))' has shape \(shape), expected \(expected)"
        case let .packedWidth(dir, tensor, shape, bits, expected):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))' has shape \(shape), which disagrees with \(bits)-bit codes packed 32 / \(bits) = \(32 / max(1, bits)) to a word: expected \(expected)"
        case let .groupSize(dir, tensor, columns, groupSize):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))': group size \(groupSize) does not divide its \(columns) input columns"
        case let .groupCount(dir, tensor, columns, groupSize, groups, found):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))': group size \(groupSize) over \(columns) input columns makes \(groups) groups, but it holds \(found)"
        case let .groupIndexOutOfRange(dir, tensor, column, value, groups):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))': column \(column) names group \(value), but there are \(groups) groups (0..<\(groups))"
        case let .badSetting(dir, key, value, reason):
            return "\(Self.at(dir))quantization_config \(Echo.value(key)) = \(Echo.value(value)): \(Echo.text(reason))"
        case let .orphan(dir, tensor, missing):
            return "\(Self.at(dir))tensor '\(Echo.value(tensor))' has no '\(Echo.value(missing))' beside it"
        case let .unmatchedModule(dir, module):
            return "\(Self.at(dir))quantized module '\(Echo.value(module))' matches no config_groups target"
        case let .conflictingSettings(dir, key, config, quantizeConfig):
            return "\(Self.at(dir))config.json quantization_config \(Echo.value(key)) = \(Echo.value(config)), but \(PackedCheckpoint.autoGPTQFile) \(Echo.value(key)) = \(Echo.value(quantizeConfig)): the two files disagree (fix or remove one)"
        }
    }
}

/// Unpacking codes from 32-bit words, `32 / bits` codes to a word, the first in the lowest bits.
enum WordPacking {
    /// Code `k` of `word` (`k` < 32 / bits).
    @inline(__always)
    static func code(_ word: UInt32, _ k: Int, bits: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (word >> UInt32(k * bits)) & ((1 << UInt32(bits)) - 1))
    }

    /// Packs `codes` (each < 2^bits) into words, the first code in the lowest bits.
    static func pack(_ codes: UnsafeBufferPointer<UInt8>, bits: Int) -> [UInt32] {
        let per = 32 / bits
        let n = (codes.count + per - 1) / per
        var out = [UInt32](repeating: 0, count: n)
        for i in 0..<codes.count { out[i / per] |= UInt32(codes[i]) << UInt32((i % per) * bits) }
        return out
    }
}
