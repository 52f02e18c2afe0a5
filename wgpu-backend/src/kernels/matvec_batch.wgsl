// matvec_batch.wgsl — matvec.wgsl for a batch of streams: y_s = W · in_s(x_s)
// for the four streams s = 4z … 4z + 3 of workgroup row z (workgroup_id.z),
// each invocation computing R = ROWS_PER_INVOCATION rows (4, or 2 where
// four would leave too few workgroups) for the four streams (an R × 4
// tile): a weight block is loaded and decoded once for four streams, an
// input vec4 is read from workgroup memory once for R rows, and R rows'
// loads are in flight together. (matvec.wgsl run per stream reads the
// weights once per stream: B = 64 took 35 × a lone step on an H200;
// bench/README.md.)
//
// Same lanes, block order and summation order per (row, stream) as
// matvec.wgsl: lane l of a row sums its blocks l, l + LANES, … in order,
// each block's 32 products first summed in ascending order from 0 (the
// weight file's `block_chunk` computes the weights as its `block_dot`
// does), and `lanes_sum4` adds lanes as `lanes_sum` does. A stream's rows
// are therefore a lone stream's (tested bit for bit on lavapipe).
//   INPUT_MODE 0: in(k) = x[k];  1: RmsNorm (as matvec.wgsl). The batched
//   engine merges attention on its own (attention_merge.wgsl), so modes 2
//   and 3 are not offered here.
//   RESIDUAL, GATED_OUT, Y_OFFSET: as matvec.wgsl.
//
// Bindings (group 0): as matvec.wgsl (alpha: the norm weights in mode 1);
// stream b reads x from vec4 b · X_STRIDE4 and writes y from b · Y_STRIDE.
// The host allocates whole groups of four streams (streams past the batch
// compute unread values in their own slices).
// Workgroup: 256 invocations = 256 / LANES row slots × LANES lanes; slot v
// holds rows v, v + S, … (R of them) of the workgroup's R·S rows (S = 256 /
// LANES; GATED_OUT: R·S/2 row pairs, slots 2p and 2p + 1 holding pair p's
// two rows as in matvec.wgsl).
// Grid: (ceil(ROWS / (R · 256 / LANES)) (GATED_OUT: ceil((ROWS / 2) /
// (R · 128 / LANES))), 1, ceil(streams / 4)).
// Bounds: K % 32 == 0; rows ≥ ROWS are computed from row ROWS − 1 and not
// written. Workgroup memory: 18 KiB of input tiles + 2 KiB gate (+ 5 KiB
// of reduction trees without subgroups): the host uses this kernel only
// where the adapter allows `kernels::MATVEC_BATCH_WORKGROUP_BYTES`.
// CPU reference: candle's matmul / rms_norm / silu as moshi calls them, per
// stream; f32 summation order differences only (~1e-6 relative).

//! MATVEC_COMMON

const STREAMS: u32 = 4u;
// Rows per invocation: 4, or 2 where four would leave too few workgroups
// (the host's choice, matvec.rs `MatvecKey::with_strides`).
override ROWS_PER_INVOCATION: u32 = 4u;
// Row slots at the fewest lanes (8) times the most rows an invocation takes.
const MAX_ROWS_PER_WG: u32 = 128u;

// Inputs per stream and tile (a multiple of 32 · 32 lanes, so each lane
// visits its blocks in matvec.wgsl's order whatever the tiling).
const CACHE: u32 = 1024u;
const TILE_VEC4: u32 = CACHE / 32u * XIN_STRIDE;
// Stream s's tile at s · TILE_VEC4.
var<workgroup> xin: array<vec4<f32>, STREAMS * TILE_VEC4>;
// GATED_OUT: each row's results, component s for stream s.
var<workgroup> gate: array<vec4<f32>, MAX_ROWS_PER_WG>;

// Per stream of the group: RmsNorm divisor and x start (vec4s).
var<private> norm_m: vec4<f32>;
var<private> x0: vec4<u32>;
// The first input index of the tiles now in xin.
var<private> tile_base: u32;

// Stream s's inputs 4i … 4i + 3, as matvec.wgsl's input_raw4.
fn input_raw4(s: u32, i: u32) -> vec4<f32> {
    if INPUT_MODE == 1u {
        return x[x0[s] + i] / norm_m[s] * alpha[i];
    }
    return x[x0[s] + i];
}

// Stream 0's inputs k … k + 3: the weight file's single-stream `block_dot`
// (spliced in with block_load/block_chunk, not called here) reads them.
fn input4_at(k: u32) -> vec4<f32> {
    let i = (k - tile_base) / 4u;
    return xin[i / 8u * XIN_STRIDE + i % 8u];
}

// Dot products of weights `wv` with the four streams' inputs `a`…`d`.
fn dots(wv: vec4<f32>, a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(wv, a), dot(wv, b), dot(wv, c), dot(wv, d));
}

//! REDUCE

//! WEIGHTS

// Row of slot v, j-th of its rows (ROWS when there is none).
fn row_of(wg: u32, v: u32, j: u32) -> u32 {
    let slots = WG / LANES;
    let vv = j * slots + v;
    if GATED_OUT {
        let pair = wg * (ROWS_PER_INVOCATION * slots / 2u) + vv / 2u;
        return select(ROWS, pair + (vv % 2u) * (ROWS / 2u), pair < ROWS / 2u);
    }
    return wg * ROWS_PER_INVOCATION * slots + vv;
}

@compute @workgroup_size(256)
fn main(ids: Ids) {
    let lid = ids.lid;
    let first = ids.wid.z * STREAMS;
    let streams = vec4<u32>(first, first + 1u, first + 2u, first + 3u);
    x0 = streams * X_STRIDE4;
    if INPUT_MODE == 1u {
        for (var s = 0u; s < STREAMS; s = s + 1u) {
            var acc = 0.0;
            for (var i = lid; i < K / 4u; i = i + WG) {
                let v = x[x0[s] + i];
                acc = acc + dot(v, v);
            }
            norm_m[s] = sqrt(workgroup_sum(acc, ids) / f32(K) + EPS);
        }
    }
    let lane = lid % LANES;
    let v = lid / LANES;
    let wg = ids.wid.x;
    let r0 = row_of(wg, v, 0u);
    let r1 = row_of(wg, v, 1u);
    let r2 = row_of(wg, v, 2u);
    let r3 = row_of(wg, v, 3u);
    // Rows past the end read the last row (valid memory; never written).
    let last = ROWS - 1u;
    let q0 = min(r0, last);
    let q1 = min(r1, last);
    let q2 = min(r2, last);
    let q3 = min(r3, last);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < K; t0 = t0 + CACHE) {
        let len = min(CACHE, K - t0);
        for (var s = 0u; s < STREAMS; s = s + 1u) {
            for (var i = lid; i < len / 4u; i = i + WG) {
                xin[s * TILE_VEC4 + i / 8u * XIN_STRIDE + i % 8u] = input_raw4(s, t0 / 4u + i);
            }
        }
        workgroupBarrier();
        tile_base = t0;
        for (var b = t0 / 32u + lane; b < (t0 + len) / 32u; b = b + LANES) {
            let w0 = block_load(q0, b);
            let w1 = block_load(q1, b);
            // Rows 2 and 3 only with four rows (a constant: the branches fold).
            var w2 = w0;
            var w3 = w0;
            if ROWS_PER_INVOCATION == 4u {
                w2 = block_load(q2, b);
                w3 = block_load(q3, b);
            }
            var p0 = vec4<f32>(0.0);
            var p1 = vec4<f32>(0.0);
            var p2 = vec4<f32>(0.0);
            var p3 = vec4<f32>(0.0);
            let at0 = (b * 32u - t0) / 32u * XIN_STRIDE;
            for (var c = 0u; c < 8u; c = c + 1u) {
                let at = at0 + c;
                let xa = xin[at];
                let xb = xin[TILE_VEC4 + at];
                let xc = xin[2u * TILE_VEC4 + at];
                let xd = xin[3u * TILE_VEC4 + at];
                p0 = p0 + dots(block_chunk(w0, c), xa, xb, xc, xd);
                p1 = p1 + dots(block_chunk(w1, c), xa, xb, xc, xd);
                if ROWS_PER_INVOCATION == 4u {
                    p2 = p2 + dots(block_chunk(w2, c), xa, xb, xc, xd);
                    p3 = p3 + dots(block_chunk(w3, c), xa, xb, xc, xd);
                }
            }
            a0 = a0 + p0;
            a1 = a1 + p1;
            a2 = a2 + p2;
            a3 = a3 + p3;
        }
        workgroupBarrier();
    }
    var totals = array<vec4<f32>, 4>(lanes_sum4(a0, ids), lanes_sum4(a1, ids), vec4<f32>(0.0), vec4<f32>(0.0));
    if ROWS_PER_INVOCATION == 4u {
        totals[2] = lanes_sum4(a2, ids);
        totals[3] = lanes_sum4(a3, ids);
    }
    let rows = array<u32, 4>(r0, r1, r2, r3);
    let y0 = Y_OFFSET + streams * Y_STRIDE;
    let slots = WG / LANES;
    if GATED_OUT {
        if lane == 0u {
            for (var j = 0u; j < ROWS_PER_INVOCATION; j = j + 1u) {
                gate[j * slots + v] = totals[j];
            }
        }
        workgroupBarrier();
        if lane == 0u && v % 2u == 0u {
            for (var j = 0u; j < ROWS_PER_INVOCATION; j = j + 1u) {
                let vv = j * slots + v;
                if rows[j] < ROWS {
                    let pair = wg * (ROWS_PER_INVOCATION * slots / 2u) + vv / 2u;
                    let a = gate[vv];
                    let g = a / (1.0 + exp(-a)) * gate[vv + 1u];
                    for (var s = 0u; s < STREAMS; s = s + 1u) {
                        y[y0[s] + pair] = g[s];
                    }
                }
            }
        }
        return;
    }
    if lane == 0u {
        for (var j = 0u; j < ROWS_PER_INVOCATION; j = j + 1u) {
            let r = rows[j];
            if r < ROWS {
                for (var s = 0u; s < STREAMS; s = s + 1u) {
                    var out = totals[j][s];
                    if RESIDUAL {
                        out = out + y[y0[s] + r];
                    }
                    y[y0[s] + r] = out;
                }
            }
        }
    }
}
