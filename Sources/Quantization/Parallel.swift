import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splitting a loop over many blocks across cores.
enum Parallel {
    /// Online cores.
    static let cores: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// Calls `body` on consecutive ranges of at most `chunk` items covering `0..<count`, on all
    /// cores when `parallel` is true and there is more than one range (each range then runs on one
    /// thread; `body` must only touch its own range's data). The first error in range order is
    /// rethrown after every range has finished.
    static func forEachChunk<E: Error>(
        count: Int, chunk: Int, parallel: Bool, _ body: (Range<Int>) throws(E) -> Void
    ) throws(E) {
        guard count > 0 else { return }
        let chunk = max(1, chunk)
        let n = (count - 1) / chunk + 1
        if n == 1 || !parallel || cores == 1 {
            for i in 0..<n { try body(i * chunk..<min(count, (i + 1) * chunk)) }
            return
        }
        let errors = UnsafeMutablePointer<E?>.allocate(capacity: n)
        errors.initialize(repeating: nil, count: n)
        defer {
            errors.deinitialize(count: n)
            errors.deallocate()
        }
        withoutActuallyEscaping(body) { body in
            // Each iteration touches only its own range and its own error slot.
            let shared = Unchecked((body, errors))
            DispatchQueue.concurrentPerform(iterations: n) { i in
                let (body, errors) = shared.value
                do throws(E) { try body(i * chunk..<min(count, (i + 1) * chunk)) } catch { errors[i] = error }
            }
        }
        for i in 0..<n { if let e = errors[i] { throw e } }
    }
}

/// A value handed to concurrent iterations that each use it on disjoint data.
private struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
