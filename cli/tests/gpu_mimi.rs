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
use stt_wgpu::mimi::{GpuSeanet, GpuTransformerRunner};
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

fn var_builder(path: &std::path::Path) -> candle_nn::VarBuilder<'static> {
    unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(
            &[path],
            candle_core::DType::F32,
            &Device::Cpu,
        )
    }
    .unwrap()
}

/// Largest per-frame relative L2 difference.
fn worst_relative(got: &[Vec<f32>], want: &[Vec<f32>]) -> f64 {
    assert_eq!(got.len(), want.len());
    let mut worst = 0f64;
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
        let rel = (d / n).sqrt();
        assert!(rel.is_finite(), "frame {i}: not finite");
        worst = worst.max(rel);
    }
    worst
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

/// The GPU encoder transformer against moshi's, stepped one frame at a
/// time, on moshi's SEANet latents of 12 s of speech (150 frames: the
/// 250-position window wraps at frame 125). One frame per call and seven
/// per call must both give moshi's frame-by-frame outputs (the attention
/// kernel reproduces the keys each position sees then) to 1e-4 relative:
/// 8 layers of sums of up to 2048 f32 terms (~√2048·2⁻²⁴ ≈ 3e-6 each) and
/// a softmax over 250 keys.
#[test]
fn gpu_transformer_matches_moshi_frame_by_frame() {
    let Some(gpu) = gpu() else { return };
    let m = Model::from_dir(common::tiny_model(), Some("model.safetensors")).unwrap();
    let path = common::tiny_model().join(&m.config.mimi_name);
    let frames = 150;
    let pcm = &common::clip_24k("bria.mp3")[..frames * FRAME_SAMPLES];
    let latents = moshi_seanet(&path, &m, pcm);
    let mc = m.config.mimi_config();
    let mut moshi_t = moshi::transformer::Transformer::new(
        None,
        mc.seanet.dimension,
        &mc.transformer,
        var_builder(&path).pp("encoder_transformer"),
    )
    .unwrap();
    let want: Vec<Vec<f32>> = latents
        .iter()
        .map(|l| {
            let xs = candle_core::Tensor::from_slice(l, (1, 512, 2), &Device::Cpu).unwrap();
            let ys = moshi_t
                .step(&StreamTensor::from_tensor(xs), &StreamMask::empty())
                .unwrap();
            let ys = ys.as_option().expect("an output per frame").i(0).unwrap();
            ys.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        })
        .collect();

    let mut runner = GpuTransformerRunner::new(gpu, &m.mimi, &m.config, 7).unwrap();
    for chunk in [1, 7] {
        runner.reset();
        let mut got = vec![];
        for part in latents.chunks(chunk) {
            // [frames][512][2] → [512][frames·2]
            let n = part.len();
            let mut x = vec![0f32; 512 * 2 * n];
            for (f, l) in part.iter().enumerate() {
                for c in 0..512 {
                    x[c * 2 * n + 2 * f] = l[2 * c];
                    x[c * 2 * n + 2 * f + 1] = l[2 * c + 1];
                }
            }
            let y = block_on(runner.step(&x)).unwrap();
            got.extend(per_frame(&y, n, 2));
        }
        let worst = worst_relative(&got, &want);
        eprintln!("GPU transformer, {chunk} frame(s) per call: worst relative error {worst:.2e}");
        assert!(
            worst < 1e-4,
            "{chunk} frames per call: relative error {worst:.2e}"
        );
    }
}
