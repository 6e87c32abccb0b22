import Foundation

/// Wall-clock time per forward-pass stage, collected when SMELT_PROFILE is set and printed at
/// exit — for finding where a run spends its time, not for tests.
enum Profile {
    static let enabled = ProcessInfo.processInfo.environment["SMELT_PROFILE"] != nil
    nonisolated(unsafe) static var totals: [String: Double] = [:]
    nonisolated(unsafe) static var registered = false

    @inline(__always)
    static func measure<R>(_ stage: String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            totals[stage, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if !registered {
                registered = true
                atexit {
                    for (k, v) in Profile.totals.sorted(by: { $0.value > $1.value }) {
                        FileHandle.standardError.write(Data(String(format: "profile %-12@ %8.3f s\n", k, v).utf8))
                    }
                }
            }
        }
        return try body()
    }
}
