import CCPUID

#if canImport(Glibc)
    import Glibc
#endif

/// What the processor says of itself (cpuid) and which of its vector units the operating system
/// lets programs use (XCR0): the facts that decide which BLAS kernels can run at full speed.
public struct CPUFeatures: Sendable, Equatable {
    /// "GenuineIntel", "AuthenticAMD", … ("" on processors without cpuid).
    public var vendor: String
    /// The brand string ("Intel(R) Xeon(R) Platinum 8592+"), or the kernel's `model name`.
    public var modelName: String
    /// Display family and model (extended fields folded in, as the vendors' manuals define them).
    public var family: Int
    public var model: Int
    public var stepping: Int
    /// Features present and usable (for AVX and AVX-512, the OS saves their registers), in table order.
    public var features: [String]
    /// Features the processor advertises but the OS has not enabled (their register state is not saved).
    public var disabledByOS: [String]

    public init(vendor: String, modelName: String, family: Int, model: Int, stepping: Int, features: [String],
                disabledByOS: [String] = []) {
        self.vendor = vendor
        self.modelName = modelName
        self.family = family
        self.model = model
        self.stepping = stepping
        self.features = features
        self.disabledByOS = disabledByOS
    }

    public func has(_ feature: String) -> Bool { features.contains(feature) }

    /// The widest vector tier whose instructions the processor has and the OS enables.
    public var tier: SIMDTier {
        if SIMDTier.avx512.required.allSatisfy(has) { return .avx512 }
        if SIMDTier.avx2.required.allSatisfy(has) { return .avx2 }
        if SIMDTier.avx.required.allSatisfy(has) { return .avx }
        return .baseline
    }

    /// This processor, read once.
    public static let current: CPUFeatures = read()

    /// One cpuid bit: the name Linux's /proc/cpuinfo uses, where it lives, and which OS-saved
    /// register state (XCR0 bits) it needs.
    struct Bit {
        let name: String
        let leaf: UInt32, subleaf: UInt32
        let register: Int  // 0 EAX, 1 EBX, 2 ECX, 3 EDX
        let bit: UInt32
        let xcr0: UInt64
    }

    static let ymm: UInt64 = 0x6  // SSE and AVX state
    static let zmm: UInt64 = 0xE6  // plus opmask, ZMM_Hi256, Hi16_ZMM
    static let tiles: UInt64 = 0x60000  // AMX TILECFG and TILEDATA

    /// The features that matter for f32/int8 matrix kernels, as cpuid lays them out.
    static let table: [Bit] = [
        Bit(name: "sse2", leaf: 1, subleaf: 0, register: 3, bit: 26, xcr0: 0),
        Bit(name: "sse3", leaf: 1, subleaf: 0, register: 2, bit: 0, xcr0: 0),
        Bit(name: "ssse3", leaf: 1, subleaf: 0, register: 2, bit: 9, xcr0: 0),
        Bit(name: "sse4_1", leaf: 1, subleaf: 0, register: 2, bit: 19, xcr0: 0),
        Bit(name: "sse4_2", leaf: 1, subleaf: 0, register: 2, bit: 20, xcr0: 0),
        Bit(name: "avx", leaf: 1, subleaf: 0, register: 2, bit: 28, xcr0: ymm),
        Bit(name: "f16c", leaf: 1, subleaf: 0, register: 2, bit: 29, xcr0: ymm),
        Bit(name: "fma", leaf: 1, subleaf: 0, register: 2, bit: 12, xcr0: ymm),
        Bit(name: "avx2", leaf: 7, subleaf: 0, register: 1, bit: 5, xcr0: ymm),
        Bit(name: "avx_vnni", leaf: 7, subleaf: 1, register: 0, bit: 4, xcr0: ymm),
        Bit(name: "avx512f", leaf: 7, subleaf: 0, register: 1, bit: 16, xcr0: zmm),
        Bit(name: "avx512dq", leaf: 7, subleaf: 0, register: 1, bit: 17, xcr0: zmm),
        Bit(name: "avx512cd", leaf: 7, subleaf: 0, register: 1, bit: 28, xcr0: zmm),
        Bit(name: "avx512bw", leaf: 7, subleaf: 0, register: 1, bit: 30, xcr0: zmm),
        Bit(name: "avx512vl", leaf: 7, subleaf: 0, register: 1, bit: 31, xcr0: zmm),
        Bit(name: "avx512_vnni", leaf: 7, subleaf: 0, register: 2, bit: 11, xcr0: zmm),
        Bit(name: "avx512_bf16", leaf: 7, subleaf: 1, register: 0, bit: 5, xcr0: zmm),
        Bit(name: "avx512_fp16", leaf: 7, subleaf: 0, register: 3, bit: 23, xcr0: zmm),
        Bit(name: "amx_tile", leaf: 7, subleaf: 0, register: 3, bit: 24, xcr0: tiles),
        Bit(name: "amx_int8", leaf: 7, subleaf: 0, register: 3, bit: 25, xcr0: tiles),
        Bit(name: "amx_bf16", leaf: 7, subleaf: 0, register: 3, bit: 22, xcr0: tiles),
    ]

    static func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0) -> [UInt32]? {
        var r: [UInt32] = [0, 0, 0, 0]
        let ok = r.withUnsafeMutableBufferPointer { smelt_cpuid(leaf, subleaf, $0.baseAddress!) }
        return ok == 1 ? r : nil
    }

    static func ascii(_ words: [UInt32]) -> String {
        var bytes: [UInt8] = []
        for w in words { for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((w >> UInt32(s)) & 0xFF)) } }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingSpaces()
    }

    static func read() -> CPUFeatures {
        guard let l0 = cpuid(0) else {
            return CPUFeatures(vendor: "", modelName: procModelName() ?? "unknown", family: 0, model: 0, stepping: 0, features: [])
        }
        let vendor = ascii([l0[1], l0[3], l0[2]])
        var brand = ""
        if let top = cpuid(0x8000_0000), top[0] >= 0x8000_0004 {
            brand = ascii((0x8000_0002...0x8000_0004).flatMap { cpuid(UInt32($0)) ?? [] })
        }
        let sig = cpuid(1)?[0] ?? 0
        let baseFamily = Int((sig >> 8) & 0xF), baseModel = Int((sig >> 4) & 0xF)
        let family = baseFamily == 0xF ? baseFamily + Int((sig >> 20) & 0xFF) : baseFamily
        let model = (baseFamily == 0x6 || baseFamily == 0xF) ? (Int((sig >> 16) & 0xF) << 4) | baseModel : baseModel
        let xcr0 = smelt_xcr0()
        var features: [String] = [], disabled: [String] = []
        var leaves: [[UInt32]: [UInt32]] = [:]
        for b in table {
            let key = [b.leaf, b.subleaf]
            if leaves[key] == nil { leaves[key] = cpuid(b.leaf, b.subleaf) ?? [0, 0, 0, 0] }
            guard leaves[key]![b.register] & (1 << b.bit) != 0 else { continue }
            if xcr0 & b.xcr0 == b.xcr0 { features.append(b.name) } else { disabled.append(b.name) }
        }
        return CPUFeatures(vendor: vendor, modelName: brand.isEmpty ? (procModelName() ?? "") : brand, family: family,
                           model: model, stepping: Int(sig & 0xF), features: features, disabledByOS: disabled)
    }

    /// The kernel's `model name` line, for processors without a cpuid brand string.
    static func procModelName() -> String? {
        #if os(Linux)
            guard let f = fopen("/proc/cpuinfo", "r") else { return nil }
            defer { fclose(f) }
            var line: UnsafeMutablePointer<CChar>? = nil
            var cap = 0
            defer { free(line) }
            while getline(&line, &cap, f) > 0 {
                let s = String(cString: line!)
                if s.hasPrefix("model name") || s.hasPrefix("Model") || s.hasPrefix("cpu model") {
                    if let colon = s.firstIndex(of: ":") { return String(s[s.index(after: colon)...]).trimmingSpaces() }
                }
            }
        #endif
        return nil
    }
}

/// Vector instruction tiers, in the order BLAS kernels are written for them.
public enum SIMDTier: Int, Comparable, Sendable, CaseIterable {
    case baseline, avx, avx2, avx512

    public static func < (a: SIMDTier, b: SIMDTier) -> Bool { a.rawValue < b.rawValue }

    public var name: String { ["sse", "avx", "avx2", "avx512"][rawValue] }

    /// The features a processor needs for this tier's kernels.
    var required: [String] {
        switch self {
        case .baseline: return []
        case .avx: return ["avx"]
        case .avx2: return ["avx", "avx2", "fma"]
        case .avx512: return ["avx", "avx2", "fma", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"]
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s.removeLast() }
        return String(s)
    }
}
