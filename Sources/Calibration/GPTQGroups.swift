import Dispatch
import Formats
import Kernels
import Quantization
import TensorGraph

/// GPTQ onto an integer group grid (GPTQ checkpoints, compressed-tensors): the same walk as
/// `GPTQ.quantize` for ggml blocks (H⁻¹'s upper Cholesky factor from `GPTQ.inverseFactor`, each
/// column's error spread onto the columns after it), with groups of `grid.groupSize` columns in
/// place of 32-value blocks. Groups stay contiguous — with `actOrder` the walk visits whole groups
/// in decreasing importance and the columns within each likewise (GPTQModel's "static groups"
/// act order), so no `g_idx` permutation is needed and the result still moves exactly to Q4_0 or
/// Q8_0 where the group size covers whole blocks. A group's scale and zero are chosen when the
/// walk reaches it, from the row's already error-updated values (min-max, or with `scaleSearch`
/// the candidate minimising the error weighted by H's diagonal). On MLX's affine grid
/// (`grid.affineBias`) the walk rounds with the f16 scale and f16 bias the file stores, so the
/// values it compensates for are the values the file decodes to.
extension GPTQ {
    public static func quantize(
        _ w: UnsafePointer<Float>, rows: Int, cols: Int, hessian: UnsafePointer<Float>, grid: IntGroupGrid,
        options: Options = .init(), name: String = "weight"
    ) throws -> GroupQuantizedMatrix {
        guard cols > 0, rows > 0 else {
            throw CalibrationError.numerical(tensor: name, reason: "empty matrix [\(rows), \(cols)]")
        }
        let gs = grid.groupSize, groups = grid.groups(cols: cols)
        var diag = [Float](repeating: 0, count: cols)
        for i in 0..<cols { diag[i] = max(0, hessian[i * cols + i]) }
        let groupCols = (0..<groups).map { g in (g * gs)..<min(cols, (g + 1) * gs) }
        var groupOrder = Array(0..<groups)
        if options.actOrder {
            let weight = groupCols.map { r in diag[r].reduce(0, +) }
            groupOrder.sort { weight[$0] != weight[$1] ? weight[$0] > weight[$1] : $0 < $1 }
        }
        var order: [Int] = []
        var starts: [Int: Int] = [:]  // walk position → group starting there
        for g in groupOrder {
            starts[order.count] = g
            let cs = Array(groupCols[g])
            order += options.actOrder ? cs.sorted { diag[$0] != diag[$1] ? diag[$0] > diag[$1] : $0 < $1 } : cs
        }
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

        var codes = [UInt8](repeating: 0, count: rows * cols)
        var params = [IntGroupGrid.Group](repeating: .init(scale: 0, zero: 0, bias: 0), count: rows * groups)
        codes.withUnsafeMutableBufferPointer { cp in
            params.withUnsafeMutableBufferPointer { pp in
                walkDiag.withUnsafeBufferPointer { dp in
                    order.withUnsafeBufferPointer { op in
                        let shared = GroupWalk(
                            w: w, u: u, diag: dp.baseAddress!, order: op.baseAddress!, codes: cp.baseAddress!,
                            params: pp.baseAddress!, starts: starts, groupCols: groupCols,
                            grid: grid, search: options.scaleSearch)
                        let rowGroups = (rows + rowGroup - 1) / rowGroup
                        let parts = max(1, min(options.threads, rowGroups))
                        DispatchQueue.concurrentPerform(iterations: parts) { p in
                            for g in stride(from: p, to: rowGroups, by: parts) {
                                let r0 = g * rowGroup
                                shared.walk(rows: r0..<min(rows, r0 + rowGroup), cols: cols)
                            }
                        }
                    }
                }
            }
        }
        return grid.matrix(rows: rows, cols: cols, codes: codes, groups: params, format: "GPTQ")
    }

    /// Importance-weighted parameters for one group: min-max's, and scales from 0.80 to 1.05 of it
    /// (zero re-chosen for each; on an affine grid the bias re-centred on the range), keeping the
    /// one with the least Σ weight · error².
    static func searchParameters(_ x: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, grid: IntGroupGrid) -> IntGroupGrid.Group {
        let base = grid.group(x)
        var lo: Float = 0, hi: Float = 0
        if grid.affineBias {
            (lo, hi) = (.infinity, -.infinity)
            for v in x where v.isFinite {
                lo = min(lo, v)
                hi = max(hi, v)
            }
        } else {
            for v in x { lo = min(lo, v) }
        }
        func cost(_ g: IntGroupGrid.Group) -> Float {
            var e: Float = 0
            for i in 0..<x.count {
                let q = grid.value(grid.code(x[i], g), g)
                e += weights[i] * (x[i] - q) * (x[i] - q)
            }
            return e
        }
        var best = base
        var bestCost = cost(base)
        guard lo <= hi else { return best }
        for k in 0..<26 {
            let f = 0.80 + Float(k) * 0.01
            let candidate: IntGroupGrid.Group
            if grid.affineBias {
                candidate = grid.affineGroup(scale: base.scale * f, lo: lo, hi: hi)
                if candidate.scale == 0 || !candidate.scale.isFinite || !candidate.bias.isFinite || candidate == best { continue }
            } else {
                var s = Half.f32(f16Bits: Half.f16Bits(base.scale * f))
                if !(s > 0) { continue }
                if s == best.scale { continue }
                s = s.isFinite ? s : base.scale
                let z = grid.symmetric ? grid.midpoint : Int32(max(0, min(Float(grid.maxq), (-lo / s).rounded())))
                candidate = IntGroupGrid.Group(scale: s, zero: z, bias: -Float(z) * s)
            }
            let c = cost(candidate)
            if c < bestCost {
                bestCost = c
                best = candidate
            }
        }
        return best
    }

    /// Importance-weighted round to nearest (no Hessian): each group's parameters by
    /// `searchParameters` with the importance of its columns (an importance matrix's entry).
    public static func weightedRTN(_ values: [Float], rows: Int, cols: Int, importance: [Float], grid: IntGroupGrid) -> GroupQuantizedMatrix {
        let groups = grid.groups(cols: cols)
        var codes = [UInt8](repeating: 0, count: rows * cols)
        var params = [IntGroupGrid.Group](repeating: .init(scale: 0, zero: 0, bias: 0), count: rows * groups)
        values.withUnsafeBufferPointer { v in
            importance.withUnsafeBufferPointer { imp in
                for r in 0..<rows {
                    for g in 0..<groups {
                        let c0 = g * grid.groupSize, c1 = min(cols, c0 + grid.groupSize)
                        let p = searchParameters(
                            UnsafeBufferPointer(rebasing: v[(r * cols + c0)..<(r * cols + c1)]),
                            weights: UnsafeBufferPointer(rebasing: imp[c0..<c1]), grid: grid)
                        params[r * groups + g] = p
                        for c in c0..<c1 { codes[r * cols + c] = grid.code(v[r * cols + c], p) }
                    }
                }
            }
        }
        return grid.matrix(rows: rows, cols: cols, codes: codes, groups: params, format: "round to nearest + importance")
    }
}

/// Pointers shared by the row groups of one walk (each writes only its own rows).
struct GroupWalk: @unchecked Sendable {
    let w: UnsafePointer<Float>
    let u: UnsafeMutablePointer<Float>
    let diag: UnsafePointer<Float>
    let order: UnsafePointer<Int>
    let codes: UnsafeMutablePointer<UInt8>
    let params: UnsafeMutablePointer<IntGroupGrid.Group>
    let starts: [Int: Int]
    let groupCols: [Range<Int>]
    let grid: IntGroupGrid
    let search: Bool

    func walk(rows: Range<Int>, cols: Int) {
        let R = rows.count
        let groups = groupCols.count
        let wt = UnsafeMutablePointer<Float>.allocate(capacity: cols * R)
        let err = UnsafeMutablePointer<Float>.allocate(capacity: R)
        let cur = UnsafeMutablePointer<IntGroupGrid.Group>.allocate(capacity: R)
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: max(1, grid.groupSize))
        defer {
            wt.deallocate()
            err.deallocate()
            cur.deallocate()
            tmp.deallocate()
        }
        for (r, row) in rows.enumerated() {
            let src = w + row * cols
            for j in 0..<cols { wt[j * R + r] = src[order[j]] }
        }
        for j in 0..<cols {
            if let g = starts[j] {
                let n = groupCols[g].count
                for (r, row) in rows.enumerated() {
                    for i in 0..<n { tmp[i] = wt[(j + i) * R + r] }
                    let x = UnsafeBufferPointer(start: UnsafePointer(tmp), count: n)
                    let p = search
                        ? GPTQ.searchParameters(x, weights: UnsafeBufferPointer(start: diag + j, count: n), grid: grid)
                        : grid.group(x)
                    cur[r] = p
                    params[row * groups + g] = p
                }
            }
            let d = u[j * cols + j]
            let column = wt + j * R
            let c = order[j]
            for (r, row) in rows.enumerated() {
                let q = grid.code(column[r], cur[r])
                codes[row * cols + c] = q
                let value = grid.value(q, cur[r])
                err[r] = (column[r] - value) / d
            }
            let urow = u + j * cols
            for k in (j + 1)..<max(j + 1, cols) {
                let f = urow[k]
                if f == 0 { continue }
                let target = wt + k * R
                for r in 0..<R { target[r] -= f * err[r] }
            }
        }
    }
}
