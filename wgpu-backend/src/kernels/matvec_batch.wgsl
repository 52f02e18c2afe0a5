// matvec_batch.wgsl — matvec.wgsl for a batch of streams, four per
// workgroup: y_s = W · in_s(x_s) for streams s = 4z … 4z + 3 (z =
// workgroup_id.z), each weight block read and decoded once for the four
// (matvec.wgsl run per stream reads the weights once per stream: B = 64
// steps took 36× a lone step on an H200, bench/README.md).
//
// Same input modes, outputs, lanes, block order and summation order per
// stream as matvec.wgsl (see its header for the modes): the weight file's
// `block_dot4` gives component s the value `block_dot` gives for stream
// s's input, `lanes_sum4` adds lanes as `lanes_sum` does, the norms and
// attention merges are computed per stream as there. A stream's rows are
// therefore those of a lone stream (tested bit for bit on lavapipe).
//
// Bindings (group 0): as matvec.wgsl; stream b reads x from vec4
// b · X_STRIDE4, alpha (mode 3) from vec4 b · ALPHA_STRIDE4, writes y from
// b · Y_STRIDE. The host allocates whole groups of four streams (streams
// past the batch compute unread values in their own slices).
// Workgroup: 256 invocations = 256 / LANES rows × LANES lanes, four
// streams; the input tile holds CACHE inputs of each stream.
// Grid: (ceil(ROWS / (256 / LANES)) (GATED_OUT: row pairs), 1,
// ceil(streams / 4)).
// Bounds: K % 32 == 0, CACHE a multiple of 32 · LANES (so each lane visits
// its blocks in matvec.wgsl's order), H · SPLITS ≤ MAX_SPLIT_WEIGHTS.
// Workgroup memory: 18 KiB of tiles + 4 KiB of split weights + 512 B
// (+ 5 KiB of reduction trees without subgroups): the host uses this
// kernel only where the adapter allows it (`kernels::MATVEC_BATCH_BYTES`).
// CPU reference: candle's matmul / rms_norm / silu as moshi calls them,
// per stream; f32 summation order differences only (~1e-6 relative).

override K: u32;
override ROWS: u32;
override INPUT_MODE: u32 = 0u;
override RESIDUAL: bool = false;
override Y_OFFSET: u32 = 0u;
override EPS: f32 = 1e-8;
override HEAD_DIM: u32 = 1u;
override SPLITS: u32 = 1u;
override GATED_OUT: bool = false;
override LANES: u32 = 8u;
override X_STRIDE4: u32 = 0u;
override ALPHA_STRIDE4: u32 = 0u;
override Y_STRIDE: u32 = 0u;

const WG: u32 = 256u;
const STREAMS: u32 = 4u;
const MAX_ROWS_PER_WG: u32 = 32u;

@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> alpha: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Inputs per stream and tile (a multiple of 32 · 32 lanes).
const CACHE: u32 = 1024u;
// As matvec.wgsl: one vec4 of padding after each 32-block (bank spread).
const XIN_STRIDE: u32 = 9u;
const TILE_VEC4: u32 = CACHE / 32u * XIN_STRIDE;
// Stream s's tile at s · TILE_VEC4.
var<workgroup> xin: array<vec4<f32>, STREAMS * TILE_VEC4>;
// Mode 3: each (head, split)'s merge weight, component s for stream s.
const MAX_SPLIT_WEIGHTS: u32 = 256u;
var<workgroup> split_w: array<vec4<f32>, MAX_SPLIT_WEIGHTS>;
// GATED_OUT: the row results, component s for stream s.
var<workgroup> gate: array<vec4<f32>, MAX_ROWS_PER_WG>;

// Per stream of the group: RmsNorm divisor, x and alpha starts (vec4s).
var<private> norm_m: vec4<f32>;
var<private> x0: vec4<u32>;
var<private> alpha0: vec4<u32>;
// The first input index of the tiles now in xin.
var<private> tile_base: u32;

// Stream s's inputs 4i … 4i + 3, as matvec.wgsl's input_raw4.
fn input_raw4(s: u32, i: u32) -> vec4<f32> {
    let xs = x0[s];
    if INPUT_MODE == 1u {
        return x[xs + i] / norm_m[s] * alpha[i];
    }
    if INPUT_MODE == 2u {
        let a = x[xs + i];
        return a / (1.0 + exp(-a)) * x[xs + K / 4u + i];
    }
    if INPUT_MODE == 3u {
        let hd4 = max(HEAD_DIM / 4u, 1u);
        let h = i / hd4;
        let c = i % hd4;
        var v = vec4<f32>(0.0);
        for (var sp = 0u; sp < SPLITS; sp = sp + 1u) {
            let at = h * SPLITS + sp;
            v = v + split_w[at][s] * x[xs + at * hd4 + c];
        }
        return v;
    }
    return x[xs + i];
}

// (m, l) of (head, split) t of stream s: two pairs per vec4.
fn split_ml(s: u32, t: u32) -> vec2<f32> {
    let two = alpha[alpha0[s] + t / 2u];
    return select(two.xy, two.zw, t % 2u == 1u);
}

// Dot products of `w` with inputs k … k + 3 of each of the four streams
// (the weight files' block_dot4 calls it).
fn dots4(w: vec4<f32>, k: u32) -> vec4<f32> {
    let i = (k - tile_base) / 4u;
    let at = i / 8u * XIN_STRIDE + i % 8u;
    return vec4<f32>(
        dot(w, xin[at]),
        dot(w, xin[TILE_VEC4 + at]),
        dot(w, xin[2u * TILE_VEC4 + at]),
        dot(w, xin[3u * TILE_VEC4 + at]),
    );
}

// Stream 0's inputs k … k + 3: the weight file's single-stream
// `block_dot` (spliced in with block_dot4, not called here) reads them.
fn input4_at(k: u32) -> vec4<f32> {
    let i = (k - tile_base) / 4u;
    return xin[i / 8u * XIN_STRIDE + i % 8u];
}

//! REDUCE

//! WEIGHTS

@compute @workgroup_size(256)
fn main(ids: Ids) {
    let lid = ids.lid;
    let first = ids.wid.z * STREAMS;
    let streams = vec4<u32>(first, first + 1u, first + 2u, first + 3u);
    x0 = streams * X_STRIDE4;
    alpha0 = streams * ALPHA_STRIDE4;
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
    if INPUT_MODE == 3u {
        // Each (head, split)'s weight per stream, from the head's (m, l)
        // in global memory, in matvec.wgsl's order.
        let pairs = (K / HEAD_DIM) * SPLITS;
        for (var t = lid; t < pairs; t = t + WG) {
            let head_first = (t / SPLITS) * SPLITS;
            var w4 = vec4<f32>(0.0);
            for (var s = 0u; s < STREAMS; s = s + 1u) {
                var m = -3.4e38;
                for (var sp = 0u; sp < SPLITS; sp = sp + 1u) {
                    m = max(m, split_ml(s, head_first + sp).x);
                }
                var l = 0.0;
                for (var sp = 0u; sp < SPLITS; sp = sp + 1u) {
                    let ml = split_ml(s, head_first + sp);
                    l = l + exp(ml.x - m) * ml.y;
                }
                w4[s] = exp(split_ml(s, t).x - m) / l;
            }
            split_w[t] = w4;
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
    var acc = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < K; t0 = t0 + CACHE) {
        let len = min(CACHE, K - t0);
        for (var s = 0u; s < STREAMS; s = s + 1u) {
            for (var i = lid; i < len / 4u; i = i + WG) {
                xin[s * TILE_VEC4 + i / 8u * XIN_STRIDE + i % 8u] = input_raw4(s, t0 / 4u + i);
            }
        }
        workgroupBarrier();
        tile_base = t0;
        if r < ROWS {
            for (var b = t0 / 32u + lane; b < (t0 + len) / 32u; b = b + LANES) {
                acc = acc + block_dot4(r, b);
            }
        }
        workgroupBarrier();
    }
    let total = lanes_sum4(acc, ids);
    let y0 = Y_OFFSET + streams * Y_STRIDE;
    if GATED_OUT {
        if lane == 0u {
            gate[v] = total;
        }
        workgroupBarrier();
        if lane == 0u && v % 2u == 0u && r < ROWS {
            let a = gate[v];
            let g = a / (1.0 + exp(-a)) * gate[v + 1u];
            for (var s = 0u; s < STREAMS; s = s + 1u) {
                y[y0[s] + pair] = g[s];
            }
        }
        return;
    }
    if lane == 0u && r < ROWS {
        for (var s = 0u; s < STREAMS; s = s + 1u) {
            var out = total[s];
            if RESIDUAL {
                out = out + y[y0[s] + r];
            }
            y[y0[s] + r] = out;
        }
    }
}
