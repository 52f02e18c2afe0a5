//! The per-step uniform block (`kernels/step_params.wgsl`, spliced into
//! embed.wgsl and attention.wgsl) and the RoPE tables it carries.

/// The params block every step writes; `StepParams` in step_params.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepParams {
    /// 0: use `forced_token`; 1: the token the previous step chose.
    pub text_mode: u32,
    pub forced_token: u32,
    pub kv_slot: u32,
    pub n_keys: u32,
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

    /// StepParams must match the WGSL struct: 4 u32 then array<vec4<f32>, 32> at offset 16.
    #[test]
    fn step_params_layout() {
        assert_eq!(std::mem::size_of::<StepParams>(), 16 + 32 * 16);
        assert_eq!(std::mem::offset_of!(StepParams, rope), 16);
    }
}
