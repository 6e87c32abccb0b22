import TensorGraph

/// AWQ GEMM as a folder flavour: read only (`quant_method: "awq"` and `*.qweight`), through
/// `AWQ.lift`; `convert --format` does not offer it.
public enum AWQFlavour: FolderFlavour {
    public static let name = "awq"

    public static func recognises(_ graph: TensorGraph) -> Bool {
        PackedCheckpoint.settings(graph)?.method == "awq" && graph.tensors.contains { $0.name.hasSuffix(".qweight") }
    }

    public static func unpack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        guard let (_, settings) = PackedCheckpoint.settings(graph) else { throw FlavourError.badConfig(reason: "no quantization_config") }
        return try PackedFlavourSupport.unpack(try AWQ.lift(graph, settings: settings), request, moves: &moves)
    }

    public static func pack(_ graph: TensorGraph, _ request: FlavourRequest, moves: inout [TensorMove]) throws -> TensorGraph {
        throw FlavourError.badConfig(reason: "AWQ checkpoints are read, not written (write gptq or compressed-tensors instead)")
    }
}
