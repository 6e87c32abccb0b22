import Codecs
import XCTest

/// XXH64 against the reference implementation: vectors made with the `xxhash` Python package
/// (4.1.0, wrapping the C library) over `sample(n)` for several lengths and seeds, plus the
/// published digests of short strings.
final class XXHash64Tests: XCTestCase {
    /// Byte i is `(i * 131 + 17 + (i >> 8)) & 0xff` (the same generator made the vectors).
    static func sample(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17 &+ ($0 >> 8)) } }

    static let vectors: [(seed: UInt64, digests: [(length: Int, digest: UInt64)])] = [
        (0, [(0, 0xef46db3751d8e999), (1, 0xad10cd9780ac4ff7), (2, 0xb22635899e8f2235), (3, 0x40626d96276e4594), (4, 0x882207c122c76e23), (5, 0xa3da885eec618bb4), (7, 0xcfc90033aa9dac4f), (8, 0x90fda2f089fa86de), (9, 0xa80deb192b8c5215), (15, 0x59f95bad12d14c9d), (16, 0x3a5b1165d151aa50), (17, 0xc0bbb6ac5dbefe29), (31, 0x44cc9efe5d2d0233), (32, 0x0e1aab1d173cf196), (33, 0x5c820b4b4fe28fdc), (35, 0x22de45605909b372), (63, 0x1153d36cade87066), (64, 0xd4c20ef54cbc9f67), (65, 0xac086c9b87baea67), (100, 0x7f8375f3e09d8123), (127, 0x5493aa81f81fd0d9), (128, 0x9441529208fcb7ec), (255, 0xfc0c21a234c0a092), (256, 0xfa7639c7a1c6e86e), (1000, 0xe356c232b98d853d), (4099, 0x6663117ec24edeca), (65549, 0xb5503e36da918431)]),
        (11400714785074694791, [(0, 0x6ec6d05f61c7e7a7), (1, 0x5867524421aebd0e), (2, 0x7223629da1da55ee), (3, 0xb87923c77e8177f6), (4, 0x271aa5cc21fa7e38), (5, 0x317e6fdd8c2a1901), (7, 0x1992042573d827bc), (8, 0x061c72d60546d61c), (9, 0xf006e396fc6cff8c), (15, 0x275572f3f7e78a1d), (16, 0x649d4100efaf7380), (17, 0x8a3c8de311e4236e), (31, 0x72360fc425549dcf), (32, 0x4c2970ccfa63828f), (33, 0x33f9d7bfdd2a924c), (35, 0x883603b430d747d4), (63, 0xacf49d1661d50b05), (64, 0xe577c67b2b8d6d3b), (65, 0xc037bf65d4bb3ade), (100, 0x4d18db2f7d5d44d3), (127, 0x712fcf6734e06c3f), (128, 0x72beff1d5ff8ddbd), (255, 0x4433e6760eed644a), (256, 0x56c560d7195a9328), (1000, 0x2d4896c062d880a7), (4099, 0x3011c43bac25af6a), (65549, 0x8f70f2e1f0ba67b8)]),
        (2654435761, [(0, 0xac75fda2929b17ef), (1, 0xf88ae2f48ef24881), (2, 0xe9be8783189498ba), (3, 0xf0014c3e749973ce), (4, 0xc094e5997a59fca8), (5, 0xd13c0a490cdd0f3d), (7, 0xfc78838e468e8d43), (8, 0x9695ee781e770068), (9, 0x966b7fb9b2a1ff34), (15, 0x24dad7ef0e22c47f), (16, 0xf4e1b549d68a9fb0), (17, 0x40f8bccbd508f849), (31, 0xd31a362c3b01d50a), (32, 0x7c0185575a4c21e7), (33, 0xeb179ec5ed36d2a8), (35, 0x2c756c07d9995578), (63, 0x53a474f0361430b1), (64, 0x2a36d2b8f2422df9), (65, 0x2eef369bf4da58a1), (100, 0x4df30046fd46879f), (127, 0x8cee4b3db2716797), (128, 0x349f50e5a1b8635c), (255, 0xe10aaffd14cc0e63), (256, 0x4ba03d55d12aff47), (1000, 0xca961b8bdd8fc8ef), (4099, 0x18906964fa8cc06e), (65549, 0x7ba025d23d7d5ce3)]),
    ]

    func testKnownVectors() {
        for (seed, digests) in Self.vectors {
            for (n, digest) in digests {
                XCTAssertEqual(XXHash64.hash(Self.sample(n), seed: seed), digest, "length \(n) seed \(seed)")
            }
        }
    }

    func testPublishedStrings() {
        XCTAssertEqual(XXHash64.hash(Array("".utf8)), 0xef46db3751d8e999)
        XCTAssertEqual(XXHash64.hash(Array("a".utf8)), 0xd24ec4f1a98c6e5b)
        XCTAssertEqual(XXHash64.hash(Array("abc".utf8)), 0x44bc2cf5ad770999)
        XCTAssertEqual(XXHash64.hash(Array("message digest".utf8)), 0x066ed728fceeb3be)
        XCTAssertEqual(XXHash64.hash(Array("Nobody inspects the spammish repetition".utf8)), 0xfbcea83c8a378bf1)
    }

    /// The hash of a slice does not depend on where the slice sits in memory (unaligned loads).
    func testUnalignedInput() {
        let data = Self.sample(1100)
        let reference = XXHash64.hash(Array(data[3..<1003]))
        data.withUnsafeBytes { raw in
            XCTAssertEqual(XXHash64.hash(UnsafeRawBufferPointer(rebasing: raw[3..<1003])), reference)
        }
        XCTAssertEqual(reference, XXHash64.hash(Array(Self.sample(1100)[3..<1003])))
    }

    func testEveryBitFlipChangesTheHash() {
        var data = Self.sample(300)
        let h = XXHash64.hash(data)
        for i in 0..<data.count {
            for bit in 0..<8 {
                data[i] ^= 1 << bit
                XCTAssertNotEqual(XXHash64.hash(data), h)
                data[i] ^= 1 << bit
            }
        }
    }
}
