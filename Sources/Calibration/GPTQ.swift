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
/// ggml blocks run along a row over 32 consecutive columns, so every group of 32 columns shares
/// one scale per row: when the walk reaches a group, each row's scale (and Q4_1 offset) is chosen
/// from that row's current — already error-updated — values of the group, then held fixed while
/// the group's columns are rounded one by one onto it. The result is ordinary Q8_0/Q4_0/Q4_1
/// blocks.
public enum GPTQ {
    public struct Options: Sendable {
        /// Dampening added to H's diagonal, as a fraction of its mean (raised tenfold, up to three
        /// times, when H is still not positive definite).
        public var damp: Float = 0.01
        /// Choose each group's scale by importance-weighted search (weights = H's diagonal over the
        /// group's columns) instead of ggml's round-to-nearest scale.
        public var scaleSearch = true
        /// Visit the blocks of 32 columns in decreasing order of importance (the sum of H's
        /// diagonal over the block), and the columns within a block likewise, instead of left to
        /// right: GPTQ's "act order" at the granularity ggml's shared block scales allow. Inputs
        /// with a few huge channels (most LLMs) get those quantized first, their error spread
        /// over everything else rather than everything else's error piled onto them.
        public var actOrder = true
        /// Threads for the row-parallel walk.
        public var threads: Int = 1

        public init(damp: Float = 0.01, scaleSearch: Bool = true, actOrder: Bool = true, threads: Int = 1) {
            self.damp = damp
            self.scaleSearch = scaleSearch
            self.actOrder = actOrder
            self.threads = threads
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
        guard BlockGrid.isSupported(dtype) else { throw QuantizationError.noEncoder(dtype) }
        guard cols % 32 == 0, cols > 0, rows > 0 else {
            throw QuantizationError.notBlockAligned(tensor: name, shape: [rows, cols], target: dtype, blockSize: 32)
        }
        // The importance of each column: H's diagonal.
        var diag = [Float](repeating: 0, count: cols)
        for i in 0..<cols { diag[i] = max(0, hessian[i * cols + i]) }
        // The visiting order (walk position → column); blocks stay contiguous.
        var order = Array(0..<cols)
        if options.actOrder {
            let blocks = (0..<(cols / 32)).sorted { a, b in
                let sa = diag[(a * 32)..<(a * 32 + 32)].reduce(0, +), sb = diag[(b * 32)..<(b * 32 + 32)].reduce(0, +)
                return sa != sb ? sa > sb : a < b
            }
            order = blocks.flatMap { b in (b * 32..<(b * 32 + 32)).sorted { diag[$0] != diag[$1] ? diag[$0] > diag[$1] : $0 < $1 } }
        }
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
        let walkDiag = order.map { diag[$0] }

        let rowBytes = cols / 32 * dtype.bytesPerBlock
        var blocks = [UInt8](repeating: 0, count: rows * rowBytes)
        blocks.withUnsafeMutableBytes { out in
            walkDiag.withUnsafeBufferPointer { diag in
                order.withUnsafeBufferPointer { order in
                let groups = (rows + rowGroup - 1) / rowGroup
                let shared = Shared(w: w, u: u, diag: diag.baseAddress!, order: order.baseAddress!, out: out.baseAddress!)
                let parts = max(1, min(options.threads, groups))
                DispatchQueue.concurrentPerform(iterations: parts) { p in
                    for g in stride(from: p, to: groups, by: parts) {
                        let r0 = g * rowGroup
                        walk(shared, rows: r0..<min(rows, r0 + rowGroup), cols: cols, dtype: dtype, search: options.scaleSearch)
                    }
                }
                _ = shared
                }
            }
            _ = out
        }
        let values = try blocks.withUnsafeBytes { try Dequantize.toF32(dtype, $0) }
        return (blocks, values)
    }

    /// Pointers shared by the row groups (each writes only its own rows' blocks).
    struct Shared: @unchecked Sendable {
        let w: UnsafePointer<Float>
        let u: UnsafeMutablePointer<Float>
        /// H's diagonal in walk order.
        let diag: UnsafePointer<Float>
        /// Walk position → column.
        let order: UnsafePointer<Int>
        let out: UnsafeMutableRawPointer
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

    /// The walk over all columns for a group of rows, in `s.order` (walk position j holds
    /// column order[j]; every 32 consecutive positions are one block's columns).
    static func walk(_ s: Shared, rows: Range<Int>, cols: Int, dtype: DType, search: Bool) {
        let R = rows.count
        let (lo, hi) = BlockGrid.codeRange(dtype)
        // Working copy in walk order, position-major: wt[j * R + r] is row r's current value at
        // walk position j.
        let wt = UnsafeMutablePointer<Float>.allocate(capacity: cols * R)
        let err = UnsafeMutablePointer<Float>.allocate(capacity: R)
        // Codes in column order (row-major), one scale per row and block.
        let codes = UnsafeMutablePointer<Int32>.allocate(capacity: R * cols)
        let scales = UnsafeMutablePointer<BlockGrid.Scale>.allocate(capacity: R * (cols / 32))
        let current = UnsafeMutablePointer<BlockGrid.Scale>.allocate(capacity: R)
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: 32)
        defer {
            wt.deallocate()
            err.deallocate()
            codes.deallocate()
            scales.deallocate()
            current.deallocate()
            tmp.deallocate()
        }
        for (r, row) in rows.enumerated() {
            let src = s.w + row * cols
            for j in 0..<cols { wt[j * R + r] = src[s.order[j]] }
        }
        let blocksPerRow = cols / 32
        for j in 0..<cols {
            if j % 32 == 0 {
                let block = s.order[j] / 32
                for r in 0..<R {
                    for i in 0..<32 { tmp[i] = wt[(j + i) * R + r] }
                    current[r] = search
                        ? BlockGrid.searchScale(dtype, tmp, weights: s.diag + j)
                        : BlockGrid.referenceScale(dtype, tmp)
                    scales[r * blocksPerRow + block] = current[r]
                }
            }
            let d = s.u[j * cols + j]
            let column = wt + j * R
            let c = s.order[j]
            for r in 0..<R {
                let q = BlockGrid.round(column[r], current[r], lo: lo, hi: hi)
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
        let rowBytes = blocksPerRow * dtype.bytesPerBlock
        for (r, row) in rows.enumerated() {
            for b in 0..<blocksPerRow {
                BlockGrid.pack(
                    dtype, codes: codes + r * cols + b * 32, scale: scales[r * blocksPerRow + b],
                    into: s.out + row * rowBytes + b * dtype.bytesPerBlock)
            }
        }
    }
}
