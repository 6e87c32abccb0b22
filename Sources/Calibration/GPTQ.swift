import Dispatch
import Kernels
import Quantization
import TensorGraph

/// GPTQ (Frantar et al., 2022) onto ggml's block grids: the columns of a weight matrix (its input
/// dimensions) are quantized in order, and each column's rounding error is spread over the
/// columns not yet quantized so that the layer's output on the calibration inputs moves as little
/// as possible. With H = XᵀX (X the layer's inputs) and U the upper Cholesky factor of H⁻¹, the
/// error of column j, divided by U[j][j], is subtracted from each later column k times U[j][k].
///
/// ggml blocks run along a row, and the values of a scale group (32 consecutive columns for
/// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q5_K, IQ4_XS; 16 for Q6_K, Q3_K, Q2_K) share one
/// scale per row: when the walk reaches a group, each row's scale (and minimum) is chosen from that
/// row's current — already error-updated — values of the group, then held fixed while the group's
/// columns are rounded one by one onto it. K-quant and IQ4_XS super-blocks (256 columns) also
/// share d (and dmin), which their groups' 6-bit (Q6_K: 8-bit, Q2_K: 4-bit) scale codes multiply:
/// those are fixed when the walk reaches the super-block's first column, from the super-block's
/// values at that moment (ggml's importance-weighted encoder run on them, importance = H's
/// diagonal), before any of its groups is chosen. How each type does this is its descriptor's
/// (`GPTQGrid`, `Blocks/*`). The result is ordinary blocks of the type.
public enum GPTQ {
    public struct Options: Sendable {
        /// Dampening added to H's diagonal, as a fraction of its mean (raised tenfold, up to three
        /// times, when H is still not positive definite).
        public var damp: Float = 0.01
        /// Choose each group's scale by importance-weighted search (weights = H's diagonal over the
        /// group's columns) instead of ggml's round-to-nearest scale.
        public var scaleSearch = true
        /// Visit the blocks in decreasing order of importance (the sum of H's diagonal over the
        /// block), the scale groups within a block and the columns within a group likewise,
        /// instead of left to right: GPTQ's "act order" at the granularity ggml's shared block
        /// scales allow. Inputs
        /// with a few huge channels (most LLMs) get those quantized first, their error spread
        /// over everything else rather than everything else's error piled onto them.
        public var actOrder = true
        /// Threads for the row-parallel walk.
        public var threads: Int = 1
        /// Keep, row by row, the type's importance-weighted rounding (importance = H's diagonal)
        /// wherever its output error on the calibration inputs (δ H δᵀ for that row) is below the
        /// walk's. The walk is greedy and can diverge: on a row with a huge weight in a
        /// massive-activation column, the compensation it spreads can push the row's other values
        /// past what a super-block's fixed d lets their scale codes reach (IQ4_XS, SmolLM2's
        /// blk.28.ffn_down), and each saturated group spreads more.
        public var rowGuard = true
        /// Run the walk on a tied embedding (`token_embd.weight` serving as the head) too; off, it
        /// takes the importance-weighted rounding (`GPTQRunner.weightedRounding`). Neither wins
        /// everywhere: SmolLM2-135M all-Q4_0, mean KLD 0.182 walked vs 0.208 weighted; Gemma 3
        /// 270M's budgeted mix with token_embd at Q5_1, 0.0090 walked vs 0.0078 weighted.
        public var walkTiedEmbedding = true

        public init(
            damp: Float = 0.01, scaleSearch: Bool = true, actOrder: Bool = true, threads: Int = 1, rowGuard: Bool = true,
            walkTiedEmbedding: Bool = true
        ) {
            self.damp = damp
            self.scaleSearch = scaleSearch
            self.actOrder = actOrder
            self.threads = threads
            self.rowGuard = rowGuard
            self.walkTiedEmbedding = walkTiedEmbedding
        }
    }

    /// Rows handled together by one thread (the walk streams U's rows once per such group).
    static let rowGroup = 32

    /// Quantizes `w` ([rows × cols], row-major) to `dtype` given `hessian` ([cols × cols], XᵀX up to
    /// a positive factor; only its upper triangle is read). Returns the blocks as a GGUF stores
    /// them and the values they decode to.
    public static func quantize(
        _ w: UnsafePointer<Float>, rows: Int, cols: Int, hessian: UnsafePointer<Float>, dtype: DType,
        options: Options = .init(), name: String = "weight"
    ) throws -> (blocks: [UInt8], values: [Float]) {
        guard let layout = GPTQGrid.layout(dtype) else { throw QuantizationError.noEncoder(dtype) }
        let B = layout.blockSize, G = layout.groupSize
        guard cols % B == 0, cols > 0, rows > 0 else {
            throw QuantizationError.notBlockAligned(tensor: name, shape: [rows, cols], target: dtype, blockSize: B)
        }
        // The importance of each column: H's diagonal.
        var diag = [Float](repeating: 0, count: cols)
        for i in 0..<cols { diag[i] = max(0, hessian[i * cols + i]) }
        // The visiting order (walk position → column): blocks, the scale groups within a block and
        // the columns within a group each stay contiguous.
        var order = Array(0..<cols)
        if options.actOrder {
            func total(_ r: Range<Int>) -> Float { diag[r].reduce(0, +) }
            func byImportance(_ units: [Int], size: Int) -> [Int] {
                units.sorted { a, b in
                    let sa = total((a * size)..<(a * size + size)), sb = total((b * size)..<(b * size + size))
                    return sa != sb ? sa > sb : a < b
                }
            }
            order = byImportance(Array(0..<(cols / B)), size: B).flatMap { blk in
                byImportance(Array((blk * B / G)..<((blk + 1) * B / G)), size: G).flatMap { g in
                    (g * G..<(g * G + G)).sorted { diag[$0] != diag[$1] ? diag[$0] > diag[$1] : $0 < $1 }
                }
            }
        }
        var position = [Int](repeating: 0, count: cols)
        for (j, c) in order.enumerated() { position[c] = j }
        // H in walk order.
        let permuted = UnsafeMutablePointer<Float>.allocate(capacity: cols * cols)
        defer { permuted.deallocate() }
        for i in 0..<cols {
            let oi = order[i]
            for j in i..<cols {
                let oj = order[j]
                permuted[i * cols + j] = oi <= oj ? hessian[oi * cols + oj] : hessian[oj * cols + oi]
            }
        }
        let u = try inverseFactor(permuted, n: cols, damp: options.damp, name: name)
        defer { u.deallocate() }

        let rowBytes = cols / B * dtype.bytesPerBlock
        var blocks = [UInt8](repeating: 0, count: rows * rowBytes)
        var table: [Float] = []
        var (lo, hi): (Int32, Int32) = (0, 0)
        switch layout.levels {
        case .integers(let a, let b): (lo, hi) = (a, b)
        case .table(let t): table = t
        }
        blocks.withUnsafeMutableBytes { out in
            diag.withUnsafeBufferPointer { diag in
                order.withUnsafeBufferPointer { order in
                    position.withUnsafeBufferPointer { position in
                        table.withUnsafeBufferPointer { table in
                            let groups = (rows + rowGroup - 1) / rowGroup
                            let shared = Shared(
                                w: w, u: u, diag: diag.baseAddress!, order: order.baseAddress!, position: position.baseAddress!,
                                out: out.baseAddress!, dtype: dtype, blockSize: B, groupSize: G, lo: lo, hi: hi,
                                table: table.isEmpty ? nil : table.baseAddress!)
                            let parts = max(1, min(options.threads, groups))
                            DispatchQueue.concurrentPerform(iterations: parts) { p in
                                for g in stride(from: p, to: groups, by: parts) {
                                    let r0 = g * rowGroup
                                    walk(shared, rows: r0..<min(rows, r0 + rowGroup), cols: cols, search: options.scaleSearch)
                                }
                            }
                        }
                    }
                }
            }
        }
        if options.rowGuard {
            _ = try guardRows(w, rows: rows, cols: cols, hessian: hessian, importance: diag, dtype: dtype, blocks: &blocks)
        }
        let values = try blocks.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
        return (blocks, values)
    }

    /// Replaces in `blocks` every row whose output error on the calibration inputs, δ H δᵀ with δ
    /// the row's change, is larger than that of the type's importance-weighted rounding of the
    /// original row (`Quantize.weightedRows`, importance = H's diagonal) by that rounding's bytes.
    /// Returns how many rows were replaced (0 when the type has no weighted encoder).
    static func guardRows(
        _ w: UnsafePointer<Float>, rows: Int, cols: Int, hessian: UnsafePointer<Float>, importance: [Float], dtype: DType,
        blocks: inout [UInt8]
    ) throws -> Int {
        var weighted = [UInt8](repeating: 0, count: blocks.count)
        do {
            try importance.withUnsafeBufferPointer { ip in
                try weighted.withUnsafeMutableBytes {
                    try Quantize.weightedRows(dtype, w, rows: rows, rowLength: cols, importance: ip.baseAddress!, into: $0.baseAddress!)
                }
            }
        } catch QuantizationError.noEncoder { return 0 }
        let walked = try blocks.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
        let other = try weighted.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
        // H symmetric (only its upper triangle is promised).
        var h = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols {
            for j in i..<cols {
                h[i * cols + j] = hessian[i * cols + j]
                h[j * cols + i] = hessian[i * cols + j]
            }
        }
        func rowErrors(_ q: [Float]) -> [Double] {
            var d = [Float](repeating: 0, count: rows * cols)
            for i in 0..<(rows * cols) { d[i] = w[i] - q[i] }
            var prod = [Float](repeating: 0, count: rows * cols)
            d.withUnsafeBufferPointer { dp in
                h.withUnsafeBufferPointer { hp in
                    prod.withUnsafeMutableBufferPointer { pp in
                        BLAS.sgemm(m: rows, n: cols, k: cols, a: dp.baseAddress!, b: hp.baseAddress!, c: pp.baseAddress!)
                    }
                }
            }
            return (0..<rows).map { r in
                var e = 0.0
                for c in 0..<cols { e += Double(prod[r * cols + c]) * Double(d[r * cols + c]) }
                return e
            }
        }
        let eWalk = rowErrors(walked), eWeighted = rowErrors(other)
        let rowBytes = blocks.count / rows
        var replaced = 0
        for r in 0..<rows where eWeighted[r] < eWalk[r] {
            blocks.replaceSubrange((r * rowBytes)..<((r + 1) * rowBytes), with: weighted[(r * rowBytes)..<((r + 1) * rowBytes)])
            replaced += 1
        }
        return replaced
    }

    /// Pointers shared by the row groups (each writes only its own rows' blocks), and the grid.
    struct Shared: @unchecked Sendable {
        let w: UnsafePointer<Float>
        let u: UnsafeMutablePointer<Float>
        /// H's diagonal, by column.
        let diag: UnsafePointer<Float>
        /// Walk position → column, and column → walk position.
        let order: UnsafePointer<Int>
        let position: UnsafePointer<Int>
        let out: UnsafeMutableRawPointer
        let dtype: DType
        /// Columns per block and per scale group.
        let blockSize: Int
        let groupSize: Int
        /// Integer codes lo…hi, or (non-nil) the table of levels.
        let lo: Int32
        let hi: Int32
        let table: UnsafePointer<Float>?
    }

    /// U with H⁻¹ = UᵀU for H dampened (columns that never saw input get a unit diagonal).
    static func inverseFactor(_ hessian: UnsafePointer<Float>, n: Int, damp: Float, name: String) throws
        -> UnsafeMutablePointer<Float>
    {
        var mean: Double = 0
        for i in 0..<n { mean += Double(max(0, hessian[i * n + i])) }
        mean /= Double(n)
        if mean <= 0 { mean = 1 }
        let u = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        var factor = damp
        for attempt in 0..<4 {
            for i in 0..<n {
                for j in 0..<n { u[i * n + j] = j >= i ? hessian[i * n + j] : hessian[j * n + i] }
                // A dead input (never non-zero, so its row and column of H are zero too): its
                // column's rounding error costs nothing and is spread nowhere.
                if u[i * n + i] <= 0 { u[i * n + i] = 1 }
                u[i * n + i] += factor * Float(mean)
            }
            do {
                try LAPACK.inverseCholeskyUpper(u, n: n)
                return u
            } catch {
                if attempt == 3 {
                    u.deallocate()
                    throw CalibrationError.numerical(
                        tensor: name, reason: "the Hessian stays singular after dampening by \(factor) of its mean diagonal: \(error)")
                }
                factor *= 10
            }
        }
        fatalError("unreachable")
    }

    /// The walk over all columns for a group of rows, in `s.order` (walk position j holds column
    /// order[j]). At a block's first position each row's block scales (a super-block's d/dmin) are
    /// fixed from the block's current values; at a group's first position each row's group scale
    /// is chosen from the group's current values under them; then the columns are rounded one by
    /// one and each one's error is spread onto the positions after it.
    static func walk(_ s: Shared, rows: Range<Int>, cols: Int, search: Bool) {
        let R = rows.count
        let B = s.blockSize, G = s.groupSize
        let lo = s.lo, hi = s.hi, table = s.table
        // Working copy in walk order, position-major: wt[j * R + r] is row r's current value at
        // walk position j.
        let wt = UnsafeMutablePointer<Float>.allocate(capacity: cols * R)
        let err = UnsafeMutablePointer<Float>.allocate(capacity: R)
        // Codes in column order (row-major); block and group scales per row.
        let codes = UnsafeMutablePointer<Int32>.allocate(capacity: R * cols)
        let blocksPerRow = cols / B, groupsPerRow = cols / G
        let blockScales = UnsafeMutablePointer<GPTQGrid.BlockScale>.allocate(capacity: R * blocksPerRow)
        let groupScales = UnsafeMutablePointer<GPTQGrid.GroupScale>.allocate(capacity: R * groupsPerRow)
        let current = UnsafeMutablePointer<GPTQGrid.GroupScale>.allocate(capacity: R)
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: B)
        defer {
            wt.deallocate()
            err.deallocate()
            codes.deallocate()
            blockScales.deallocate()
            groupScales.deallocate()
            current.deallocate()
            tmp.deallocate()
        }
        for (r, row) in rows.enumerated() {
            let src = s.w + row * cols
            for j in 0..<cols { wt[j * R + r] = src[s.order[j]] }
        }
        for j in 0..<cols {
            if j % B == 0 && B != G {
                // A super-block begins: its d/dmin, from its current values in column order.
                let block = s.order[j] / B
                for r in 0..<R {
                    for i in 0..<B { tmp[i] = wt[s.position[block * B + i] * R + r] }
                    blockScales[r * blocksPerRow + block] = GPTQGrid.blockScale(s.dtype, tmp, weights: s.diag + block * B)
                }
            }
            if j % G == 0 {
                let group = s.order[j] / G, block = group * G / B
                for r in 0..<R {
                    for i in 0..<G { tmp[i] = wt[s.position[group * G + i] * R + r] }
                    let bs = B != G ? blockScales[r * blocksPerRow + block] : GPTQGrid.BlockScale(d: 0, dmin: 0)
                    current[r] = GPTQGrid.groupScale(s.dtype, tmp, weights: s.diag + group * G, block: bs, search: search)
                    groupScales[r * groupsPerRow + group] = current[r]
                }
            }
            let d = s.u[j * cols + j]
            let column = wt + j * R
            let c = s.order[j]
            for r in 0..<R {
                let q = GPTQGrid.round(column[r], current[r], lo: lo, hi: hi, table: table)
                codes[r * cols + c] = q.code
                err[r] = (column[r] - q.value) / d
            }
            // Spread the error onto the positions after j.
            let urow = s.u + j * cols
            for k in (j + 1)..<max(j + 1, cols) {
                let f = urow[k]
                if f == 0 { continue }
                let target = wt + k * R
                for r in 0..<R { target[r] -= f * err[r] }
            }
        }
        let rowBytes = blocksPerRow * s.dtype.bytesPerBlock
        for (r, row) in rows.enumerated() {
            for b in 0..<blocksPerRow {
                GPTQGrid.pack(
                    s.dtype, codes: codes + r * cols + b * B,
                    block: B != G ? blockScales[r * blocksPerRow + b] : GPTQGrid.BlockScale(d: 0, dmin: 0),
                    groups: groupScales + r * groupsPerRow + b * (B / G),
                    into: s.out + row * rowBytes + b * s.dtype.bytesPerBlock)
            }
        }
    }
}
