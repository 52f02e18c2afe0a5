// matvec.wgsl — y = W · in(x), with the neighbours of a projection folded in:
//   INPUT_MODE 0: in(k) = x[k]
//   INPUT_MODE 1: in(k) = x[k] / m * alpha[k], m = sqrt(Σx²/K + EPS) (RmsNorm)
//   INPUT_MODE 2: in(k) = silu(x[k]) * x[K + k]        (gated MLP, moshi order)
//   INPUT_MODE 3: in(k) = merge of attention.wgsl's splits for head
//                 h = k / HEAD_DIM, dim i = k % HEAD_DIM:
//                 Σₛ wₛ·o_part[(h·SPLITS + s)·HEAD_DIM + i], with
//                 wₛ = exp(mₛ − M) / Σₛ' exp(mₛ' − M)·lₛ', M = maxₛ mₛ
//                 (x = o_part, alpha = ml_part as f32 pairs)
//   RESIDUAL:     y[r] += … instead of y[r] = …       (residual add)
//   GATED_OUT:    rows p and p + ROWS/2 are computed by one workgroup and
//                 y[p] = silu(row p) · (row p + ROWS/2) is written instead
//                 (moshi's gated MLP, done once here rather than per row of
//                 the next projection); a workgroup takes (256 / LANES) / 2
//                 row pairs: grid ceil((ROWS/2) / ((256 / LANES) / 2))
// The weight format is spliced in by the host at the WEIGHTS marker line from one of
// weights_{f32,f16,f16_packed,q8,q4}.wgsl, each defining `block_dot(r, b)`:
// Σ over the 32 columns of block b of row r of W·in. The reductions are
// spliced at the REDUCE marker from reduce_workgroup.wgsl or, with
// subgroups, reduce_subgroup.wgsl (same results to the bit for the lanes,
// ~1e-7 relative for the RmsNorm sum).
//
// Bindings (group 0): 0 and 1 are the weights (format file); then
//   2 x     storage read vec4<f32> [K/4] (mode 0/1), [2K/4] (mode 2),
//           [H · SPLITS · HEAD_DIM/4] (mode 3)
//   3 alpha storage read vec4<f32> [K/4] (mode 1), (m, l) pairs, two per
//           vec4, [H · SPLITS / 2] rounded up (mode 3); any buffer otherwise
//   4 y     storage read_write f32, rows written at Y_OFFSET + r
// Workgroup: 256 invocations = 256 / LANES rows × LANES lanes; lane l of a
// row sums blocks l, l + LANES, …; `lanes_sum` adds the lanes. The rows of
// a workgroup share one prologue (norm, input tile).
// Grid: ceil(ROWS / (256 / LANES)) workgroups along x (GATED_OUT: row
// pairs), one per stream of the batch along z. Stream b reads x from vec4
// b · X_STRIDE4, alpha (mode 3 only: the per-stream partials) from vec4
// b · ALPHA_STRIDE4, and writes y from b · Y_STRIDE; the weights are the
// same, so every stream's rows are summed exactly as a lone stream's.
// Bounds: K % 32 == 0 (checked by the host), rows ≥ ROWS skipped.
// CPU reference: candle's matmul / rms_norm / silu as moshi calls them;
// differences are summation order only (f32): ~1e-6 relative.

//! MATVEC_COMMON

// The workgroup computes WG / LANES rows. The host uses 8 lanes unless
// told (more lanes mean more workgroups, each paying the prologue: slower
// on an H100 and on lavapipe, see matvec.rs).
const MAX_ROWS_PER_WG: u32 = 32u;

const CACHE: u32 = 2048u;

// Every invocation computes the same norm (no race, no extra barrier).
var<private> norm_m: f32;
// The input vector, computed once per workgroup, a tile of CACHE at a time:
// every row of the workgroup reads it (from fast memory), and exp/merge
// inputs would otherwise be recomputed per row. Stored as vec4 with one
// vec4 of padding after each 32-block: the LANES lanes of a row read
// blocks b, b + 1, … at once, and unpadded those sit 32 floats apart, all
// in one memory bank (an 8-way conflict on every read).
var<workgroup> xin: array<vec4<f32>, CACHE / 32u * XIN_STRIDE>;
// Mode 3: each (head, split)'s (m, l), then its weight; H · SPLITS ≤
// MAX_SPLIT_WEIGHTS (all workgroup memory stays under WebGPU's 16 KiB).
const MAX_SPLIT_WEIGHTS: u32 = 256u;
var<workgroup> split_ml: array<vec2<f32>, MAX_SPLIT_WEIGHTS>;
var<workgroup> split_w: array<f32, MAX_SPLIT_WEIGHTS>;
// GATED_OUT: the 32 row results, pairs side by side.
var<workgroup> gate: array<f32, MAX_ROWS_PER_WG>;

// This workgroup's stream's x and alpha (mode 3) start, in vec4s.
var<private> x0: u32;
var<private> alpha0: u32;

// Inputs 4i … 4i + 3, from 16-byte loads.
fn input_raw4(i: u32) -> vec4<f32> {
    if INPUT_MODE == 1u {
        return x[x0 + i] / norm_m * alpha[i];
    }
    if INPUT_MODE == 2u {
        let a = x[x0 + i];
        return a / (1.0 + exp(-a)) * x[x0 + K / 4u + i];
    }
    if INPUT_MODE == 3u {
        // max(): other modes leave HEAD_DIM at 1, and the pipeline's
        // constant folding still sees this (dead) division.
        let hd4 = max(HEAD_DIM / 4u, 1u);
        let h = i / hd4;
        let c = i % hd4;
        var v = vec4<f32>(0.0);
        for (var s = 0u; s < SPLITS; s = s + 1u) {
            let at = h * SPLITS + s;
            v = v + split_w[at] * x[x0 + at * hd4 + c];
        }
        return v;
    }
    return x[x0 + i];
}

// The first input index of the tile now in xin.
var<private> tile_base: u32;

// Inputs k … k + 3 (k a multiple of 4).
fn input4_at(k: u32) -> vec4<f32> {
    let i = (k - tile_base) / 4u;
    return xin[i / 8u * XIN_STRIDE + i % 8u];
}

//! REDUCE

//! WEIGHTS

@compute @workgroup_size(256)
fn main(ids: Ids) {
    let lid = ids.lid;
    let stream = ids.wid.z;
    x0 = stream * X_STRIDE4;
    alpha0 = stream * ALPHA_STRIDE4;
    let y0 = Y_OFFSET + stream * Y_STRIDE;
    if INPUT_MODE == 1u {
        var s = 0.0;
        for (var i = lid; i < K / 4u; i = i + WG) {
            let v = x[x0 + i];
            s = s + dot(v, v);
        }
        norm_m = sqrt(workgroup_sum(s, ids) / f32(K) + EPS);
    }
    if INPUT_MODE == 3u {
        // One global load per (head, split), then the head's max and sum
        // from workgroup memory.
        let pairs = (K / HEAD_DIM) * SPLITS;
        for (var t = lid; t < pairs; t = t + WG) {
            let two = alpha[alpha0 + t / 2u];
            split_ml[t] = select(two.xy, two.zw, t % 2u == 1u);
        }
        workgroupBarrier();
        for (var t = lid; t < pairs; t = t + WG) {
            let first = (t / SPLITS) * SPLITS;
            var m = -3.4e38;
            for (var s = 0u; s < SPLITS; s = s + 1u) {
                m = max(m, split_ml[first + s].x);
            }
            var l = 0.0;
            for (var s = 0u; s < SPLITS; s = s + 1u) {
                l = l + exp(split_ml[first + s].x - m) * split_ml[first + s].y;
            }
            split_w[t] = exp(split_ml[t].x - m) / l;
        }
        workgroupBarrier();
    }
    let rows_per_wg = WG / LANES;
    let lane = lid % LANES;
    let v = lid / LANES;
    var r = ids.wid.x * rows_per_wg + v;
    let pair = ids.wid.x * (rows_per_wg / 2u) + v / 2u;
    if GATED_OUT {
        r = select(ROWS, pair + (v % 2u) * (ROWS / 2u), pair < ROWS / 2u);
    }
    // The input goes through xin in tiles of CACHE; each lane still visits
    // its blocks lane, lane + LANES, … in order, whatever the tiling.
    var acc = 0.0;
    for (var t0 = 0u; t0 < K; t0 = t0 + CACHE) {
        let len = min(CACHE, K - t0);
        for (var i = lid; i < len / 4u; i = i + WG) {
            xin[i / 8u * XIN_STRIDE + i % 8u] = input_raw4(t0 / 4u + i);
        }
        workgroupBarrier();
        tile_base = t0;
        if r < ROWS {
            for (var b = t0 / 32u + lane; b < (t0 + len) / 32u; b = b + LANES) {
                acc = acc + block_dot(r, b);
            }
        }
        workgroupBarrier();
    }
    let total = lanes_sum(acc, ids);
    if GATED_OUT {
        if lane == 0u {
            gate[v] = total;
        }
        workgroupBarrier();
        if lane == 0u && v % 2u == 0u && r < ROWS {
            let a = gate[v];
            y[y0 + pair] = a / (1.0 + exp(-a)) * gate[v + 1u];
        }
        return;
    }
    if lane == 0u && r < ROWS {
        var v = total;
        if RESIDUAL {
            v = v + y[y0 + r];
        }
        y[y0 + r] = v;
    }
}
