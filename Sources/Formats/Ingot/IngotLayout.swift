import TensorGraph

/// How a chunk's bytes are regrouped into streams before compression (the Ingot "transform").
///
/// A tensor's bytes are a sequence of blocks of `blockBytes` bytes (one element for plain types,
/// one ggml block for block types). Each block is cut into `fields` (byte ranges that tile the
/// block exactly, in order). A field of `width` w > 1 is an array of w-byte little-endian
/// integers, each first rotated left by `rotate` bits and then split into w byte planes; a field
/// of width 1 is one stream. The streams are, in order: for every field, for every plane (least
/// significant first), that field's bytes of every block of the chunk. The layout is written in
/// the file, so a reader needs no table of its own: any layout that tiles the block decodes.
public struct IngotLayout: Sendable, Equatable, CustomStringConvertible {
    public struct Field: Sendable, Equatable {
        public var offset: Int
        public var length: Int
        public var width: Int
        public var rotate: Int
        public init(offset: Int, length: Int, width: Int = 1, rotate: Int = 0) {
            self.offset = offset
            self.length = length
            self.width = width
            self.rotate = rotate
        }
    }

    public let blockBytes: Int
    public let fields: [Field]

    public init(blockBytes: Int, fields: [Field]) {
        self.blockBytes = blockBytes
        self.fields = fields
    }

    /// Blocks kept as they are: one stream.
    public static func identity(_ blockBytes: Int) -> IngotLayout {
        IngotLayout(blockBytes: blockBytes, fields: [Field(offset: 0, length: blockBytes)])
    }

    /// Whether the transform leaves bytes where they are.
    public var isIdentity: Bool { fields.allSatisfy { $0.width == 1 } && fields.count == 1 }

    public var streamCount: Int { fields.reduce(0) { $0 + $1.width } }

    /// Bytes each stream takes per block, in stream order.
    public var streamBytesPerBlock: [Int] {
        fields.flatMap { f in Array(repeating: f.length / f.width, count: f.width) }
    }

    public static let maxFields = 64
    public static let maxBlockBytes = 1 << 16

    /// Why the layout is unusable, or `nil` when it is valid: fields must tile the block in
    /// order, widths be 1, 2, 4 or 8 and divide the field, rotations be below the width in bits.
    public var problem: String? {
        guard blockBytes > 0, blockBytes <= IngotLayout.maxBlockBytes else {
            return "block size \(blockBytes) is outside 1...\(IngotLayout.maxBlockBytes)"
        }
        guard !fields.isEmpty, fields.count <= IngotLayout.maxFields else {
            return "\(fields.count) fields (1...\(IngotLayout.maxFields) allowed)"
        }
        var at = 0
        for (i, f) in fields.enumerated() {
            guard f.offset == at else { return "field \(i) starts at byte \(f.offset), expected \(at)" }
            guard f.length > 0, f.length <= blockBytes - at else {
                return "field \(i) of \(f.length) bytes at \(f.offset) does not fit the \(blockBytes)-byte block"
            }
            guard [1, 2, 4, 8].contains(f.width) else { return "field \(i) has width \(f.width)" }
            guard f.length % f.width == 0 else { return "field \(i): width \(f.width) does not divide its \(f.length) bytes" }
            guard f.rotate >= 0, f.rotate < 8 * f.width, f.width > 1 || f.rotate == 0 else {
                return "field \(i): rotation \(f.rotate) for width \(f.width)"
            }
            at += f.length
        }
        guard at == blockBytes else { return "fields cover \(at) of the \(blockBytes) block bytes" }
        return nil
    }

    public var description: String {
        if isIdentity { return "bytes" }
        return fields.map { f in
            let rot = f.rotate > 0 ? "r\(f.rotate)" : ""
            return f.width == 1 ? "\(f.length)" : "\(f.length)/\(f.width)\(rot)"
        }.joined(separator: "+")
    }

    /// The layout the writer uses for `dtype`: floats as byte planes (bf16, f32 and f64 rotated
    /// by one bit so that one plane holds the whole exponent and the sign joins the mantissa's
    /// low plane), integers as byte planes, ggml blocks cut along the fields `DType.table`
    /// declares for them: f16 scales and arrays of 16-bit integers as two planes, f32 scales as
    /// four planes rotated like f32, packed bytes as one stream each.
    public static func standard(for dtype: DType) -> IngotLayout {
        let plane = { (w: Int, r: Int) in IngotLayout(blockBytes: w, fields: [Field(offset: 0, length: w, width: w, rotate: r)]) }
        switch dtype {
        case .bf16: return plane(2, 1)
        case .f16: return plane(2, 0)
        case .f32: return plane(4, 1)
        case .f64: return plane(8, 1)
        case .i16, .u16: return plane(2, 0)
        case .i32, .u32: return plane(4, 0)
        case .i64, .u64: return plane(8, 0)
        default: break
        }
        let blockFields = dtype.info.fields
        guard !blockFields.isEmpty else { return .identity(dtype.bytesPerBlock) }
        var out: [Field] = []
        var at = 0
        for f in blockFields {
            switch f.kind {
            case .f16, .u16s, .i16s: out.append(Field(offset: at, length: f.length, width: 2))
            case .f32: out.append(Field(offset: at, length: f.length, width: 4, rotate: 1))
            case .bytes: out.append(Field(offset: at, length: f.length))
            }
            at += f.length
        }
        return IngotLayout(blockBytes: at, fields: out)
    }

    // MARK: - Transform kernels

    /// Regroups `blocks` blocks at `src` into the streams, back to back at `dst`.
    func split(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutableRawPointer) {
        var out = dst
        for f in fields {
            let per = f.length / f.width
            if f.width == 1 {
                if f.length == blockBytes {
                    out.copyMemory(from: src, byteCount: n * blockBytes)
                } else {
                    IngotLayout.gather(src + f.offset, stride: blockBytes, length: f.length, count: n, into: out)
                }
            } else {
                IngotLayout.splitPlanes(
                    src + f.offset, stride: blockBytes, elements: per, width: f.width, rotate: f.rotate, count: n, into: out)
            }
            out += n * f.length
        }
    }

    /// The inverse of `split`: streams back to back at `src` into `blocks` blocks at `dst`.
    func merge(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutableRawPointer) {
        var input = src
        for f in fields {
            let per = f.length / f.width
            if f.width == 1 {
                if f.length == blockBytes {
                    dst.copyMemory(from: input, byteCount: n * blockBytes)
                } else {
                    IngotLayout.scatter(input, stride: blockBytes, length: f.length, count: n, into: dst + f.offset)
                }
            } else {
                IngotLayout.mergePlanes(
                    input, stride: blockBytes, elements: per, width: f.width, rotate: f.rotate, count: n, into: dst + f.offset)
            }
            input += n * f.length
        }
    }

    /// Copies `length` bytes from every `stride`-byte block into one contiguous stream.
    @inline(__always)
    static func gather(_ src: UnsafeRawPointer, stride: Int, length: Int, count: Int, into dst: UnsafeMutableRawPointer) {
        if length % 8 == 0 {
            let words = length / 8
            for b in 0..<count {
                let s = src + b &* stride
                let d = dst + b &* length
                for w in 0..<words {
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: w &* 8, as: UInt64.self), toByteOffset: w &* 8, as: UInt64.self)
                }
            }
        } else if length % 4 == 0 {
            let words = length / 4
            for b in 0..<count {
                let s = src + b &* stride
                let d = dst + b &* length
                for w in 0..<words {
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: w &* 4, as: UInt32.self), toByteOffset: w &* 4, as: UInt32.self)
                }
            }
        } else {
            for b in 0..<count { (dst + b &* length).copyMemory(from: src + b &* stride, byteCount: length) }
        }
    }

    /// The inverse of `gather`.
    @inline(__always)
    static func scatter(_ src: UnsafeRawPointer, stride: Int, length: Int, count: Int, into dst: UnsafeMutableRawPointer) {
        if length % 8 == 0 {
            let words = length / 8
            for b in 0..<count {
                let s = src + b &* length
                let d = dst + b &* stride
                for w in 0..<words {
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: w &* 8, as: UInt64.self), toByteOffset: w &* 8, as: UInt64.self)
                }
            }
        } else if length % 4 == 0 {
            let words = length / 4
            for b in 0..<count {
                let s = src + b &* length
                let d = dst + b &* stride
                for w in 0..<words {
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: w &* 4, as: UInt32.self), toByteOffset: w &* 4, as: UInt32.self)
                }
            }
        } else {
            for b in 0..<count { (dst + b &* stride).copyMemory(from: src + b &* length, byteCount: length) }
        }
    }

    /// Splits `elements` w-byte integers per block (blocks `stride` bytes apart) into w planes of
    /// `count * elements` bytes each, after rotating each left by `rotate` bits.
    static func splitPlanes(
        _ src: UnsafeRawPointer, stride: Int, elements: Int, width: Int, rotate: Int, count: Int,
        into dst: UnsafeMutableRawPointer
    ) {
        let total = count * elements
        let contiguous = stride == width * elements
        if contiguous && Int(bitPattern: src) % width == 0 {
            let out = dst.assumingMemoryBound(to: UInt8.self)
            switch width {
            case 2: splitAligned(src.assumingMemoryBound(to: UInt16.self), total, UInt16(rotate), out)
            case 4: splitAligned(src.assumingMemoryBound(to: UInt32.self), total, UInt32(rotate), out)
            default: splitAligned(src.assumingMemoryBound(to: UInt64.self), total, UInt64(rotate), out)
            }
            return
        }
        switch width {
        case 2:
            let r = UInt16(rotate)
            let p0 = dst.assumingMemoryBound(to: UInt8.self)
            let p1 = p0 + total
            if contiguous {
                // Eight elements at a time through one 16-byte load pair.
                var i = 0
                while i &+ 4 <= total {
                    let v = src.loadUnaligned(fromByteOffset: i &* 2, as: UInt64.self)
                    var lo: UInt32 = 0, hi: UInt32 = 0
                    for k in 0..<4 {
                        var e = UInt16(truncatingIfNeeded: v >> UInt64(16 &* k))
                        e = (e << r) | (e >> ((16 &- r) & 15))
                        lo |= UInt32(e & 0xFF) << UInt32(8 &* k)
                        hi |= UInt32(e >> 8) << UInt32(8 &* k)
                    }
                    UnsafeMutableRawPointer(p0 + i).storeBytes(of: lo, as: UInt32.self)
                    UnsafeMutableRawPointer(p1 + i).storeBytes(of: hi, as: UInt32.self)
                    i &+= 4
                }
                while i < total {
                    var e = src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)
                    e = (e << r) | (e >> ((16 &- r) & 15))
                    p0[i] = UInt8(e & 0xFF)
                    p1[i] = UInt8(e >> 8)
                    i &+= 1
                }
            } else {
                for b in 0..<count {
                    let s = src + b &* stride
                    for k in 0..<elements {
                        var e = s.loadUnaligned(fromByteOffset: k &* 2, as: UInt16.self)
                        e = (e << r) | (e >> ((16 &- r) & 15))
                        let i = b &* elements &+ k
                        p0[i] = UInt8(e & 0xFF)
                        p1[i] = UInt8(e >> 8)
                    }
                }
            }
        case 4:
            let r = UInt32(rotate)
            let p = dst.assumingMemoryBound(to: UInt8.self)
            for b in 0..<count {
                let s = src + b &* stride
                for k in 0..<elements {
                    var e = s.loadUnaligned(fromByteOffset: k &* 4, as: UInt32.self)
                    e = (e << r) | (e >> ((32 &- r) & 31))
                    let i = b &* elements &+ k
                    p[i] = UInt8(truncatingIfNeeded: e)
                    p[total &+ i] = UInt8(truncatingIfNeeded: e >> 8)
                    p[2 &* total &+ i] = UInt8(truncatingIfNeeded: e >> 16)
                    p[3 &* total &+ i] = UInt8(truncatingIfNeeded: e >> 24)
                }
            }
        default:
            let r = UInt64(rotate)
            let p = dst.assumingMemoryBound(to: UInt8.self)
            for b in 0..<count {
                let s = src + b &* stride
                for k in 0..<elements {
                    var e = s.loadUnaligned(fromByteOffset: k &* 8, as: UInt64.self)
                    e = (e << r) | (e >> ((64 &- r) & 63))
                    let i = b &* elements &+ k
                    for plane in 0..<8 {
                        p[plane &* total &+ i] = UInt8(truncatingIfNeeded: e >> UInt64(8 &* plane))
                    }
                }
            }
        }
    }

    /// The inverse of `splitPlanes`.
    static func mergePlanes(
        _ src: UnsafeRawPointer, stride: Int, elements: Int, width: Int, rotate: Int, count: Int,
        into dst: UnsafeMutableRawPointer
    ) {
        let total = count * elements
        let contiguous = stride == width * elements
        if contiguous && Int(bitPattern: dst) % width == 0 {
            let planes = src.assumingMemoryBound(to: UInt8.self)
            switch width {
            case 2: mergeAligned(planes, total, UInt16(rotate), dst.assumingMemoryBound(to: UInt16.self))
            case 4: mergeAligned(planes, total, UInt32(rotate), dst.assumingMemoryBound(to: UInt32.self))
            default: mergeAligned(planes, total, UInt64(rotate), dst.assumingMemoryBound(to: UInt64.self))
            }
            return
        }
        switch width {
        case 2:
            let r = UInt16(rotate)
            let p0 = src.assumingMemoryBound(to: UInt8.self)
            let p1 = p0 + total
            if contiguous {
                var i = 0
                while i &+ 4 <= total {
                    let lo = UnsafeRawPointer(p0 + i).loadUnaligned(as: UInt32.self)
                    let hi = UnsafeRawPointer(p1 + i).loadUnaligned(as: UInt32.self)
                    var v: UInt64 = 0
                    for k in 0..<4 {
                        let sh = UInt32(8 &* k)
                        var e = UInt16((lo >> sh) & 0xFF) | UInt16((hi >> sh) & 0xFF) << 8
                        e = (e >> r) | (e << ((16 &- r) & 15))
                        v |= UInt64(e) << UInt64(16 &* k)
                    }
                    dst.storeBytes(of: v, toByteOffset: i &* 2, as: UInt64.self)
                    i &+= 4
                }
                while i < total {
                    var e = UInt16(p0[i]) | UInt16(p1[i]) << 8
                    e = (e >> r) | (e << ((16 &- r) & 15))
                    dst.storeBytes(of: e, toByteOffset: i &* 2, as: UInt16.self)
                    i &+= 1
                }
            } else {
                for b in 0..<count {
                    let d = dst + b &* stride
                    for k in 0..<elements {
                        let i = b &* elements &+ k
                        var e = UInt16(p0[i]) | UInt16(p1[i]) << 8
                        e = (e >> r) | (e << ((16 &- r) & 15))
                        d.storeBytes(of: e, toByteOffset: k &* 2, as: UInt16.self)
                    }
                }
            }
        case 4:
            let r = UInt32(rotate)
            let p = src.assumingMemoryBound(to: UInt8.self)
            for b in 0..<count {
                let d = dst + b &* stride
                for k in 0..<elements {
                    let i = b &* elements &+ k
                    var e = UInt32(p[i]) | UInt32(p[total &+ i]) << 8 | UInt32(p[2 &* total &+ i]) << 16
                        | UInt32(p[3 &* total &+ i]) << 24
                    e = (e >> r) | (e << ((32 &- r) & 31))
                    d.storeBytes(of: e, toByteOffset: k &* 4, as: UInt32.self)
                }
            }
        default:
            let r = UInt64(rotate)
            let p = src.assumingMemoryBound(to: UInt8.self)
            for b in 0..<count {
                let d = dst + b &* stride
                for k in 0..<elements {
                    let i = b &* elements &+ k
                    var e: UInt64 = 0
                    for plane in 0..<8 { e |= UInt64(p[plane &* total &+ i]) << UInt64(8 &* plane) }
                    e = (e >> r) | (e << ((64 &- r) & 63))
                    d.storeBytes(of: e, toByteOffset: k &* 8, as: UInt64.self)
                }
            }
        }
    }

    // MARK: - Contiguous planes (plain element types): simple loops the compiler vectorizes.
    // Rotations 0 and 1 (the ones the writer uses) get loops with constant shifts.

    /// Splits `n` aligned elements into `T.bitWidth / 8` planes of `n` bytes at `out`, in one pass.
    @inline(__always)
    static func splitAligned<T: FixedWidthInteger & UnsignedInteger>(
        _ src: UnsafePointer<T>, _ n: Int, _ r: T, _ out: UnsafeMutablePointer<UInt8>
    ) {
        switch r {
        case 0: splitLoop(src, n, out) { $0 }
        case 1: splitLoop(src, n, out) { ($0 &<< 1) | ($0 &>> T(T.bitWidth - 1)) }
        default: splitLoop(src, n, out) { ($0 &<< r) | ($0 &>> (T(T.bitWidth) &- r)) }
        }
    }

    @inline(__always)
    static func splitLoop<T: FixedWidthInteger & UnsignedInteger>(
        _ src: UnsafePointer<T>, _ n: Int, _ out: UnsafeMutablePointer<UInt8>, _ rot: (T) -> T
    ) {
        switch T.bitWidth {
        case 16:
            let p0 = out, p1 = out + n
            for i in 0..<n {
                let e = rot(src[i])
                p0[i] = UInt8(truncatingIfNeeded: e)
                p1[i] = UInt8(truncatingIfNeeded: e &>> 8)
            }
        case 32:
            let p0 = out, p1 = out + n, p2 = out + 2 &* n, p3 = out + 3 &* n
            for i in 0..<n {
                let e = rot(src[i])
                p0[i] = UInt8(truncatingIfNeeded: e)
                p1[i] = UInt8(truncatingIfNeeded: e &>> 8)
                p2[i] = UInt8(truncatingIfNeeded: e &>> 16)
                p3[i] = UInt8(truncatingIfNeeded: e &>> 24)
            }
        default:
            for p in 0..<(T.bitWidth / 8) {
                let plane = out + p &* n
                let shift = T(8 &* p)
                for i in 0..<n { plane[i] = UInt8(truncatingIfNeeded: rot(src[i]) &>> shift) }
            }
        }
    }

    /// The inverse of `splitAligned`.
    @inline(__always)
    static func mergeAligned<T: FixedWidthInteger & UnsignedInteger>(
        _ planes: UnsafePointer<UInt8>, _ n: Int, _ r: T, _ dst: UnsafeMutablePointer<T>
    ) {
        switch r {
        case 0: mergeLoop(planes, n, dst) { $0 }
        case 1: mergeLoop(planes, n, dst) { ($0 &>> 1) | ($0 &<< T(T.bitWidth - 1)) }
        default: mergeLoop(planes, n, dst) { ($0 &>> r) | ($0 &<< (T(T.bitWidth) &- r)) }
        }
    }

    @inline(__always)
    static func mergeLoop<T: FixedWidthInteger & UnsignedInteger>(
        _ planes: UnsafePointer<UInt8>, _ n: Int, _ dst: UnsafeMutablePointer<T>, _ unrot: (T) -> T
    ) {
        switch T.bitWidth {
        case 16:
            let p0 = planes, p1 = planes + n
            for i in 0..<n { dst[i] = unrot(T(p0[i]) | T(p1[i]) &<< 8) }
        case 32:
            let p0 = planes, p1 = planes + n, p2 = planes + 2 &* n, p3 = planes + 3 &* n
            for i in 0..<n { dst[i] = unrot(T(p0[i]) | T(p1[i]) &<< 8 | T(p2[i]) &<< 16 | T(p3[i]) &<< 24) }
        default:
            for i in 0..<n { dst[i] = 0 }
            for p in 0..<(T.bitWidth / 8) {
                let plane = planes + p &* n
                let shift = T(8 &* p)
                for i in 0..<n { dst[i] |= T(plane[i]) &<< shift }
            }
            for i in 0..<n { dst[i] = unrot(dst[i]) }
        }
    }
}
