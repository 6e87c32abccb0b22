import Formats
import Quantization
import TensorGraph

/// Decides what a conversion between two formats does to the graph, so the CLI only wires:
/// Hugging Face → GGUF and GGUF → Hugging Face go through the architecture tables; conversions
/// within a family only cast.
public enum Conversion {
    /// `graph`, read as `source`, made ready for a writer of `target`. `dtype` casts float tensors
    /// (and is the dequantization target when values must leave a block type).
    /// A model whose architecture has no unit (a Hugging Face folder whose `model_type`, or a GGUF
    /// whose `general.architecture`, the registry does not know) cannot change sides: that is
    /// `ArchitectureError.unsupported`, naming it and the supported ones, unless `container` asks
    /// for the tensors under their own names and layouts (a container file llama.cpp will not
    /// run), which `note` then hears about. A graph that states no architecture at all (a bare
    /// safetensors file, a GGUF without `general.architecture`) is a plain tensor container and
    /// converts as one.
    public static func prepare(
        _ graph: TensorGraph, from source: ModelFormat, to target: ModelFormat, dtype: DType?,
        container: Bool = false, note: (String) -> Void = { _ in }
    ) throws -> TensorGraph {
        var moves: [TensorMove] = []
        return try prepare(graph, from: source, to: target, dtype: dtype, container: container, flavour: nil, moves: &moves, note: note)
    }

    /// As above, with the folder flavours (`Formats/Flavours`): a quantized source folder is
    /// unpacked first (its grid kept as ggml block types where one matches exactly, for GGUF
    /// output or another flavour; decoded to `flavour.floatType` otherwise), and a folder output is
    /// packed into `flavour.format` (default: the source's flavour; plain for GGUF and Ingot
    /// sources). Every weight that changes representation is recorded in `moves`.
    public static func prepare(
        _ graph: TensorGraph, from source: ModelFormat, to target: ModelFormat, dtype: DType?,
        container: Bool = false, flavour request: FlavourRequest?, moves: inout [TensorMove],
        note: (String) -> Void = { _ in }
    ) throws -> TensorGraph {
        let hfSide: Set<ModelFormat> = [.safetensors, .hfFolder]
        // An Ingot holds the source's graph as it is, flavour included.
        if target == .ingot { return try prepare(graph, from: source, to: target, dtype: dtype, keepBlocks: false, container: container, note: note) }
        let request = request ?? FlavourRequest(floatType: dtype ?? (target == .gguf ? .f16 : .f32))
        let sourceFlavour = hfSide.contains(source) ? FlavourRegistry.detect(graph) : nil
        let targetFlavour: (any FolderFlavour.Type)?
        if hfSide.contains(target) {
            targetFlavour = try request.format.map { try FlavourRegistry.named($0) } ?? sourceFlavour
        } else {
            targetFlavour = nil
        }
        // The same flavour on both sides with no new grid: the tensors stay as they are.
        if let s = sourceFlavour, let t = targetFlavour, s == t, !request.setsGrid, dtype == nil {
            return graph
        }
        var graph = graph
        if let s = sourceFlavour {
            var r = request
            r.keepBlocks = target == .gguf || targetFlavour != nil
            graph = try s.unpack(graph, r, moves: &moves)
        }
        if let t = targetFlavour {
            var plain = try prepare(graph, from: source, to: target, dtype: dtype, keepBlocks: true, container: container, note: note)
            plain = try t.pack(plain, request, moves: &moves)
            return plain
        }
        return try prepare(graph, from: source, to: target, dtype: dtype, keepBlocks: false, container: container, note: note)
    }

    /// The conversion proper on a plain graph; `keepBlocks` keeps the block types a flavour can
    /// take exactly (Q4_0, Q4_1, Q8_0, MXFP4) when going from GGUF to a folder.
    static func prepare(
        _ graph: TensorGraph, from source: ModelFormat, to target: ModelFormat, dtype: DType?, keepBlocks: Bool,
        container: Bool, note: (String) -> Void
    ) throws -> TensorGraph {
        let hfSide: Set<ModelFormat> = [.safetensors, .hfFolder]
        if hfSide.contains(source), target == .gguf, graph.metadata[HFFolder.metadataPrefix + "config.json"] != nil {
            if !container, (try? ArchitectureRegistry.spec(hfModelType: graph.architecture)) != nil {
                return try HFToGGUF.convert(graph, dtype: dtype)
            }
            guard container else {
                // config.json without model_type names the key; an unknown one names the type.
                guard let type = graph.architecture else { throw ArchitectureError.missingConfig(key: "model_type", architecture: "config.json") }
                throw ArchitectureError.unsupported(architecture: type, supported: ArchitectureRegistry.hfModelTypes)
            }
            note("container conversion of architecture '\(graph.architecture ?? "(not stated)")': "
                + "tensor names and layouts are kept as they are (a GGUF that llama.cpp will not run)")
        }
        if source == .gguf, hfSide.contains(target), let arch = graph.architecture, !container {
            guard ArchitectureRegistry.names.contains(arch) else {
                throw ArchitectureError.unsupported(architecture: arch, supported: ArchitectureRegistry.names)
            }
            return try GGUFToHF.convert(graph, dtype: dtype, keepBlocks: keepBlocks ? GGUFToHF.flavourBlockTypes : [])
        }
        var out = graph
        if let dtype {
            // Every float and block-typed tensor to `dtype`; for GGUF, 1-D tensors (norms, biases)
            // to f32 as llama.cpp keeps them.
            try out.mapTensors { t in
                let want = target == .gguf && t.shape.count <= 1 ? DType.f32 : dtype
                if t.dtype.isQuantized { return try t.dequantized(to: want) }
                return Tensor.castableTypes.contains(t.dtype) ? try t.cast(to: want) : t
            }
        } else if hfSide.contains(target) && !keepBlocks {
            // safetensors cannot hold block types: their values go to f32.
            try out.mapTensors { t in t.dtype.isQuantized ? try t.dequantized(to: .f32) : t }
        }
        if target == .gguf { GGUFMetadata.apply(to: &out) }
        return out
    }
}
