// step_params.wgsl — spliced into embed.wgsl, attention.wgsl and
// argmax_heads.wgsl at their STEP_PARAMS marker line: the per-step block the
// host writes for each stream of the batch (step_params.rs `StepParams`;
// its Rust tests check the 544-byte layout). Bound as a read-only storage
// array<StepParams>, one entry per stream; stream s reads params[s].
//   text_mode     0: embed `forced_token`; 1: the token the previous step
//                 chose; 2: idle — this stream takes no step in this batch
//                 (attention leaves its KV cache alone, argmax its token and
//                 result; embed and the matvecs compute unread values)
//   forced_token  the text token for text_mode 0
//   kv_slot       ring slot of this step's k, v (position % CONTEXT)
//   n_keys        filled slots, min(position + 1, CONTEXT)
//   temperature   0: greedy; > 0: sample softmax(logits / temperature)
//   seed_lo/hi    the stream's sampling seed
//   step          steps since the stream's start (the sampling hash's counter)
//   rope[i]       (cos, sin) of RoPE pairs 2i and 2i + 1 at this position
struct StepParams {
    text_mode: u32,
    forced_token: u32,
    kv_slot: u32,
    n_keys: u32,
    temperature: f32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    rope: array<vec4<f32>, 32>,
}

const TEXT_IDLE: u32 = 2u;
