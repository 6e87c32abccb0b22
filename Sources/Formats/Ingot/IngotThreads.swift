#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable (pthreads), for the writer's and verifier's work queues.
final class IngotMonitor: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    func lock() { pthread_mutex_lock(&mutex) }
    func unlock() { pthread_mutex_unlock(&mutex) }
    /// Waits for a broadcast; call with the lock held.
    func wait() { pthread_cond_wait(&cond, &mutex) }
    /// Waits for a broadcast or `seconds`; false when the time ran out. Call with the lock held.
    func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let ns = Int(now.tv_nsec) + Int(seconds * 1e9)
        var deadline = timespec(tv_sec: now.tv_sec + ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
        return pthread_cond_timedwait(&cond, &mutex, &deadline) == 0
    }
    func broadcast() { pthread_cond_broadcast(&cond) }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Threads started together and joined together. A thread that cannot be created is skipped
/// (`started` says how many run); callers must not depend on all of them running.
final class IngotThreadGroup {
    private final class Box: @unchecked Sendable {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) {
            self.body = body
            self.index = index
        }
    }

    private var threads: [pthread_t] = []
    var started: Int { threads.count }

    init(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        for i in 0..<count {
            let box = Unmanaged.passRetained(Box(body, i)).toOpaque()
            var tid = pthread_t()
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            pthread_attr_setstacksize(&attr, 1 << 20)
            let rc = pthread_create(&tid, &attr, { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body(box.index)
                return nil
            }, box)
            pthread_attr_destroy(&attr)
            if rc != 0 {
                Unmanaged<Box>.fromOpaque(box).release()
            } else {
                threads.append(tid)
            }
        }
    }

    func join() {
        for t in threads { pthread_join(t, nil) }
        threads = []
    }

    deinit { join() }
}

/// Runs `body(i)` for i in 0..<count, on new threads where possible (the calling thread takes
/// the last one), and waits for all. Bodies must not wait on each other.
func ingotRunThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    guard count > 1 else {
        if count == 1 { body(0) }
        return
    }
    let group = IngotThreadGroup(count - 1, body)
    body(count - 1)
    // Bodies of threads that could not be started run here.
    if group.started < count - 1 {
        for i in group.started..<(count - 1) { body(i) }
    }
    group.join()
}

/// Starts `body` on a detached thread; false when no thread could be created.
@discardableResult
func ingotDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var tid = pthread_t()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setstacksize(&attr, 1 << 20)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    let rc = pthread_create(&tid, &attr, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    pthread_attr_destroy(&attr)
    if rc != 0 {
        Unmanaged<Box>.fromOpaque(box).release()
        return false
    }
    return true
}

/// The number of cores to use when the caller says 0.
func ingotThreadCount(_ requested: Int) -> Int {
    if requested > 0 { return requested }
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
