import CBLAS

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Which BLAS kernels this process runs, and the choice of them.
///
/// OpenBLAS built with DYNAMIC_ARCH (as Debian and most distributions ship it) picks its kernels
/// for the processor when it loads, from a list of processor models it knows. A model newer than
/// the library falls back to the generic SSE3 ("Prescott") kernels, several times slower on a
/// processor with AVX2 or AVX-512. The library reads `OPENBLAS_CORETYPE` only when it loads, so
/// `prepareProcess()` (the first thing `smelt` does) re-executes the program once with the core
/// that matches the processor's features when that happens. A user's own `OPENBLAS_CORETYPE`
/// always wins; `SMELT_BLAS_SELECT=off` turns the selection off.
public enum BLASRuntime {
    /// How the core in use was chosen.
    public enum CoreSource: Equatable, Sendable {
        /// The library's own detection.
        case library
        /// `OPENBLAS_CORETYPE` set by the user.
        case environment
        /// Selected by smelt in place of `replaced`, the generic core the library had chosen.
        case smelt(replaced: String)
    }

    /// What `prepareProcess` found (and, after a re-execution, what it did).
    public struct State: Sendable {
        public var source: CoreSource
        /// A line for `--verbose`: what was chosen and why.
        public var note: String
        /// A core that would run faster than the one in use, when smelt did not switch to it
        /// (the user's setting, or a core the library chose deliberately).
        public var faster: String?
    }

    /// Environment variables of the protocol between a process and its re-execution.
    static let coreTypeVariable = "OPENBLAS_CORETYPE"
    static let selectedVariable = "SMELT_BLAS_SELECTED"  // the core the library had picked itself
    static let switchVariable = "SMELT_BLAS_SELECT"  // "off": never select
    /// For tests on processors the library knows: treat its core as this one (e.g. "Prescott").
    static let assumeVariable = "SMELT_BLAS_ASSUME_CORE"

    nonisolated(unsafe) private static var recorded: State?

    /// The state of this process (computed on first use when `prepareProcess` was not called).
    public static var state: State {
        if let recorded { return recorded }
        let s = evaluate(environment: environment(), library: .current, cpu: .current).state
        recorded = s
        return s
    }

    /// Decides, before any BLAS work, whether this process should run with other kernels, and
    /// if so re-executes it (`/proc/self/exe`, same arguments) with `OPENBLAS_CORETYPE` set.
    /// Returns only when the process keeps its kernels. Linux only; elsewhere it records the state.
    public static func prepareProcess() {
        let env = environment()
        let outcome = evaluate(environment: env, library: .current, cpu: .current)
        recorded = outcome.state
        #if os(Linux)
            switch outcome.action {
            case .none:
                return
            case .select(let core, let replaced):
                setenv(coreTypeVariable, core, 1)
                setenv(selectedVariable, replaced, 1)
                reexecute()
                // exec failed: carry on with the library's kernels.
                unsetenv(coreTypeVariable)
                unsetenv(selectedVariable)
                recorded = State(source: .library, note: "BLAS: could not re-execute to select \(core) kernels; running \(replaced)", faster: core)
            case .verifySelected(let core, let replaced):
                let error = sgemmSelfCheck()
                if error <= selfCheckTolerance { return }
                // The selected kernels compute wrong products here: back to the library's own choice.
                unsetenv(coreTypeVariable)
                setenv(selectedVariable, replaced, 1)
                setenv(switchVariable, "off-after-self-check", 1)
                reexecute()
                recorded = State(source: .smelt(replaced: replaced),
                                 note: "BLAS: \(core) kernels failed the self-check (relative error \(error)) and re-execution failed",
                                 faster: nil)
            }
        #endif
    }

    #if os(Linux)
        private static func reexecute() {
            execv("/proc/self/exe", CommandLine.unsafeArgv)
        }
    #endif

    /// What a process should do, as a pure function of its environment, library and processor.
    public enum Action: Equatable, Sendable {
        case none
        /// Re-execute with `core`; the library had chosen `replaced`.
        case select(core: String, replaced: String)
        /// This is the re-execution: check the selected kernels once.
        case verifySelected(core: String, replaced: String)
    }

    public static func evaluate(environment env: [String: String], library: BLASLibrary, cpu: CPUFeatures)
        -> (action: Action, state: State)
    {
        let cpuTier = cpu.tier
        let wanted = OpenBLASCores.core(for: cpuTier)
        func faster(than core: String) -> String? {
            guard let wanted, let tier = OpenBLASCores.tier(of: core), tier < cpuTier else { return nil }
            return wanted
        }
        if let replaced = env[selectedVariable], let mode = env[switchVariable], mode.hasPrefix("off-after-self-check") {
            return (.none, State(source: .library,
                                 note: "BLAS: the kernels smelt selected failed a self-check; running the library's own \(library.core) (it had chosen \(replaced))",
                                 faster: nil))
        }
        if let user = env[coreTypeVariable] {
            if let replaced = env[selectedVariable] {
                return (.verifySelected(core: user, replaced: replaced),
                        State(source: .smelt(replaced: replaced),
                              note: "BLAS: \(library.name) chose generic \(replaced) kernels for this \(cpuTier.name) processor; smelt selected \(library.core)",
                              faster: nil))
            }
            let hint = faster(than: library.core).map { "; this processor could run \($0) kernels" } ?? ""
            return (.none, State(source: .environment,
                                 note: "BLAS: \(library.core) kernels, from OPENBLAS_CORETYPE=\(user) in the environment (it always wins)\(hint)",
                                 faster: faster(than: library.core)))
        }
        let core = env[assumeVariable] ?? library.core
        let tier = OpenBLASCores.tier(of: core)
        let generic = tier.map { $0 < .avx2 } ?? false
        if generic, let wanted, cpuTier >= .avx2 {
            if env[switchVariable] == "off" {
                return (.none, State(source: .library,
                                     note: "BLAS: generic \(core) kernels on a \(cpuTier.name) processor; selection is off (SMELT_BLAS_SELECT=off)",
                                     faster: wanted))
            }
            if !library.dynamicArch {
                return (.none, State(source: .library,
                                     note: "BLAS: generic \(core) kernels on a \(cpuTier.name) processor, and this \(library.name) build has one core only (no DYNAMIC_ARCH): install a build for this processor",
                                     faster: wanted))
            }
            return (.select(core: wanted, replaced: core),
                    State(source: .library, note: "BLAS: selecting \(wanted) in place of \(core)", faster: wanted))
        }
        let hint = faster(than: core).map { "; \($0) kernels might be faster (OPENBLAS_CORETYPE=\($0))" } ?? ""
        return (.none, State(source: .library, note: "BLAS: \(library.core) kernels, the library's choice for this processor\(hint)",
                             faster: faster(than: core)))
    }

    static func environment() -> [String: String] {
        var env: [String: String] = [:]
        for key in [coreTypeVariable, selectedVariable, switchVariable, assumeVariable] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        return env
    }

    // MARK: self-check

    /// Relative error of sgemm against a double-precision reference that the self-check accepts.
    public static let selfCheckTolerance = 1e-4

    /// Largest relative error (|error| / Σ|products|) of a few small sgemm products, both layouts
    /// the evaluator uses and sizes that exercise the kernels' edge handling, against a reference
    /// computed in double. Microseconds; run after smelt selects kernels, and by `smelt system`.
    public static func sgemmSelfCheck() -> Double {
        var worst = 0.0
        var seed: UInt32 = 12345
        func next() -> Float {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return Float(seed >> 8) / Float(1 << 24) - 0.5
        }
        for (m, n, k) in [(7, 9, 13), (33, 65, 17), (64, 48, 96), (1, 31, 64)] {
            for transposeB in [false, true] {
                let a = (0..<(m * k)).map { _ in next() }
                let b = (0..<(k * n)).map { _ in next() }
                var c = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            BLAS.sgemm(m: m, n: n, k: k, a: ap.baseAddress!, b: bp.baseAddress!, c: cp.baseAddress!,
                                       transposeB: transposeB)
                        }
                    }
                }
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = 0.0, magnitude = 0.0
                        for p in 0..<k {
                            let bv = transposeB ? b[j * k + p] : b[p * n + j]
                            let prod = Double(a[i * k + p]) * Double(bv)
                            exact += prod
                            magnitude += abs(prod)
                        }
                        let got = Double(c[i * n + j])
                        let err = got.isFinite ? abs(got - exact) / max(magnitude, 1e-30) : .infinity
                        worst = max(worst, err)
                    }
                }
            }
        }
        return worst
    }
}

/// The BLAS library this process runs, as it describes itself.
public struct BLASLibrary: Sendable, Equatable {
    /// "OpenBLAS 0.3.21".
    public var name: String
    /// `openblas_get_config()`: version and build options.
    public var config: String
    /// The kernels' core name (`openblas_get_corename()`).
    public var core: String
    /// Whether the library carries kernels for several cores (and honours OPENBLAS_CORETYPE).
    public var dynamicArch: Bool
    /// The threads OpenBLAS would use for one call (the evaluator sets 1 and splits work itself).
    public var threads: Int

    public init(name: String, config: String, core: String, dynamicArch: Bool, threads: Int) {
        self.name = name
        self.config = config
        self.core = core
        self.dynamicArch = dynamicArch
        self.threads = threads
    }

    public static var current: BLASLibrary {
        let config = String(cString: openblas_get_config())
        let words = config.split(separator: " ")
        let name = words.count >= 2 ? "\(words[0]) \(words[1])" : config
        return BLASLibrary(name: name, config: config, core: String(cString: openblas_get_corename()).trimmingSpaces(),
                           dynamicArch: words.contains("DYNAMIC_ARCH"), threads: Int(openblas_get_num_threads()))
    }

    /// The vector tier of the kernels in use, when the core is one OpenBLAS's table names.
    public var tier: SIMDTier? { OpenBLASCores.tier(of: core) }
}

/// OpenBLAS's x86-64 core names (as `openblas_get_corename()` spells them) and the vector tier
/// their f32 kernels are written for. A core below `.avx2` on a processor with AVX2 is the
/// generic fallback this module exists to avoid.
public enum OpenBLASCores {
    static let tiers: [String: SIMDTier] = [
        "Unknown": .baseline, "Katmai": .baseline, "Coppermine": .baseline, "Northwood": .baseline,
        "Prescott": .baseline, "Banias": .baseline, "Atom": .baseline, "Core2": .baseline, "Penryn": .baseline,
        "Dunnington": .baseline, "Nehalem": .baseline, "Athlon": .baseline, "Opteron": .baseline,
        "Opteron(SSE3)": .baseline, "Barcelona": .baseline, "Nano": .baseline, "Bobcat": .baseline,
        "Sandybridge": .avx, "Bulldozer": .avx, "Piledriver": .avx, "Steamroller": .avx, "Excavator": .avx,
        "Haswell": .avx2, "Zen": .avx2,
        "SkylakeX": .avx512, "Cooperlake": .avx512, "SapphireRapids": .avx512,
    ]

    /// The core smelt selects for a processor of `tier` (nil below AVX2: nothing better to pick).
    /// SkylakeX rather than Cooperlake or SapphireRapids: its f32 kernels are the same and it
    /// needs no BF16/AMX support.
    public static func core(for tier: SIMDTier) -> String? {
        switch tier {
        case .avx512: return "SkylakeX"
        case .avx2: return "Haswell"
        case .avx, .baseline: return nil
        }
    }

    public static func tier(of core: String) -> SIMDTier? {
        if let t = tiers[core] { return t }
        return tiers.first { $0.key.lowercased() == core.lowercased() }?.value
    }
}
