import Kernels
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The choice of BLAS kernels as a pure function of environment, library and processor, and the
/// processor reading checked against the kernel's own (/proc/cpuinfo).
final class BLASRuntimeTests: XCTestCase {
    // Feature lists as the processors report them (the AVX-512 one is an Emerald Rapids Xeon, the
    // processor OpenBLAS 0.3.21 does not know).
    static let avx512 = CPUFeatures(
        vendor: "GenuineIntel", modelName: "Intel(R) Xeon(R) Platinum 8592+", family: 6, model: 207, stepping: 2,
        features: ["sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni", "avx512f",
                   "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"],
        disabledByOS: ["amx_tile", "amx_int8", "amx_bf16"])
    static let avx2 = CPUFeatures(
        vendor: "AuthenticAMD", modelName: "AMD Ryzen", family: 25, model: 33, stepping: 0,
        features: ["sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2"])
    static let sse = CPUFeatures(vendor: "GenuineIntel", modelName: "old", family: 6, model: 15, stepping: 0,
                                 features: ["sse2", "sse3", "ssse3"])
    /// AVX-512F advertised but the OS saves no ZMM state: not an AVX-512 processor for kernels.
    static let avx512Disabled = CPUFeatures(
        vendor: "GenuineIntel", modelName: "x", family: 6, model: 85, stepping: 4,
        features: ["sse2", "sse3", "avx", "fma", "avx2"], disabledByOS: ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"])

    static func library(_ core: String, dynamic: Bool = true) -> BLASLibrary {
        BLASLibrary(name: "OpenBLAS 0.3.21", config: "OpenBLAS 0.3.21 \(dynamic ? "DYNAMIC_ARCH " : "")\(core)", core: core,
                    dynamicArch: dynamic, threads: 2)
    }

    func testTiers() {
        XCTAssertEqual(Self.avx512.tier, .avx512)
        XCTAssertEqual(Self.avx2.tier, .avx2)
        XCTAssertEqual(Self.sse.tier, .baseline)
        XCTAssertEqual(Self.avx512Disabled.tier, .avx2)
        XCTAssertEqual(OpenBLASCores.tier(of: "Prescott"), .baseline)
        XCTAssertEqual(OpenBLASCores.tier(of: "Sandybridge"), .avx)
        XCTAssertEqual(OpenBLASCores.tier(of: "Haswell"), .avx2)
        XCTAssertEqual(OpenBLASCores.tier(of: "Cooperlake"), .avx512)
        XCTAssertNil(OpenBLASCores.tier(of: "NeoverseN1"))
    }

    func testGenericCoreOnCapableProcessorIsReplaced() {
        for (cpu, want) in [(Self.avx512, "SkylakeX"), (Self.avx2, "Haswell"), (Self.avx512Disabled, "Haswell")] {
            for generic in ["Prescott", "Core2", "Nehalem", "Sandybridge", "Barcelona"] {
                let r = BLASRuntime.evaluate(environment: [:], library: Self.library(generic), cpu: cpu)
                XCTAssertEqual(r.action, .select(core: want, replaced: generic), "\(cpu.modelName) with \(generic)")
            }
        }
    }

    func testCapableCoreIsKept() {
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            let r = BLASRuntime.evaluate(environment: [:], library: Self.library(core), cpu: Self.avx512)
            XCTAssertEqual(r.action, .none, core)
            XCTAssertEqual(r.state.source, .library)
        }
        // An AVX2 core on an AVX-512 processor is the library's deliberate choice: kept, with a hint.
        let r = BLASRuntime.evaluate(environment: [:], library: Self.library("Zen"), cpu: Self.avx512)
        XCTAssertEqual(r.state.faster, "SkylakeX")
        // Nothing better exists for a processor without AVX2.
        XCTAssertEqual(BLASRuntime.evaluate(environment: [:], library: Self.library("Prescott"), cpu: Self.sse).action, .none)
    }

    func testUserSettingAlwaysWins() {
        let r = BLASRuntime.evaluate(environment: ["OPENBLAS_CORETYPE": "Prescott"], library: Self.library("Prescott"),
                                     cpu: Self.avx512)
        XCTAssertEqual(r.action, .none)
        XCTAssertEqual(r.state.source, .environment)
        XCTAssertEqual(r.state.faster, "SkylakeX")
        XCTAssertTrue(r.state.note.contains("OPENBLAS_CORETYPE=Prescott"), r.state.note)
    }

    func testSelectionCanBeTurnedOffAndNeedsDynamicArch() {
        let off = BLASRuntime.evaluate(environment: ["SMELT_BLAS_SELECT": "off"], library: Self.library("Prescott"), cpu: Self.avx512)
        XCTAssertEqual(off.action, .none)
        let single = BLASRuntime.evaluate(environment: [:], library: Self.library("Prescott", dynamic: false), cpu: Self.avx512)
        XCTAssertEqual(single.action, .none)
        XCTAssertTrue(single.state.note.contains("DYNAMIC_ARCH"), single.state.note)
    }

    func testReexecutedProcessVerifiesItsKernelsOnce() {
        let env = ["OPENBLAS_CORETYPE": "SkylakeX", "SMELT_BLAS_SELECTED": "Prescott"]
        let r = BLASRuntime.evaluate(environment: env, library: Self.library("SkylakeX"), cpu: Self.avx512)
        XCTAssertEqual(r.action, .verifySelected(core: "SkylakeX", replaced: "Prescott"))
        XCTAssertEqual(r.state.source, .smelt(replaced: "Prescott"))
        // After a failed self-check the process runs the library's own choice and never selects again.
        let failed = BLASRuntime.evaluate(environment: ["SMELT_BLAS_SELECTED": "Prescott", "SMELT_BLAS_SELECT": "off-after-self-check"],
                                          library: Self.library("Prescott"), cpu: Self.avx512)
        XCTAssertEqual(failed.action, .none)
    }

    func testSelfCheckPassesWithTheKernelsInUse() {
        XCTAssertLessThanOrEqual(BLASRuntime.sgemmSelfCheck(), BLASRuntime.selfCheckTolerance)
    }

    /// cpuid read by us against the flags Linux derives from cpuid and XCR0 (it hides AVX and
    /// AVX-512 flags the OS does not enable, as our `features` does).
    func testFeaturesAgreeWithProcCpuinfo() throws {
        #if os(Linux) && arch(x86_64)
            let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
                return XCTFail("/proc/cpuinfo has no flags line")
            }
            let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
            let cpu = CPUFeatures.current
            XCTAssertFalse(cpu.vendor.isEmpty)
            for name in ["sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni", "avx512f", "avx512dq",
                         "avx512cd", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16"] {
                let linuxName = name == "sse3" ? "pni" : name
                XCTAssertEqual(cpu.has(name), flags.contains(linuxName), "\(name): cpuid says \(cpu.has(name)), Linux says \(flags.contains(linuxName))")
            }
        #else
            throw XCTSkip("cpuid is read on x86-64 Linux only")
        #endif
    }
}

final class ParallelSgemmTests: XCTestCase {
    func testTiling() {
        XCTAssertTrue(BLAS.tiling(m: 512, n: 576, threads: 2) == (2, 1))
        XCTAssertTrue(BLAS.tiling(m: 512, n: 576, threads: 1) == (1, 1))
        // Many threads: columns stay at least 64 wide, rows take the rest.
        let t = BLAS.tiling(m: 512, n: 576, threads: 64)
        XCTAssertEqual(t.columnParts, 9)
        XCTAssertEqual(t.rowParts, 7)
        XCTAssertTrue(BLAS.tiling(m: 512, n: 49152, threads: 64) == (64, 1))
        XCTAssertTrue(BLAS.tiling(m: 1, n: 40, threads: 8) == (1, 1))
    }

    /// Every tiling computes the product: equal to one whole sgemm within float rounding, and the
    /// same tiling twice gives identical bits.
    func testParallelSgemmMatchesOneProduct() {
        let m = 70, n = 200, k = 96
        let a: [Float] = (0..<(m * k)).map { Float(($0 * 7919) % 101) / 50 - 1 }
        let b: [Float] = (0..<(n * k)).map { Float(($0 * 104_729) % 97) / 48 - 1 }
        var whole = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(m: m, n: n, k: k, a: a, b: b, c: &whole, transposeB: true)
        func product(threads: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: m * n)
            out.withUnsafeMutableBufferPointer { cp in
                BLAS.parallelSgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: cp.baseAddress!, ldc: n,
                                   transposeB: true, threads: threads)
            }
            return out
        }
        for threads in [1, 2, 3, 7, 16] {
            let c = product(threads: threads), again = product(threads: threads)
            XCTAssertEqual(c, again, "threads \(threads): not deterministic")
            for i in 0..<(m * n) { XCTAssertEqual(c[i], whole[i], accuracy: 1e-4, "threads \(threads), element \(i)") }
        }
    }
}
