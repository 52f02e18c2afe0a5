//! The per-stream step block (`kernels/step_params.wgsl`, spliced into
//! embed.wgsl, attention.wgsl and argmax_heads.wgsl) and the RoPE tables it
//! carries.

/// `text_mode` of a stream that takes no step in a batch.
pub const TEXT_IDLE: u32 = 2;

/// The params block every step writes per stream; `StepParams` in
/// step_params.wgsl (an array of them, one per stream of the batch).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepParams {
    /// 0: use `forced_token`; 1: the token the previous step chose;
    /// [`TEXT_IDLE`]: no step for this stream.
    pub text_mode: u32,
    pub forced_token: u32,
    pub kv_slot: u32,
    pub n_keys: u32,
    /// 0: greedy; else sample softmax(logits / temperature) (argmax_heads.wgsl).
    pub temperature: f32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    /// Steps since the stream's start (the sampling hash's counter).
    pub step: u32,
    /// (cos, sin) of RoPE pair 2i and 2i+1 in entry i: head dims up to
    /// 4 × 32 = `kernels::ATTENTION_MAX_HEAD_DIM`.
    pub rope: [[f32; 4]; ROPE_ENTRIES],
}

pub const ROPE_ENTRIES: usize = crate::kernels::ATTENTION_MAX_HEAD_DIM / 4;

/// RoPE's inverse frequencies, as moshi computes them (f32).
pub fn rope_inv_freq(head_dim: usize, max_period: f32) -> Vec<f32> {
    (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / max_period.powf(i as f32 / head_dim as f32))
        .collect()
}

/// `StepParams::rope` for a position: as moshi, the position as f32 times
/// inv_freq (f32), then sin/cos.
pub fn rope_table(inv_freq: &[f32], position: u64) -> [[f32; 4]; ROPE_ENTRIES] {
    let mut rope = [[0f32; 4]; ROPE_ENTRIES];
    let pos = position as f32;
    for (p, inv) in inv_freq.iter().enumerate() {
        let f = pos * inv;
        let (s, c) = (f.sin(), f.cos());
        rope[p / 2][2 * (p % 2)] = c;
        rope[p / 2][2 * (p % 2) + 1] = s;
    }
    rope
}

#[cfg(test)]
mod tests {
    use super::*;

    /// StepParams must match the WGSL struct: 8 words then
    /// array<vec4<f32>, 32> at offset 32; the size a multiple of 16 (the
    /// array stride of array<StepParams>).
    #[test]
    fn step_params_layout() {
        assert_eq!(std::mem::size_of::<StepParams>(), 32 + 32 * 16);
        assert_eq!(std::mem::offset_of!(StepParams, temperature), 16);
        assert_eq!(std::mem::offset_of!(StepParams, step), 28);
        assert_eq!(std::mem::offset_of!(StepParams, rope), 32);
    }
}
