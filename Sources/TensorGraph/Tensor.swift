/// One named tensor. `shape` is outermost dimension first (the PyTorch/safetensors order); GGUF's
/// reversed `ne` order is converted at the GGUF reader and writer.
public struct Tensor: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var storage: any TensorStorage

    /// Builds a tensor, checking that the storage holds exactly `dtype.byteCount(shape)` bytes.
    public init(name: String, dtype: DType, shape: [Int], storage: any TensorStorage) throws {
        let expected: Int
        do { expected = try dtype.byteCount(shape: shape) } catch {
            throw GraphError.badTensor(name: name, reason: error.description)
        }
        guard expected == storage.byteCount else {
            throw GraphError.badTensor(
                name: name,
                reason: "\(dtype.displayName) \(shape) needs \(expected) bytes, its storage has \(storage.byteCount)")
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { storage.byteCount }
}

/// Errors about the graph itself.
public enum GraphError: Error, CustomStringConvertible {
    case badTensor(name: String, reason: String)
    case duplicateTensor(name: String)
    case unsupportedCast(name: String, from: DType, to: DType)

    public var description: String {
        switch self {
        case let .badTensor(name, reason): return "tensor '\(Echo.value(name))': \(Echo.text(reason))"
        case let .duplicateTensor(name): return "tensor '\(Echo.value(name))' appears more than once"
        case let .unsupportedCast(name, from, to):
            return "tensor '\(Echo.value(name))': cannot cast \(from.displayName) to \(to.displayName)"
        }
    }
}
