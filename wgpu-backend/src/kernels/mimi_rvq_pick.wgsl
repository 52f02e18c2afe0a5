// mimi_rvq_pick.wgsl — one level of Mimi's split residual vector
// quantizer, second half: picks the level's code from the workgroups'
// best (mimi_rvq_score.wgsl) and moves the acoustic residual on.
//
// Bindings (group 0): the layout of mimi_rvq_score.wgsl, of which this
// kernel uses
//   0 params, 1 first (unused here), 2 rest, 3 semantic (unused here),
//   5 codes       storage read_write u32 [frames][N_Q]: writes this level
//   6 acoustic    storage read  f32 [N_Q − 1][BINS][DIM]
//   7 residual    storage read_write f32 [frames][DIM]: after this level
//   8 step        uniform RvqLevel
//   9 candidates  storage read_write vec2<u32> [frames][BINS / ROWS]
// The code is the candidate with the lowest score, scanned in index order
// with a strict comparison (so the lowest index wins ties, as argmin). The
// residual after level l ≥ 1 is (level 1: `rest`, else `residual`) − e;
// the semantic level (0) has no residual to move.
// Workgroup: WG (≥ DIM) invocations for one frame; grid = (1, frames, 1).
// CPU reference: moshi `ResidualVectorQuantization::encode` (argmin, then
// residual − quantized).

//! CONV_PARAMS

//! MIMI_RVQ_COMMON

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(2) var<storage, read> rest: array<f32>;
@group(0) @binding(5) var<storage, read_write> codes: array<u32>;
@group(0) @binding(6) var<storage, read> acoustic: array<f32>;
@group(0) @binding(7) var<storage, read_write> residual: array<f32>;
@group(0) @binding(8) var<uniform> step: RvqLevel;
@group(0) @binding(9) var<storage, read_write> candidates: array<vec2<u32>>;

var<workgroup> chosen: u32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let t = wid.y;
    let lid = lid3.x;
    let level = step.level;
    if lid == 0u {
        let groups = BINS / ROWS;
        var best = bitcast<f32>(candidates[t * groups].x);
        var best_c = candidates[t * groups].y;
        for (var g = 1u; g < groups; g++) {
            let cand = candidates[t * groups + g];
            let score = bitcast<f32>(cand.x);
            if score < best {
                best = score;
                best_c = cand.y;
            }
        }
        chosen = best_c;
        codes[t * N_Q + level] = best_c;
    }
    workgroupBarrier();
    if level == 0u || lid >= DIM {
        return;
    }
    let code = chosen;
    var r: f32;
    if level == 1u {
        r = rest[lid * ROW + t];
    } else {
        r = residual[t * DIM + lid];
    }
    residual[t * DIM + lid] = r - acoustic[((level - 1u) * BINS + code) * DIM + lid];
}
