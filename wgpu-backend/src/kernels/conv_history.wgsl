// conv_history.wgsl — after a streaming conv has read its input, keep the
// last HISTORY columns of each channel as the first columns for the next
// call (moshi `StreamableConv1d::step`'s `state_prev_xs`).
//
// Bindings (group 0):
//   0 params  uniform ConvParams (conv_params.wgsl): frames in the call just run
//   1 buffer  storage read_write f32 [C][ROW]: columns 0 … HISTORY−1 are
//             the old history, then frames·T_PER_FRAME new columns
// Moves columns [n, n + HISTORY) to [0, HISTORY), n = frames·T_PER_FRAME.
// The host only builds this with T_PER_FRAME ≥ HISTORY, so source and
// destination never overlap (each invocation moves one value).
// Workgroup: 64 columns of one channel; grid = (ceil(HISTORY / 64), C).
// CPU reference: the narrow of moshi's `StreamableConv1d::step`. Exact
// (a copy).

//! CONV_PARAMS

override C: u32;
override ROW: u32;
override HISTORY: u32;
override T_PER_FRAME: u32;

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read_write> buffer: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let h = gid.x;
    let c = gid.y;
    if h >= HISTORY || c >= C {
        return;
    }
    let n = params.frames * T_PER_FRAME;
    buffer[c * ROW + h] = buffer[c * ROW + n + h];
}
