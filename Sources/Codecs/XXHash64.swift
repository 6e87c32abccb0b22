/// XXH64, the 64-bit xxHash (Yann Collet's specification, `doc/xxhash_spec.md` in the xxHash
/// repository), written from the specification. Little-endian input reading, any seed.
///
/// Ingot checksums every stored chunk, its header and its trailer with it.
public enum XXHash64 {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 &- r)) }

    @inline(__always) static func round(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        rotl(acc &+ lane &* p2, 31) &* p1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    /// The hash of `bytes` with `seed`.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return finish(seed &+ p5, length: 0, tail: nil, count: 0) }
        var p = 0
        var h: UInt64
        if n >= 32 {
            var v1 = seed &+ p1 &+ p2
            var v2 = seed &+ p2
            var v3 = seed
            var v4 = seed &- p1
            let limit = n - 32
            while p <= limit {
                v1 = round(v1, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt64.self)))
                v2 = round(v2, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p + 8, as: UInt64.self)))
                v3 = round(v3, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p + 16, as: UInt64.self)))
                v4 = round(v4, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p + 24, as: UInt64.self)))
                p += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1)
            h = merge(h, v2)
            h = merge(h, v3)
            h = merge(h, v4)
        } else {
            h = seed &+ p5
        }
        return finish(h, length: n, tail: base + p, count: n - p)
    }

    /// The hash of a byte array.
    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    /// Adds the length, consumes the last `count` (< 32) bytes at `tail`, and avalanches.
    @inline(__always)
    static func finish(_ acc: UInt64, length: Int, tail: UnsafeRawPointer?, count: Int) -> UInt64 {
        var h = acc &+ UInt64(length)
        var i = 0
        if let tail {
            while i + 8 <= count {
                let k = round(0, UInt64(littleEndian: tail.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                h = rotl(h ^ k, 27) &* p1 &+ p4
                i += 8
            }
            if i + 4 <= count {
                let k = UInt64(UInt32(littleEndian: tail.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
                h = rotl(h ^ (k &* p1), 23) &* p2 &+ p3
                i += 4
            }
            while i < count {
                let k = UInt64(tail.load(fromByteOffset: i, as: UInt8.self))
                h = rotl(h ^ (k &* p5), 11) &* p1
                i += 1
            }
        }
        h ^= h >> 33
        h = h &* p2
        h ^= h >> 29
        h = h &* p3
        h ^= h >> 32
        return h
    }
}
