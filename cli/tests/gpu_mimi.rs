//! Mimi's encoder on the GPU (stt-wgpu `mimi`) against moshi's modules, on
//! whatever adapter wgpu finds (lavapipe in CI; skipped without one unless
//! STT_REQUIRE_GPU=1).

mod common;

use candle_core::{Device, IndexOp};
use moshi::streaming::StreamingModule;
use moshi::{StreamMask, StreamTensor};
use stt_model::config::FRAME_SAMPLES;
use stt_model::{block_on, Model};
use stt_wgpu::device::Gpu;
use stt_wgpu::mimi::GpuSeanet;
use stt_wgpu::{FeatureRequest, GpuError};

fn gpu() -> Option<Gpu> {
    match block_on(Gpu::new(false, FeatureRequest::default())) {
        Ok(g) => Some(g),
        Err(GpuError::NoAdapter(e)) if std::env::var("STT_REQUIRE_GPU").as_deref() != Ok("1") => {
            eprintln!("no GPU adapter ({e}): skipping");
            None
        }
        Err(e) => panic!("GPU: {e}"),
    }
}

/// moshi's SEANet encoder stepped one frame at a time: latents per frame,
/// channel-major `[512][2]` each.
fn moshi_seanet(path: &std::path::Path, m: &Model, pcm: &[f32]) -> Vec<Vec<f32>> {
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(
            &[path],
            candle_core::DType::F32,
            &Device::Cpu,
        )
    }
    .unwrap();
    let mut enc =
        moshi::seanet::SeaNetEncoder::new(&m.config.mimi_config().seanet, vb.pp("encoder"))
            .unwrap();
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let xs = candle_core::Tensor::from_slice(frame, (1, 1, FRAME_SAMPLES), &Device::Cpu)
                .unwrap();
            let ys = enc
                .step(&StreamTensor::from_tensor(xs), &StreamMask::empty())
                .unwrap();
            let ys = ys.as_option().expect("a latent per frame").i(0).unwrap();
            ys.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        })
        .collect()
}

/// `[512][frames·2]` → per frame `[512][2]`.
fn per_frame(latents: &[f32], frames: usize, per: usize) -> Vec<Vec<f32>> {
    let row = frames * per;
    (0..frames)
        .map(|f| {
            latents
                .chunks_exact(row)
                .flat_map(|r| r[f * per..(f + 1) * per].iter().copied())
                .collect()
        })
        .collect()
}

/// The GPU SEANet gives moshi's latents to f32 summation-order rounding —
/// each output sums up to 8192 products (the last downsampling conv:
/// 512 channels × kernel 16), typically √n·2⁻²⁴ ≈ 5e-6 relative, through
/// 14 convs: bound 1e-4 relative per frame — and chunks of 5 frames give
/// exactly the frame-by-frame GPU values (each output is computed the same
/// way whatever the chunk); a reset starts a fresh stream.
#[test]
fn gpu_seanet_matches_moshi_and_streams_exactly() {
    let Some(gpu) = gpu() else { return };
    let m = Model::from_dir(common::tiny_model(), Some("model.safetensors")).unwrap();
    let path = common::tiny_model().join(&m.config.mimi_name);
    let frames = 15;
    let pcm = &common::clip_24k("bria.mp3")[24_000..24_000 + frames * FRAME_SAMPLES];
    let want = moshi_seanet(&path, &m, pcm);

    let mut seanet = GpuSeanet::new(gpu, &m.mimi, &m.config, 5).unwrap();
    let per = seanet.latents_per_frame();
    let one: Vec<Vec<f32>> = pcm
        .chunks_exact(FRAME_SAMPLES)
        .flat_map(|f| per_frame(&block_on(seanet.encode(f)).unwrap(), 1, per))
        .collect();
    let mut worst = 0f64;
    for (i, (a, b)) in one.iter().zip(&want).enumerate() {
        let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
        let rel = (d / n).sqrt();
        assert!(rel < 1e-4, "frame {i}: relative error {rel:.2e}");
        worst = worst.max(rel);
    }
    eprintln!("GPU SEANet vs moshi: worst relative error {worst:.2e} over {frames} frames");

    seanet.reset();
    let chunked: Vec<Vec<f32>> = pcm
        .chunks(5 * FRAME_SAMPLES)
        .flat_map(|c| {
            let n = c.len() / FRAME_SAMPLES;
            per_frame(&block_on(seanet.encode(c)).unwrap(), n, per)
        })
        .collect();
    assert_eq!(
        chunked, one,
        "chunks of 5 frames differ from frame by frame"
    );
    assert!(
        block_on(seanet.encode(&pcm[..FRAME_SAMPLES * 6])).is_err(),
        "over max_frames"
    );
    assert!(
        block_on(seanet.encode(&pcm[..100])).is_err(),
        "not a whole frame"
    );
}
