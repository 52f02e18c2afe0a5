// embed.wgsl — the LM input: text embedding of this step's text token plus
// the 32 audio-code embeddings, summed in moshi's order
// (text + emb[0] + emb[1] + … + emb[N_Q-1], `LmModel::forward_cond`), for
// each stream of the batch.
//
// Bindings (group 0):
//   0 params      storage read StepParams [streams] (step_params.wgsl)
//   1 text_emb    storage read  f32 [TEXT_VOCAB_IN * D], row-major, row = token
//   2 audio_rows  storage read  f32 [streams * N_Q * D]: the host gathers row
//                 code_c of table c for each codebook c of each stream (it
//                 knows the codes; Mimi runs there)
//   3 prev_token  storage read  u32 [streams]: the token each stream's
//                 previous step chose
//   4 x           storage read_write f32 [streams * D]: the residual streams
//                 (output)
// Workgroup: 256 invocations, one element each; grid = (ceil(D / 256), 1,
// streams), stream = workgroup_id.z.
// Token source: params.text_mode 0 → params.forced_token, 1 → prev_token;
// an idle stream (2) embeds its forced token (unread).
// Both are < TEXT_VOCAB_IN (the host validates forced tokens; argmax yields
// < TEXT_VOCAB_OUT).
// CPU reference: moshi `LmModel::forward_cond` embedding sum. Exact (same
// additions in the same order).

//! STEP_PARAMS

override D: u32;
override N_Q: u32;

@group(0) @binding(0) var<storage, read> params: array<StepParams>;
@group(0) @binding(1) var<storage, read> text_emb: array<f32>;
@group(0) @binding(2) var<storage, read> audio_rows: array<f32>;
@group(0) @binding(3) var<storage, read> prev_token: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let stream = gid.z;
    if i >= D {
        return;
    }
    let p = params[stream];
    var token = p.forced_token;
    if p.text_mode == 1u {
        token = prev_token[stream];
    }
    let rows = stream * N_Q * D;
    var acc = text_emb[token * D + i];
    for (var c = 0u; c < N_Q; c = c + 1u) {
        acc = acc + audio_rows[rows + c * D + i];
    }
    x[stream * D + i] = acc;
}
