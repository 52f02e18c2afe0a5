// conv1d_tiled.wgsl — conv1d.wgsl as a tiled matrix product, for calls
// with many output columns (the SEANet's convs on chunks of frames): the
// weights [C_OUT][C_IN·K] times the input's im2col [C_IN·K][T_out], with
// TM×RK weight and RK×TN input tiles staged in workgroup memory so each
// loaded value serves 64 products instead of one.
//
// Bindings, layout, constants, REPLICATE, activations and bounds: as
// conv1d.wgsl (shared through conv1d_common.wgsl).
// Workgroup: 16×16 invocations for TM = 64 output channels × TN = 64
// output columns; invocation (x, y) owns channels y + 16·i and columns
// x + 16·j (i, j < 4) in four vec4 accumulators (an indexed private array
// spilled to memory on the H200: 14 ms for one frame's SEANet); grid = (ceil(T_out / TN), ceil(C_OUT / TM)).
// The reduction r = ci·K + j runs in slices of RK = 16; entries past
// C_IN·K, C_OUT or T_out are staged as zeros and outputs past them are not
// written.
// Summation order: every output adds its C_IN·K products one by one in
// increasing r, with fma, starting from 0 — exactly conv1d.wgsl's order,
// so the two kernels give the same bits and the host may pick either per
// call (one frame or many per call stay identical).
// CPU reference: as conv1d.wgsl (moshi `StreamableConv1d::step`). Equal up
// to f32 summation order (C_IN·K products per output).

//! CONV_PARAMS

//! CONV1D_COMMON

const TM: u32 = 64u;
const TN: u32 = 64u;
const RK: u32 = 16u;
const SIDE: u32 = 16u;

var<workgroup> w_tile: array<f32, 1024>; // [RK][TM]
var<workgroup> x_tile: array<f32, 1024>; // [RK][TN]

fn finish(co: u32, t: u32, t_out: u32, sum: f32) {
    if co >= C_OUT || t >= t_out {
        return;
    }
    var out = sum + bias[co];
    if SCALE == 1u {
        out *= scale[co];
    }
    if RESIDUAL == 1u {
        out = residual[co * RES_ROW + RES_OFFSET + t] + out;
    }
    output[co * OUT_ROW + OUT_OFFSET + t] = out;
}

fn finish_row(co: u32, t: u32, t_out: u32, sums: vec4<f32>) {
    finish(co, t, t_out, sums.x);
    finish(co, t + SIDE, t_out, sums.y);
    finish(co, t + 2u * SIDE, t_out, sums.z);
    finish(co, t + 3u * SIDE, t_out, sums.w);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(local_invocation_id) lid3: vec3<u32>) {
    let t0 = wid.x * TN;
    let co0 = wid.y * TM;
    let t_out = params.frames * T_OUT_PER_FRAME;
    let reduction = C_IN * K;
    // acc_i holds channel y + 16·i at columns x, x + 16, x + 32, x + 48:
    // vectors with fixed components, not an indexed array, so they stay
    // in registers.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var r0 = 0u; r0 < reduction; r0 += RK) {
        for (var q = 0u; q < 4u; q++) {
            let e = lid + 256u * q;
            // Weights: 16 consecutive r of one channel per 16 invocations.
            let m = e / RK;
            let k = e % RK;
            let co = co0 + m;
            var w = 0.0;
            if co < C_OUT && r0 + k < reduction {
                w = weight[co * reduction + r0 + k];
            }
            w_tile[k * TM + m] = w;
            // Inputs: 64 consecutive output columns of one r.
            let kx = e / TN;
            let n = e % TN;
            let r = r0 + kx;
            let t = t0 + n;
            var x = 0.0;
            if r < reduction && t < t_out {
                let ci = r / K;
                let j = r % K;
                var col = t * STRIDE + j * DILATION;
                if REPLICATE == 1u && params.first == 1u && col < IN_HISTORY {
                    col = IN_HISTORY;
                }
                x = activate(input[ci * IN_ROW + col]);
            }
            x_tile[kx * TN + n] = x;
        }
        workgroupBarrier();
        for (var k = 0u; k < RK; k++) {
            let xb = k * TN + lid3.x;
            let b = vec4<f32>(x_tile[xb], x_tile[xb + SIDE], x_tile[xb + 2u * SIDE], x_tile[xb + 3u * SIDE]);
            let wb = k * TM + lid3.y;
            acc0 = fma(vec4<f32>(w_tile[wb]), b, acc0);
            acc1 = fma(vec4<f32>(w_tile[wb + SIDE]), b, acc1);
            acc2 = fma(vec4<f32>(w_tile[wb + 2u * SIDE]), b, acc2);
            acc3 = fma(vec4<f32>(w_tile[wb + 3u * SIDE]), b, acc3);
        }
        workgroupBarrier();
    }
    let co = co0 + lid3.y;
    let t = t0 + lid3.x;
    finish_row(co, t, t_out, acc0);
    finish_row(co + SIDE, t, t_out, acc1);
    finish_row(co + 2u * SIDE, t, t_out, acc2);
    finish_row(co + 3u * SIDE, t, t_out, acc3);
}
