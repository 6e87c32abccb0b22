import TensorGraph

// The scale searches ggml's quantizers share (ggml-quants.c: make_qx_quants, make_q3_quants,
// make_qkx2_quants / make_qkx3_quants, make_qp_quants, best_index_int8), written again from the
// algorithms so that every float operation happens in the same order on f32 values: the results
// are bit-identical to ggml's reference build (x86-64, no FMA contraction, no fast-math).
// Integer codes are kept in the C types' widths (`Int8` / `UInt8` buffers, stored truncating).

/// ggml's `nearest_int`: round to nearest, ties to even, through the 1.5 × 2²³ bias (exact for
/// |x| < 2²²; beyond that the same bits as the C give).
@inline(__always)
func ggmlNearestInt(_ x: Float) -> Int32 {
    let bits = (x + 12_582_912).bitPattern
    return Int32(bitPattern: bits & 0x007F_FFFF) &- 0x0040_0000
}

/// The first of 32 values with the largest magnitude, sign kept (ggml's `max` in the Q4_0/Q5_0
/// reference quantizers, whose scale is it ÷ −8 or ÷ −16).
@inline(__always)
func ggmlSignedMax32(_ x: UnsafePointer<Float>) -> Float {
    var amax: Float = 0, max: Float = 0
    for j in 0..<32 where amax < abs(x[j]) {
        amax = abs(x[j])
        max = x[j]
    }
    return max
}

/// Groups whose largest magnitude is below this are all zero to ggml (`GROUP_MAX_EPS`).
let ggmlGroupMaxEps: Float = 1e-15

/// How `ggmlQX` weighs each value when no weights are given (`rmse_type` 1...4).
enum GGMLDefaultWeight: Int32 { case square = 1, one = 2, abs = 3, sqrtAbs = 4 }

/// Symmetric codes -nmax…nmax-1 (stored biased by nmax in `L`) and the scale minimising the
/// weighted squared error over 19 candidate inverse scales around -nmax / (signed extreme), as
/// `make_qx_quants(n, nmax, x, L, rmse_type ≥ 1, qw)`.
func ggmlQX(
    _ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
    weights qw: UnsafePointer<Float>?, rmse: GGMLDefaultWeight = .square
) -> Float {
    if let qw { return ggmlQX(n, nmax, x, L, qw) }
    // The default weights, computed once (the same values the C computes per use).
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { w in
        for i in 0..<n {
            switch rmse {
            case .square: w[i] = x[i] * x[i]
            case .one: w[i] = 1
            case .abs: w[i] = abs(x[i])
            case .sqrtAbs: w[i] = abs(x[i]).squareRoot()
            }
        }
        return ggmlQX(n, nmax, x, L, UnsafePointer(w.baseAddress!))
    }
}

@inline(__always)
private func ggmlQX(
    _ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>, _ w: UnsafePointer<Float>
) -> Float {
    var max: Float = 0, amax: Float = 0
    for i in 0..<n {
        let ax = abs(x[i])
        if ax > amax { amax = ax; max = x[i] }
    }
    if amax < ggmlGroupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let fmax = Float(nmax)
    var iscale = Float(-nmax) / max
    var sumlx: Float = 0, suml2: Float = 0
    for i in 0..<n {
        let l = Swift.max(-nmax, Swift.min(nmax &- 1, ggmlNearestInt(iscale * x[i])))
        L[i] = Int8(truncatingIfNeeded: l &+ nmax)
        sumlx += w[i] * x[i] * Float(l)
        suml2 += w[i] * Float(l) * Float(l)
    }
    var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
    var best = scale * sumlx
    for step in -9...9 where step != 0 {
        iscale = -(fmax + 0.1 * Float(step)) / max
        sumlx = 0
        suml2 = 0
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax &- 1, ggmlNearestInt(iscale * x[i])))
            sumlx += w[i] * x[i] * Float(l)
            suml2 += w[i] * Float(l) * Float(l)
        }
        if suml2 > 0 && sumlx * sumlx > best * suml2 {
            for i in 0..<n {
                let l = Swift.max(-nmax, Swift.min(nmax &- 1, ggmlNearestInt(iscale * x[i])))
                L[i] = Int8(truncatingIfNeeded: l &+ nmax)
            }
            scale = sumlx / suml2
            best = scale * sumlx
        }
    }
    return scale
}

/// `ggmlQX` with weights (`make_qx_quants` with `rmse_type` 1) on 8 groups at once: lane j
/// searches the `n` values at x + n·j with the weights at w + n·j, each lane performing exactly the
/// scalar search's float operations in the same order (bit-identical results); the lanes only
/// interleave the sums' dependency chains. Codes (biased by nmax) go to L[n·j + i].
func ggmlQX8(
    _ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, weights w: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>
) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    typealias I = SIMD8<Int32>
    return withUnsafeTemporaryAllocation(of: V.self, capacity: 2 * n) { vbuf in
        withUnsafeTemporaryAllocation(of: I.self, capacity: n) { ibuf in
            let xt = vbuf.baseAddress!, wt = xt + n, best = ibuf.baseAddress!
            for i in 0..<n {
                var xv = V(), wv = V()
                for j in 0..<8 {
                    xv[j] = x[n &* j &+ i]
                    wv[j] = w[n &* j &+ i]
                }
                xt[i] = xv
                wt[i] = wv
            }
            var mx = V(repeating: 0), amax = V(repeating: 0)
            for i in 0..<n {
                let ax = unsafeBitCast(unsafeBitCast(xt[i], to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: V.self)  // |x|
                let gt = ax .> amax
                amax.replace(with: ax, where: gt)
                mx.replace(with: xt[i], where: gt)
            }
            let tiny = amax .< ggmlGroupMaxEps
            let lo = I(repeating: -nmax), hi = I(repeating: nmax &- 1)
            @inline(__always) func codes(_ v: V, _ iscale: V) -> I {
                let t = iscale * v + V(repeating: 12_582_912)
                let q = I(truncatingIfNeeded: unsafeBitCast(t, to: SIMD8<UInt32>.self) & 0x007F_FFFF) &- 0x0040_0000
                return pointwiseMax(lo, pointwiseMin(hi, q))
            }
            let fmax = Float(nmax)
            var iscale = V(repeating: Float(-nmax)) / mx
            var sumlx = V(repeating: 0), suml2 = V(repeating: 0)
            for i in 0..<n {
                let l = codes(xt[i], iscale)
                best[i] = l
                let fl = V(l)
                sumlx += wt[i] * xt[i] * fl
                suml2 += wt[i] * fl * fl
            }
            var scale = sumlx / suml2
            scale.replace(with: 0, where: suml2 .== 0)
            var bestScore = scale * sumlx
            for step in -9...9 where step != 0 {
                iscale = V(repeating: -(fmax + 0.1 * Float(step))) / mx
                sumlx = V(repeating: 0)
                suml2 = V(repeating: 0)
                for i in 0..<n {
                    let fl = V(codes(xt[i], iscale))
                    sumlx += wt[i] * xt[i] * fl
                    suml2 += wt[i] * fl * fl
                }
                let better = (suml2 .> 0) .& (sumlx * sumlx .> bestScore * suml2)
                if !any(better) { continue }
                for i in 0..<n { best[i].replace(with: codes(xt[i], iscale), where: better) }
                scale.replace(with: sumlx / suml2, where: better)
                bestScore.replace(with: scale * sumlx, where: better)
            }
            for i in 0..<n {
                let l = best[i] &+ nmax
                for j in 0..<8 { L[n &* j &+ i] = tiny[j] ? 0 : Int8(truncatingIfNeeded: l[j]) }
            }
            scale.replace(with: 0, where: tiny)
            return scale
        }
    }
}

/// Q3_K's search without weights (`make_q3_quants(n, nmax, x, L, true)`): codes rounded from
/// -nmax / extreme, then up to five passes that move single codes when that raises
/// (Σ w x l)² / Σ w l² with w = x². Codes are stored biased by nmax.
func ggmlQ3(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
    var max: Float = 0, amax: Float = 0
    for i in 0..<n {
        let ax = abs(x[i])
        if ax > amax { amax = ax; max = x[i] }
    }
    if amax < ggmlGroupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let iscale = Float(-nmax) / max
    var sumlx: Float = 0, suml2: Float = 0
    for i in 0..<n {
        let l = Swift.max(-nmax, Swift.min(nmax &- 1, ggmlNearestInt(iscale * x[i])))
        L[i] = Int8(truncatingIfNeeded: l)
        let w = x[i] * x[i]
        sumlx += w * x[i] * Float(l)
        suml2 += w * Float(l) * Float(l)
    }
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = x[i] * x[i]
            var slx = sumlx - w * x[i] * Float(L[i])
            if slx > 0 {
                var sl2 = suml2 - w * Float(L[i]) * Float(L[i])
                let newL = Swift.max(-nmax, Swift.min(nmax &- 1, ggmlNearestInt(x[i] * sl2 / slx)))
                if newL != Int32(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = Int8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    for i in 0..<n { L[i] = L[i] &+ Int8(truncatingIfNeeded: nmax) }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// Codes 0…nmax with a scale and a minimum (value = scale × l − theMin), the minimum never
/// above 0: the weighted least-squares (scale, min) over candidate inverse scales
/// (rmin + rdelta × k + nmax) / (max − min), k = 0…nstep, scored by weighted squared (or, with
/// `mad`, absolute) error — `make_qkx2_quants` (weights given) and `make_qkx3_quants` (weights
/// x² when `weights` is nil).
func ggmlQKX(
    _ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>?,
    _ L: UnsafeMutablePointer<UInt8>, theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
    rmin: Float, rdelta: Float, nstep: Int, mad: Bool
) -> Float {
    if let weights {
        return mad
            ? ggmlQKX(n, nmax, x, weights, L, &theMin, Laux, rmin, rdelta, nstep, mad: true)
            : ggmlQKX(n, nmax, x, weights, L, &theMin, Laux, rmin, rdelta, nstep, mad: false)
    }
    // make_qkx3_quants without weights: w = x², computed once (the same products).
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { w in
        for i in 0..<n { w[i] = x[i] * x[i] }
        return ggmlQKX(n, nmax, x, UnsafePointer(w.baseAddress!), L, &theMin, Laux, rmin, rdelta, nstep, mad: mad)
    }
}

@inline(__always)
private func ggmlQKX(
    _ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
    _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
    _ rmin: Float, _ rdelta: Float, _ nstep: Int, mad: Bool
) -> Float {
    @inline(__always) func weight(_ i: Int) -> Float { weights[i] }
    var min = x[0], max = x[0]
    var sumW = weight(0)
    var sumX = sumW * x[0]
    for i in 1..<n {
        if x[i] < min { min = x[i] }
        if x[i] > max { max = x[i] }
        let w = weight(i)
        sumW += w
        sumX += w * x[i]
    }
    if min > 0 { min = 0 }
    if max <= min {
        for i in 0..<n { L[i] = 0 }
        theMin = -min
        return 0
    }
    let fmax = Float(nmax)
    var iscale = fmax / (max - min)
    var scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
        let l = Swift.max(0, Swift.min(nmax, ggmlNearestInt(iscale * (x[i] - min))))
        L[i] = UInt8(truncatingIfNeeded: l)
        var diff = scale * Float(L[i]) + min - x[i]
        diff = mad ? abs(diff) : diff * diff
        bestError += weight(i) * diff
    }
    if nstep < 1 {
        theMin = -min
        return scale
    }
    for step in 0...nstep {
        iscale = (rmin + rdelta * Float(step) + fmax) / (max - min)
        var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
        for i in 0..<n {
            let l = Swift.max(0, Swift.min(nmax, ggmlNearestInt(iscale * (x[i] - min))))
            Laux[i] = UInt8(truncatingIfNeeded: l)
            let w = weight(i)
            sumL += w * Float(l)
            sumL2 += w * Float(l) * Float(l)
            sumXL += w * Float(l) * x[i]
        }
        let D = sumW * sumL2 - sumL * sumL
        if D > 0 {
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0..<n {
                var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                diff = mad ? abs(diff) : diff * diff
                error += weight(i) * diff
            }
            if error < bestError {
                for i in 0..<n { L[i] = Laux[i] }
                bestError = error
                scale = thisScale
                min = thisMin
            }
        }
    }
    theMin = -min
    return scale
}

/// `ggmlQKX` with weights and squared error (`make_qkx2_quants` / `make_qkx3_quants` as the
/// K-quants call them, `nstep` ≥ 1) on 8 groups at once: lane j searches the `n` values at
/// x + n·j with the weights at w + n·j. Every lane performs exactly the scalar search's float
/// operations in the same order (no contraction, no reassociation), so each lane's scale, minimum
/// and codes are bit-identical to a scalar call; the lanes only interleave the sums' dependency
/// chains, which bound the scalar search's speed. Codes go to L[n·j + i]; returns the scales and
/// the (non-negative) minimums.
func ggmlQKX8(
    _ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, weights w: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
    rmin: Float, rdelta: Float, nstep: Int
) -> (scale: SIMD8<Float>, theMin: SIMD8<Float>) {
    typealias V = SIMD8<Float>
    precondition(nstep >= 1 && n >= 2)
    return withUnsafeTemporaryAllocation(of: V.self, capacity: 4 * n) { buf in
        let xt = buf.baseAddress!, wt = xt + n, best = wt + n, aux = best + n
        for i in 0..<n {
            var xv = V(), wv = V()
            for j in 0..<8 {
                xv[j] = x[n &* j &+ i]
                wv[j] = w[n &* j &+ i]
            }
            xt[i] = xv
            wt[i] = wv
        }
        let lo = SIMD8<Int32>(repeating: 0), hi = SIMD8<Int32>(repeating: nmax)
        @inline(__always) func codes(_ v: V, _ iscale: V, _ mn: V) -> V {
            let t = iscale * (v - mn) + V(repeating: 12_582_912)
            let q = SIMD8<Int32>(truncatingIfNeeded: unsafeBitCast(t, to: SIMD8<UInt32>.self) & 0x007F_FFFF) &- 0x0040_0000
            return V(pointwiseMax(lo, pointwiseMin(hi, q)))
        }
        var mn = xt[0], mx = xt[0]
        var sumW = wt[0]
        var sumX = sumW * xt[0]
        for i in 1..<n {
            let v = xt[i]
            mn.replace(with: v, where: v .< mn)
            mx.replace(with: v, where: v .> mx)
            sumW += wt[i]
            sumX += wt[i] * v
        }
        mn.replace(with: 0, where: mn .> 0)
        let degenerate = mx .<= mn
        let fmax = Float(nmax)
        var iscale = V(repeating: fmax) / (mx - mn)
        var scale = 1 / iscale
        var bestError = V(repeating: 0)
        for i in 0..<n {
            let l = codes(xt[i], iscale, mn)
            best[i] = l
            var diff = scale * l + mn - xt[i]
            diff = diff * diff
            bestError += wt[i] * diff
        }
        for step in 0...nstep {
            iscale = V(repeating: rmin + rdelta * Float(step) + fmax) / (mx - mn)
            var sumL = V(repeating: 0), sumL2 = V(repeating: 0), sumXL = V(repeating: 0)
            for i in 0..<n {
                let l = codes(xt[i], iscale, mn)
                aux[i] = l
                let w = wt[i]
                sumL += w * l
                sumL2 += w * l * l
                sumXL += w * l * xt[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            let positive = D .> 0
            if !any(positive) { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            let clampMin = thisMin .> 0
            thisMin.replace(with: 0, where: clampMin)
            thisScale.replace(with: sumXL / sumL2, where: clampMin)
            var error = V(repeating: 0)
            for i in 0..<n {
                var diff = thisScale * aux[i] + thisMin - xt[i]
                diff = diff * diff
                error += wt[i] * diff
            }
            let better = positive .& (error .< bestError)
            if !any(better) { continue }
            for i in 0..<n { best[i].replace(with: aux[i], where: better) }
            bestError.replace(with: error, where: better)
            scale.replace(with: thisScale, where: better)
            mn.replace(with: thisMin, where: better)
        }
        for i in 0..<n {
            let l = best[i]
            for j in 0..<8 { L[n &* j &+ i] = degenerate[j] ? 0 : UInt8(truncatingIfNeeded: Int32(l[j])) }
        }
        scale.replace(with: 0, where: degenerate)
        return (scale, -mn)
    }
}

/// Non-negative codes 0…nmax for non-negative values (the sub-block scales or minimums of a
/// super-block) with weights, as `make_qp_quants`: the best of nine inverse scales by weighted
/// squared error, then up to five passes of single-code moves.
func ggmlQP(
    _ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>, weights qw: UnsafePointer<Float>
) -> Float {
    var max: Float = 0
    for i in 0..<n { max = max > x[i] ? max : x[i] }
    if max < ggmlGroupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let fmax = Float(nmax)
    var iscale = fmax / max
    for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: ggmlNearestInt(iscale * x[i])) }
    let scale = 1 / iscale
    var bestMSE: Float = 0
    for i in 0..<n {
        let diff = x[i] - scale * Float(L[i])
        bestMSE += qw[i] * diff * diff
    }
    for step in -4...4 where step != 0 {
        let iscaleStep = (0.1 * Float(step) + fmax) / max
        let scaleStep = 1 / iscaleStep
        var mse: Float = 0
        for i in 0..<n {
            let l = Swift.min(nmax, ggmlNearestInt(iscaleStep * x[i]))
            let diff = x[i] - scaleStep * Float(l)
            mse += qw[i] * diff * diff
        }
        if mse < bestMSE {
            bestMSE = mse
            iscale = iscaleStep
        }
    }
    var sumlx: Float = 0, suml2: Float = 0
    for i in 0..<n {
        let l = Swift.min(nmax, ggmlNearestInt(iscale * x[i]))
        L[i] = UInt8(truncatingIfNeeded: l)
        let w = qw[i]
        sumlx += w * x[i] * Float(l)
        suml2 += w * Float(l) * Float(l)
    }
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = qw[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            var sl2 = suml2 - w * li * li
            if slx > 0 && sl2 > 0 {
                let newL = Swift.min(nmax, ggmlNearestInt(x[i] * sl2 / slx))
                if newL != Int32(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = UInt8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// The index of the level nearest `x` among the 16 sorted `levels` (ties to the upper), as
/// `best_index_int8`.
@inline(__always)
func ggmlBestIndex(_ levels: UnsafePointer<Float>, _ x: Float) -> Int {
    if x <= levels[0] { return 0 }
    if x >= levels[15] { return 15 }
    var lo = 0, hi = 15
    while hi - lo > 1 {
        let mid = (lo + hi) / 2
        if x < levels[mid] { hi = mid } else { lo = mid }
    }
    return x - levels[hi - 1] < levels[hi] - x ? hi - 1 : hi
}

/// Σ x² over `n` values, summed in order.
@inline(__always)
func ggmlSumSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Float = 0
    for i in 0..<n { s += x[i] * x[i] }
    return s
}

/// ggml's importance weighting for the legacy 32-value blocks (Q4_0, Q4_1, Q5_0, Q5_1 with an
/// importance matrix): calls `body(block, x, weights)` for each block of the row, the weights
/// being qw[j] · √(σ² + x[j]²) with σ² the row's mean square.
@inline(__always)
func ggmlWeightedBlocks(
    _ x: UnsafePointer<Float>, rowLength: Int, importance: UnsafePointer<Float>,
    _ body: (_ block: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>) -> Void
) {
    let sigma2 = ggmlSumSquares(x, rowLength) / Float(rowLength)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { weight in
        let w = weight.baseAddress!
        for b in 0..<(rowLength / 32) {
            let xb = x + 32 * b, qw = importance + 32 * b
            for j in 0..<32 { w[j] = qw[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            body(b, xb, w)
        }
    }
}
