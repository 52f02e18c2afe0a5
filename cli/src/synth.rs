//! `stt-cli synth`: a synthetic model of the real architecture, from a seed,
//! in the upstream file names and layouts (config.json, LM safetensors and
//! GGUFs, Mimi safetensors, SentencePiece `.model` and `tokenizer.json`).
//!
//! The tensor list comes from moshi itself: its `LmModel` and `Mimi`
//! constructors run once over a recording backend, so the names and shapes
//! are exactly what moshi (and so the real checkpoints) use. Each tensor's
//! values come from its own RNG stream, seeded by (seed, name), so every file
//! of a model holds the same numbers whatever else is written.

use std::io::BufWriter;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Shape, Tensor};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use stt_model::config::{Config, END_OF_TURN_HEADS};
use stt_model::model::CONFIG_FILE;
use stt_model::tokenizer;
use stt_model::weights::quant::QuantType;

use crate::tensor_writer::{GgufWriter, SafetensorsWriter, StDtype, TensorSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// d_model 256, 2 layers: seconds to run, for tests.
    Tiny,
    /// d_model 512, 4 layers, 8 heads.
    Mid,
    /// The real stt-1b-en_fr architecture (d_model 2048, 16 layers).
    Full,
    /// stt-2.6b-en's shape at d_model 256 (4 heads of 64, 3 layers), with
    /// its vocabulary, context, delay, silence prefix and no end-of-turn
    /// heads: seconds to run, for tests.
    EnTiny,
    /// The real stt-2.6b-en architecture (d_model 2048, 32 heads, 48 layers).
    EnFull,
}

impl Preset {
    pub fn config(self) -> Config {
        let mut c = match self {
            Preset::Tiny => Config::sized(256, 4, 2),
            Preset::Mid => Config::sized(512, 8, 4),
            Preset::Full => Config::stt_1b_en_fr(),
            Preset::EnTiny => Config {
                dim: 256,
                num_heads: 4,
                num_layers: 3,
                ..Config::stt_2b6_en()
            },
            Preset::EnFull => Config::stt_2b6_en(),
        };
        // Upstream's config.json does not list the extra heads: moshi is told
        // by the caller, we look for them in the weights.
        c.extra_heads_num_heads = None;
        c.extra_heads_dim = None;
        c
    }

    /// End-of-turn heads the published checkpoint of this shape has.
    pub fn extra_heads(self) -> usize {
        match self {
            Preset::Tiny | Preset::Mid | Preset::Full => END_OF_TURN_HEADS,
            Preset::EnTiny | Preset::EnFull => 0,
        }
    }
}

/// `stt-cli synth`: a synthetic model (random weights, real architecture
/// and file layout).
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output directory.
    #[arg(long, short)]
    pub out: std::path::PathBuf,
    #[arg(long, value_enum, default_value = "tiny")]
    pub preset: Preset,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Element type of model.safetensors.
    #[arg(long, value_enum, default_value = "bf16")]
    pub lm_dtype: crate::args::LmDtype,
    /// GGUF files to write as well (comma-separated: q4_0,q4_k,q8_0).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub gguf: Vec<crate::args::BlockQuant>,
    /// End-of-turn heads to write (default: as the preset's published
    /// checkpoint: 4 for stt-1b-en_fr, none for stt-2.6b-en). A count
    /// other than 4 is written into config.json.
    #[arg(long)]
    pub extra_heads: Option<usize>,
}

pub fn run(args: SynthArgs) -> Result<bool> {
    let mut opts = SynthOptions::new(args.preset, args.seed);
    opts.lm_dtype = args.lm_dtype.into();
    opts.gguf = args.gguf.into_iter().map(QuantType::from).collect();
    if let Some(n) = args.extra_heads {
        opts.extra_heads = n;
    }
    synth(&args.out, &opts)?;
    Ok(true)
}

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub preset: Preset,
    pub seed: u64,
    /// Element type of `model.safetensors` (upstream's is bf16).
    pub lm_dtype: StDtype,
    /// GGUF files to write, from the same values.
    pub gguf: Vec<QuantType>,
    /// End-of-turn heads to write (upstream's stt-1b-en_fr-candle has 4).
    pub extra_heads: usize,
    /// Scale of `text_linear` rows 3 (pad) and 0 (end of padding). Plain
    /// random weights never pick these two among 8000 tokens, and without
    /// them moshi never emits a word.
    pub pad_logit_scale: f32,
    pub end_of_padding_logit_scale: f32,
    /// Standard deviation of Mimi's codebook entries.
    pub codebook_std: f32,
}

impl SynthOptions {
    pub fn new(preset: Preset, seed: u64) -> Self {
        Self {
            preset,
            seed,
            lm_dtype: StDtype::BF16,
            gguf: vec![],
            extra_heads: preset.extra_heads(),
            pad_logit_scale: 3.5,
            end_of_padding_logit_scale: 3.2,
            codebook_std: 0.005,
        }
    }
}

/// GGUF file names: the community repo's for Q4_K and Q8_0, ours for Q4_0.
pub fn gguf_file_name(ty: QuantType) -> &'static str {
    match ty {
        QuantType::Q4K => "model-q4k.gguf",
        QuantType::Q8_0 => "model-q80.gguf",
        QuantType::Q4_0 => "model-q40.gguf",
        QuantType::F16 => "model-f16.gguf",
        QuantType::F32 => "model-f32.gguf",
    }
}

/// A candle backend that hands out zero-cost placeholders and records what
/// was asked for.
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<Mutex<Vec<TensorSpec>>>);

impl Recorder {
    fn var_builder(&self) -> candle_nn::VarBuilder<'static> {
        candle_nn::VarBuilder::from_backend(Box::new(self.clone()), DType::F32, Device::Cpu)
    }

    fn specs(&self) -> Vec<TensorSpec> {
        let mut specs = match self.0.lock() {
            Ok(mut seen) => std::mem::take(&mut *seen),
            Err(_) => vec![],
        };
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }
}

impl candle_nn::var_builder::SimpleBackend for Recorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Ok(mut seen) = self.0.lock() {
            if !seen.iter().any(|t| t.name == name) {
                seen.push(TensorSpec {
                    name: name.to_string(),
                    shape: s.dims().to_vec(),
                });
            }
        }
        // A broadcast scalar: the shape without the memory.
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("recorder: `{name}` asked for without a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        // Checkpoints store plain `weight`s (no weight-norm pairs) and
        // LayerNorm `weight`s (no `alpha`), as upstream's Mimi does.
        name.rsplit('.').next() != Some("alpha")
    }
}

/// The LM's tensors, as moshi loads them, plus `depformer_in.0.weight`,
/// which moshi's Rust ignores but PyTorch's strict loader requires.
pub fn lm_specs(cfg: &Config, extra_heads: bool) -> Result<Vec<TensorSpec>> {
    let rec = Recorder::default();
    let vb = moshi::nn::MaybeQuantizedVarBuilder::Real(rec.var_builder());
    moshi::lm::LmModel::new(&cfg.lm_config(extra_heads), vb)
        .context("recording the LM's tensors")?;
    let mut specs = rec.specs();
    specs.push(TensorSpec {
        name: "depformer_in.0.weight".into(),
        shape: vec![256, cfg.dim],
    });
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(specs)
}

pub fn mimi_specs(cfg: &Config) -> Result<Vec<TensorSpec>> {
    let rec = Recorder::default();
    moshi::mimi::Mimi::new(cfg.mimi_config(), rec.var_builder())
        .context("recording Mimi's tensors")?;
    Ok(rec.specs())
}

/// A per-tensor RNG: FNV-1a of the name mixed into the seed.
fn rng_for(seed: u64, name: &str) -> rand::rngs::StdRng {
    let mut h = 0xcbf29ce484222325u64 ^ seed.wrapping_mul(0x9E3779B97F4A7C15);
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    rand::rngs::StdRng::seed_from_u64(h)
}

fn normal(rng: &mut rand::rngs::StdRng, n: usize, std: f32) -> Vec<f32> {
    match Normal::new(0.0f32, std) {
        Ok(d) => (0..n).map(|_| d.sample(rng)).collect(),
        Err(_) => vec![0.0; n],
    }
}

fn uniform(rng: &mut rand::rngs::StdRng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..=bound)).collect()
}

/// LM values: norms 1; embeddings N(0, 1); matrices N(0, 1/fan_in) so that
/// activations keep their scale through the layers.
pub fn lm_values(opts: &SynthOptions, spec: &TensorSpec) -> Vec<f32> {
    let n = spec.numel();
    let name = spec.name.as_str();
    let mut rng = rng_for(opts.seed, name);
    if name.ends_with(".alpha") {
        return vec![1.0; n];
    }
    if name == "text_emb.weight" || name.starts_with("emb.") {
        return normal(&mut rng, n, 1.0);
    }
    let fan_in = spec.shape.last().copied().unwrap_or(1).max(1);
    let mut xs = normal(&mut rng, n, 1.0 / (fan_in as f32).sqrt());
    if name == "text_linear.weight" {
        for (row, scale) in [
            (3usize, opts.pad_logit_scale),
            (0, opts.end_of_padding_logit_scale),
        ] {
            xs[row * fan_in..(row + 1) * fan_in]
                .iter_mut()
                .for_each(|x| *x *= scale);
        }
    }
    xs
}

/// Mimi values, close to how PyTorch initialises a fresh Mimi (weights
/// U(±1/√fan_in), norms 1, biases 0 so the input, not a constant, drives
/// the latents), except the codebooks: a fresh Mimi's are
/// all zero (every code 0), so they get small Gaussian entries instead, at
/// the scale of the projected latents, and are marked initialised.
pub fn mimi_values(opts: &SynthOptions, spec: &TensorSpec) -> Vec<f32> {
    let n = spec.numel();
    let name = spec.name.as_str();
    let mut rng = rng_for(opts.seed ^ 0x4D494D49, name);
    let last = name.rsplit('.').next().unwrap_or("");
    let is_norm = name.contains("norm");
    match last {
        "embedding_sum" => normal(&mut rng, n, opts.codebook_std),
        "cluster_usage" | "_initialized" => vec![1.0; n],
        "scale" => vec![0.01; n], // layer_scale, as Mimi's config says
        "weight" if is_norm => vec![1.0; n],
        "bias" => vec![0.0; n],
        _ => {
            let fan_in: usize = match spec.shape.as_slice() {
                [_, i, k] if name.contains("convtr") => (*i * *k).max(1),
                [_, i, k] => (*i * *k).max(1),
                [_, i] => (*i).max(1),
                _ => 1,
            };
            uniform(&mut rng, n, 1.0 / (fan_in as f32).sqrt())
        }
    }
}

/// Writes the model directory.
pub fn synth(dir: &Path, opts: &SynthOptions) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cfg = opts.preset.config();
    // Upstream's config.json does not count the heads (moshi assumes 4 when
    // told to load them); another count has to be written down.
    if opts.extra_heads > 0 && opts.extra_heads != END_OF_TURN_HEADS {
        cfg.extra_heads_num_heads = Some(opts.extra_heads);
    }
    cfg.other.insert(
        stt_model::config::SYNTHETIC_MARKER.into(),
        serde_json::Value::Bool(true),
    );
    std::fs::write(dir.join(CONFIG_FILE), cfg.to_json())?;

    let vocab = tokenizer::writers::synthetic_vocab(cfg.text_card);
    std::fs::write(
        dir.join(&cfg.tokenizer_name),
        tokenizer::writers::write_sentencepiece_model(&vocab),
    )?;
    let json_name = Path::new(&cfg.tokenizer_name).with_extension("json");
    std::fs::write(
        dir.join(json_name),
        tokenizer::writers::write_tokenizer_json(&vocab),
    )?;

    let create = |name: &str| -> Result<BufWriter<std::fs::File>> {
        let p = dir.join(name);
        Ok(BufWriter::with_capacity(
            8 << 20,
            std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?,
        ))
    };

    let specs = mimi_specs(&cfg)?;
    let mut mimi = SafetensorsWriter::new(create(&cfg.mimi_name)?, StDtype::F32, &specs)?;
    for s in &specs {
        mimi.push(&s.name, &mimi_values(opts, s))?;
    }
    mimi.finish()?;

    let specs = lm_specs(&cfg, opts.extra_heads > 0)?;
    let mut st = SafetensorsWriter::new(
        create(stt_model::config::UPSTREAM_LM_FILE)?,
        opts.lm_dtype,
        &specs,
    )?;
    let mut ggufs = opts
        .gguf
        .iter()
        .map(|&ty| {
            GgufWriter::new(
                create(gguf_file_name(ty))?,
                ty,
                "stt-web synthetic Kyutai STT",
                &specs,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    for s in &specs {
        let mut xs = lm_values(opts, s);
        // The GGUFs quantize the values as model.safetensors stores them,
        // as the community GGUF was made from the bf16 checkpoint.
        opts.lm_dtype.round_trip(&mut xs);
        st.push(&s.name, &xs)?;
        for g in ggufs.iter_mut() {
            g.push(&s.name, &xs)?;
        }
    }
    st.finish()?;
    for g in ggufs {
        g.finish()?;
    }
    Ok(())
}
