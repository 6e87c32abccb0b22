import TensorGraph

/// How GPTQ rounds onto one block type: a block of `elements` columns (32, or a 256-value
/// super-block) split into scale groups of `groupSize` columns; every value of a group decodes as
/// `level(code) × d + m` with the group's (d, m). GPTQ walks the columns in order; a type declares
///
/// - `gptqBlockScale`: the super-block's shared scales (d, dmin), fixed once, **when the walk
///   reaches the super-block's first column**, from the super-block's values at that moment (the
///   original weights plus the error spread onto them so far): ggml's own importance-weighted
///   encoder is run on those values (importance = the Hessian's diagonal) and its d/dmin kept;
///   32-value types without a super-block have none;
/// - `gptqGroupScale`: a group's scale (and minimum), chosen **when the walk reaches the group's
///   first column**, from the group's current (error-updated) values, under the fixed d/dmin: a
///   continuous least-squares fit gives a first estimate, and the nearest integer scale codes
///   around it are scored by importance-weighted squared error after rounding to the grid;
/// - `gptqPack`: the block's bytes from its codes, its d/dmin and its groups' scale codes.
///
/// Each type's conformance sits next to its codec in `Blocks/`; the 32-value code grids
/// (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) conform through `GridBlock`.
protocol GPTQRoundable: QuantEncodable {
    /// Columns sharing one (d, m).
    static var gptqGroupSize: Int { get }
    /// What a code decodes to, before the group's scale.
    static var gptqLevels: GPTQGrid.Levels { get }
    /// The super-block's shared scales, from its `elements` current values (in column order) and
    /// their non-negative importance.
    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale
    /// A group's scale from its `gptqGroupSize` current values and importance, under `block`.
    /// `search` false: the first estimate only (no scoring of neighbours).
    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale
    /// Writes one block from its `elements` codes (column order), d/dmin and group scales.
    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer)
}

extension GPTQRoundable {
    static func gptqBlockScale(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> GPTQGrid.BlockScale {
        GPTQGrid.BlockScale(d: 0, dmin: 0)
    }
}

/// The public face of `GPTQRoundable`: what the GPTQ walk (in Calibration) needs, by `DType`.
public enum GPTQGrid {
    /// The values codes stand for: consecutive integers lo…hi, or a table indexed by the code.
    public enum Levels: Sendable, Equatable {
        case integers(lo: Int32, hi: Int32)
        case table([Float])
    }

    /// A super-block's shared scales as stored (f16-representable), 0 for types without them.
    public struct BlockScale: Sendable, Equatable {
        public var d: Float
        public var dmin: Float
        public init(d: Float, dmin: Float) {
            self.d = d
            self.dmin = dmin
        }
    }

    /// A group's scale: values decode as `level(code) × d + m` (d, m exactly as the decoder forms
    /// them); `scale` and `min` are the stored codes (unused by types that store d and m directly).
    public struct GroupScale: Sendable, Equatable {
        public var d: Float
        public var m: Float
        public var scale: Int32
        public var min: Int32
        public init(d: Float, m: Float = 0, scale: Int32 = 0, min: Int32 = 0) {
            self.d = d
            self.m = m
            self.scale = scale
            self.min = min
        }
    }

    /// Columns per block, columns per scale group, and the levels.
    public struct Layout: Sendable, Equatable {
        public let blockSize: Int
        public let groupSize: Int
        public let levels: Levels
    }

    static func codec(_ dtype: DType) -> (any GPTQRoundable.Type)? { BlockTypes.codecs[dtype] as? any GPTQRoundable.Type }

    static func require(_ dtype: DType) -> any GPTQRoundable.Type {
        guard let c = codec(dtype) else { preconditionFailure("GPTQ cannot round onto \(dtype.displayName) (check GPTQGrid.isSupported)") }
        return c
    }

    /// Whether GPTQ can round onto `dtype`.
    public static func isSupported(_ dtype: DType) -> Bool { codec(dtype) != nil }

    /// The types GPTQ rounds onto, in `DType` order.
    public static var supportedTypes: [DType] { DType.allCases.filter(isSupported) }

    /// `dtype`'s layout for GPTQ, or nil.
    public static func layout(_ dtype: DType) -> Layout? {
        codec(dtype).map { Layout(blockSize: $0.elements, groupSize: $0.gptqGroupSize, levels: $0.gptqLevels) }
    }

    public static func blockScale(_ dtype: DType, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>) -> BlockScale {
        require(dtype).gptqBlockScale(x, weights: weights)
    }

    public static func groupScale(
        _ dtype: DType, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: BlockScale, search: Bool
    ) -> GroupScale {
        require(dtype).gptqGroupScale(x, weights: weights, block: block, search: search)
    }

    public static func pack(
        _ dtype: DType, codes: UnsafePointer<Int32>, block: BlockScale, groups: UnsafePointer<GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        require(dtype).gptqPack(codes: codes, block: block, groups: groups, into: dst)
    }

    /// The nearest code to `x` under `g` and the value it decodes to: integers by rounding (ties
    /// to even, clamped); a table (sorted, 16 entries) by `ggmlBestIndex` on (x − m) / d. A zero
    /// scale gives the code nearest 0 (value m).
    @inline(__always)
    public static func round(_ x: Float, _ g: GroupScale, lo: Int32, hi: Int32, table: UnsafePointer<Float>?) -> (code: Int32, value: Float) {
        guard let table else {
            let r = BlockGrid.round(x, BlockGrid.Scale(d: g.d, m: g.m), lo: lo, hi: hi)
            return r
        }
        let v: Float = g.d != 0 ? (x - g.m) / g.d : 0
        let i = ggmlBestIndex(table, v.isNaN ? 0 : v)
        return (Int32(i), table[i] * g.d + g.m)
    }

    /// Σ w (x − x̂)² over `n` values under `g`.
    @inline(__always)
    static func error(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ n: Int, _ g: GroupScale, lo: Int32, hi: Int32,
        table: UnsafePointer<Float>?
    ) -> Float {
        var e: Float = 0
        for i in 0..<n {
            let diff = x[i] - round(x[i], g, lo: lo, hi: hi, table: table).value
            e += w[i] * diff * diff
        }
        return e
    }

    /// The group scale for super-block types whose groups store integer codes against d (and
    /// dmin): `scale × d`, `−(min × dmin)`. The estimate (`scale`, `min`, continuous) is turned into
    /// codes by rounding against d and dmin; with `search`, codes within `radius` of those (and of
    /// the minimum's by 1) are scored and the best kept. Ranges are inclusive.
    static func integerGroupScale(
        _ x: UnsafePointer<Float>, weights w: UnsafePointer<Float>, n: Int, block: BlockScale, estimate: (scale: Float, min: Float),
        scaleCodes: ClosedRange<Int32>, minCodes: ClosedRange<Int32>?, levels: Levels, search: Bool, radius: Int32 = 2
    ) -> GroupScale {
        func make(_ s: Int32, _ m: Int32) -> GroupScale {
            GroupScale(d: block.d * Float(s), m: minCodes == nil ? 0 : -(block.dmin * Float(m)), scale: s, min: m)
        }
        @inline(__always) func nearest(_ v: Float, _ r: ClosedRange<Int32>) -> Int32 {
            guard v.isFinite else { return r.clamp(0) }
            return r.clamp(ggmlNearestInt(Swift.max(-1e6, Swift.min(1e6, v))))
        }
        let s0 = block.d != 0 ? nearest(estimate.scale / block.d, scaleCodes) : scaleCodes.clamp(0)
        let m0: Int32 = minCodes.map { r in block.dmin != 0 ? nearest(estimate.min / block.dmin, r) : r.clamp(0) } ?? 0
        guard search, block.d != 0 else { return make(s0, m0) }
        func run(_ lo: Int32, _ hi: Int32, _ tp: UnsafePointer<Float>?) -> GroupScale {
            var best = make(s0, m0)
            var bestError = error(x, w, n, best, lo: lo, hi: hi, table: tp)
            let mRadius: Int32 = minCodes == nil ? 0 : 1
            for ds in -radius...radius {
                let s = s0 + ds
                guard scaleCodes.contains(s) else { continue }
                for dm in -mRadius...mRadius {
                    let m = m0 + dm
                    if let r = minCodes, !r.contains(m) { continue }
                    if ds == 0 && dm == 0 { continue }
                    let g = make(s, m)
                    let e = error(x, w, n, g, lo: lo, hi: hi, table: tp)
                    if e < bestError {
                        bestError = e
                        best = g
                    }
                }
            }
            return best
        }
        switch levels {
        case .integers(let lo, let hi): return run(lo, hi, nil)
        case .table(let t): return t.withUnsafeBufferPointer { run(0, 0, $0.baseAddress!) }
        }
    }

    /// Runs `encode` (a type's importance-weighted encoder for one block) on `x` into a scratch
    /// block and returns what `read` takes from it; the unweighted encoder when the weights are
    /// all zero or give non-finite scales.
    static func encodedBlock<T: QuantEncodable>(
        _ type: T.Type, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, read: (UnsafeRawPointer) -> BlockScale
    ) -> BlockScale {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: T.bytes) { buf in
            let dst = UnsafeMutableRawPointer(buf.baseAddress!)
            var total: Float = 0
            for i in 0..<T.elements { total += weights[i] }
            if total > 0, total.isFinite {
                T.encodeWeighted(x, rowLength: T.elements, importance: weights, into: dst)
                let s = read(UnsafeRawPointer(dst))
                if s.d.isFinite, s.dmin.isFinite { return s }
            }
            T.encode(x, into: dst, count: 1)
            return read(UnsafeRawPointer(dst))
        }
    }
}

extension ClosedRange where Bound == Int32 {
    @inline(__always)
    func clamp(_ v: Int32) -> Int32 { Swift.max(lowerBound, Swift.min(upperBound, v)) }
}

// MARK: - The 32-value code grids

extension GridBlock {
    static var gptqGroupSize: Int { 32 }
    static var gptqLevels: GPTQGrid.Levels { .integers(lo: codeRange.lo, hi: codeRange.hi) }

    static func gptqGroupScale(
        _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, block: GPTQGrid.BlockScale, search: Bool
    ) -> GPTQGrid.GroupScale {
        let s = search ? BlockGrid.searchScale(dtype, x, weights: weights) : referenceScale(x)
        return GPTQGrid.GroupScale(d: s.d, m: s.m)
    }

    static func gptqPack(
        codes: UnsafePointer<Int32>, block: GPTQGrid.BlockScale, groups: UnsafePointer<GPTQGrid.GroupScale>,
        into dst: UnsafeMutableRawPointer
    ) {
        pack(codes: codes, scale: BlockGrid.Scale(d: groups[0].d, m: groups[0].m), into: dst)
    }
}
