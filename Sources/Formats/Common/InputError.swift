import TensorGraph

/// An error about a model input that its message did not place: stages after reading (conversion
/// tables, the tokenizer files a folder carried) know the graph but not where it came from, so a
/// command wraps them with the input's path (the folder, for a Hugging Face folder).
public struct InputError: Error, CustomStringConvertible {
    public let path: String
    public let underlying: any Error

    public var description: String { "\(Echo.path(path)): \(underlying)" }

    /// Runs `body`, giving errors whose message does not start with `path` the path in front.
    public static func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            if error is InputError || "\(error)".hasPrefix(Echo.path(path)) { throw error }
            throw InputError(path: path, underlying: error)
        }
    }
}
