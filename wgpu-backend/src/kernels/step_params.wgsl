// step_params.wgsl — spliced into embed.wgsl and attention.wgsl at their
// STEP_PARAMS marker line: the per-step uniform block the host writes
// (step_params.rs `StepParams`; its Rust tests check the 528-byte layout).
//   text_mode     0: embed `forced_token`; 1: the token the previous step chose
//   forced_token  the text token for text_mode 0
//   kv_slot       ring slot of this step's k, v (position % CONTEXT)
//   n_keys        filled slots, min(position + 1, CONTEXT)
//   rope[i]       (cos, sin) of RoPE pairs 2i and 2i + 1 at this position
struct StepParams {
    text_mode: u32,
    forced_token: u32,
    kv_slot: u32,
    n_keys: u32,
    rope: array<vec4<f32>, 32>,
}
