// mimi_rvq_score.wgsl — one level of Mimi's split residual vector
// quantizer, first half: each workgroup scores ROWS codewords of the level
// against one frame's residual and keeps the best (mimi_rvq_pick.wgsl
// merges the workgroups' choices and moves the residual on). Spreading a
// level over BINS / ROWS workgroups keeps a one-frame call from running on
// a single compute unit.
//
// Bindings (group 0; mimi_rvq_pick.wgsl shares the layout):
//   0 params      uniform ConvParams (conv_params.wgsl): frames in this call
//   1 first       storage read  f32 [DIM][ROW]: rvq_first's projection of
//                 the latents (conv1d.wgsl, kernel 1), channel-major
//   2 rest        storage read  f32 [DIM][ROW]: rvq_rest's projection
//   3 semantic    storage read  f32 [BINS][DIM]: level 0's codewords,
//                 embedding_sum / max(cluster_usage, 1e-5)
//   4 half_norms  storage read  f32 [N_Q][BINS]: ‖e‖² / 2 per codeword
//   5 codes       storage read_write u32 [frames][N_Q] (pick writes)
//   6 acoustic    storage read  f32 [N_Q − 1][BINS][DIM]: levels 1 …
//   7 residual    storage read_write f32 [frames][DIM]: the acoustic
//                 residual entering this level (levels ≥ 2)
//   8 step        uniform RvqLevel: this dispatch's level
//   9 candidates  storage read_write vec2<u32> [frames][BINS / ROWS]:
//                 (score bits, index) of each workgroup's best
// Level 0 reads `first`, level 1 `rest`, later levels `residual`.
// Score of codeword c: ‖e_c‖²/2 − r·e_c (argmin = nearest codeword); the
// best of the workgroup is the lowest score, the lowest index on ties.
// Workgroup: WG = ROWS · LANES invocations: LANES consecutive invocations
// share one codeword, each summing DIM / LANES of its dimensions, then a
// shared-memory tree adds the LANES partial sums; grid = (BINS / ROWS,
// frames, 1). DIM must be a multiple of LANES and ≤ WG; BINS of ROWS.
// CPU reference: moshi `EuclideanCodebook::encode_slow` (candle matmul of
// the residual with the codebook, argmin over ‖e‖²/2 − r·e). Equal up to
// f32 summation order of the dot products: codes agree except at near-ties.

//! CONV_PARAMS

//! MIMI_RVQ_COMMON

const LANES: u32 = 8u;

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> first: array<f32>;
@group(0) @binding(2) var<storage, read> rest: array<f32>;
@group(0) @binding(3) var<storage, read> semantic: array<f32>;
@group(0) @binding(4) var<storage, read> half_norms: array<f32>;
@group(0) @binding(6) var<storage, read> acoustic: array<f32>;
@group(0) @binding(7) var<storage, read_write> residual: array<f32>;
@group(0) @binding(8) var<uniform> step: RvqLevel;
@group(0) @binding(9) var<storage, read_write> candidates: array<vec2<u32>>;

var<workgroup> r: array<f32, WG>;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let t = wid.y;
    let lid = lid3.x;
    let level = step.level;
    if lid < DIM {
        if level == 0u {
            r[lid] = first[lid * ROW + t];
        } else if level == 1u {
            r[lid] = rest[lid * ROW + t];
        } else {
            r[lid] = residual[t * DIM + lid];
        }
    }
    workgroupBarrier();
    let row = lid / LANES;
    let lane = lid % LANES;
    let c = wid.x * ROWS + row;
    // Lane l sums dimensions l, l + LANES, …: neighbouring lanes read
    // neighbouring words of the codeword.
    var dot = 0.0;
    if level == 0u {
        for (var d = lane; d < DIM; d += LANES) {
            dot = fma(r[d], semantic[c * DIM + d], dot);
        }
    } else {
        let base = ((level - 1u) * BINS + c) * DIM;
        for (var d = lane; d < DIM; d += LANES) {
            dot = fma(r[d], acoustic[base + d], dot);
        }
    }
    partial[lid] = dot;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s /= 2u) {
        if lane < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        var best = 3.0e38;
        var best_c = 0u;
        for (var k = 0u; k < ROWS; k++) {
            let score = half_norms[level * BINS + wid.x * ROWS + k] - partial[k * LANES];
            if score < best {
                best = score;
                best_c = wid.x * ROWS + k;
            }
        }
        candidates[t * (BINS / ROWS) + wid.x] = vec2<u32>(bitcast<u32>(best), best_c);
    }
}
