import Quantization
import TensorGraph

/// A model's weights in GGUF layout, handed to the forward pass as f32 one matrix at a time:
/// f32 tensors in a mapped file are used in place; anything else (f16, bf16, block types, lazily
/// permuted tensors) is decoded into a buffer that lives only while the caller uses it, so memory
/// stays near the stored model size plus one matrix (large matrices: one tile of rows at a time,
/// `LanguageModel.linear`; expert tensors: one expert at a time).
final class Weights: @unchecked Sendable {
    let graph: TensorGraph
    /// Keep decoded matrices between chunks (trades memory for speed when asked).
    let cacheDecoded: Bool
    private var cache: [String: UnsafeMutableBufferPointer<Float>] = [:]
    private var overrides: [String: UnsafeMutableBufferPointer<Float>] = [:]

    init(graph: TensorGraph, cacheDecoded: Bool) {
        self.graph = graph
        self.cacheDecoded = cacheDecoded
    }

    deinit {
        for (_, b) in cache { b.deallocate() }
        for (_, b) in overrides { b.deallocate() }
    }

    func has(_ name: String) -> Bool { graph[name] != nil }

    /// Pins f32 values for a tensor, used instead of its stored bytes from now on.
    func override(_ name: String, values: [Float]) throws {
        let t = try tensor(name)
        guard values.count == t.elementCount else {
            throw EvaluatorError.badShape(tensor: name, shape: [values.count], expected: t.shape)
        }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, values.count))
        _ = buffer.initialize(from: values)
        overrides[name]?.deallocate()
        overrides[name] = buffer
    }

    /// Drops a pinned tensor: its stored bytes are used again.
    func removeOverride(_ name: String) {
        overrides.removeValue(forKey: name)?.deallocate()
    }

    func tensor(_ name: String) throws -> Tensor {
        guard let t = graph[name] else { throw EvaluatorError.missingTensor(name: name) }
        return t
    }

    /// Calls `body` with the tensor's values as f32 (row-major, outermost dimension first).
    func withF32<R>(_ name: String, _ body: (UnsafePointer<Float>) throws -> R) throws -> R {
        if let pinned = overrides[name] { return try body(pinned.baseAddress!) }
        let t = try tensor(name)
        if t.dtype == .f32, let mapped = try t.storage.mappedBytes(),
            Int(bitPattern: mapped.baseAddress) % MemoryLayout<Float>.alignment == 0
        {
            return try body(mapped.baseAddress!.assumingMemoryBound(to: Float.self))
        }
        if let cached = cache[name] { return try body(cached.baseAddress!) }
        let buffer = try decode(t)
        if cacheDecoded {
            cache[name] = buffer
            return try body(buffer.baseAddress!)
        }
        defer { buffer.deallocate() }
        return try body(buffer.baseAddress!)
    }

    /// Expert `expert`'s slice of a tensor whose outermost dimension counts experts
    /// ([experts, rows, columns] matrices, [experts, n] biases) as f32, decoding only that
    /// slice's blocks (a cached or pinned tensor is used whole), so a mixture of experts needs
    /// memory for one expert's matrix at a time. `body` gets the values and their count.
    func withExpertF32<R>(_ name: String, expert: Int, _ body: (UnsafePointer<Float>, Int) throws -> R) throws -> R {
        let t = try tensor(name)
        guard t.shape.count >= 2, expert >= 0, expert < t.shape[0] else {
            throw EvaluatorError.badShape(tensor: name, shape: t.shape, expected: [expert + 1] + Array(t.shape.dropFirst()))
        }
        let per = t.elementCount / t.shape[0]
        if overrides[name] != nil || cache[name] != nil || cacheDecoded {
            return try withF32(name) { try body($0 + expert * per, per) }
        }
        if t.dtype == .f32, let mapped = try t.storage.mappedBytes(),
            Int(bitPattern: mapped.baseAddress) % MemoryLayout<Float>.alignment == 0
        {
            return try body(mapped.baseAddress!.assumingMemoryBound(to: Float.self) + expert * per, per)
        }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, per))
        defer { buffer.deallocate() }
        try read(t, offset: expert * per, into: buffer.baseAddress!, count: per)
        return try body(buffer.baseAddress!, per)
    }

    /// Row `row` of a 2-D tensor as f32 into `out` (for embedding lookups).
    func row(_ name: String, _ row: Int, into out: UnsafeMutablePointer<Float>) throws {
        let t = try tensor(name)
        let cols = t.shape.last ?? 0
        if let pinned = overrides[name] {
            out.update(from: pinned.baseAddress! + row * cols, count: cols)
            return
        }
        let f = try t.dtype == .f32 ? t : t.dequantized(to: .f32)
        try f.storage.read(offset: row * cols * 4, into: UnsafeMutableRawBufferPointer(start: out, count: cols * 4))
    }

    private func decode(_ t: Tensor) throws -> UnsafeMutableBufferPointer<Float> {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, t.elementCount))
        do {
            try read(t, offset: 0, into: buffer.baseAddress!, count: t.elementCount)
        } catch {
            buffer.deallocate()
            throw error
        }
        return buffer
    }

    /// Values `offset..<offset + count` of a tensor as f32, read in pieces of at most
    /// `decodePiece` values so a cast's or decoder's temporaries stay small whatever the tensor's
    /// size (a whole-tensor read would hold its source bytes and its f32 values twice over).
    func read(_ t: Tensor, offset: Int, into out: UnsafeMutablePointer<Float>, count: Int) throws {
        let f = try t.dtype == .f32 ? t : t.dequantized(to: .f32)
        var done = 0
        while done < count {
            let n = min(Self.decodePiece, count - done)
            try f.storage.read(offset: (offset + done) * 4, into: UnsafeMutableRawBufferPointer(start: out + done, count: n * 4))
            done += n
        }
    }

    static let decodePiece = 1 << 22

    /// Whether a matrix is better multiplied a block of rows at a time: large, stored in another
    /// type than f32 (so it must be decoded), and not kept decoded or pinned.
    func decodesInTiles(_ name: String, bytes f32Bytes: Int) -> Bool {
        guard f32Bytes > Self.tileBytes, overrides[name] == nil, cache[name] == nil, !cacheDecoded, let t = graph[name] else { return false }
        return t.dtype != .f32
    }

    /// The f32 bytes of one tile of rows (`decodesInTiles`).
    nonisolated(unsafe) static var tileBytes = 64 << 20

    /// Rows `rows` of a 2-D tensor as f32, decoded into a buffer that lives while `body` runs.
    func withRowsF32<R>(_ name: String, rows: Range<Int>, _ body: (UnsafePointer<Float>) throws -> R) throws -> R {
        let t = try tensor(name)
        let cols = t.shape.last ?? 0
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows.count * cols))
        defer { buffer.deallocate() }
        try read(t, offset: rows.lowerBound * cols, into: buffer, count: rows.count * cols)
        return try body(buffer)
    }
}

public enum EvaluatorError: Error, CustomStringConvertible {
    case missingTensor(name: String)
    case missingHyperparameter(String)
    case unsupported(String)
    case badShape(tensor: String, shape: [Int], expected: [Int])
    case badInput(String)

    public var description: String {
        switch self {
        case let .missingTensor(name): return "the model has no tensor '\(name)'"
        case let .missingHyperparameter(name): return "the model does not state its \(name)"
        case let .unsupported(what): return what
        case let .badShape(tensor, shape, expected): return "tensor '\(tensor)' has shape \(shape), expected \(expected)"
        case let .badInput(what): return what
        }
    }
}
