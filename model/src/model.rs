//! A model as a set of files (config, LM, Mimi, tokenizer), found by upstream
//! names in a directory or handed over as bytes (the browser).

use std::sync::Arc;

use candle_core::Device;

use crate::config::Config;
#[cfg(not(target_arch = "wasm32"))]
use crate::error::Error;
use crate::error::Result;
use crate::mimi::MimiEncoder;
use crate::session::Session;
use crate::stepper::CpuStepper;
use crate::tokenizer::Tokenizer;
use crate::weights::{safetensors::SafetensorsFile, LmWeights, Shards};

pub const CONFIG_FILE: &str = "config.json";
/// LM files in the order a directory is searched when none is named: the
/// community Q4_K GGUF is the fastest on a CPU, then Q8_0, our Q4_0, and the
/// upstream bf16 safetensors.
pub const LM_FILES: [&str; 4] = [
    "model-q4k.gguf",
    "model-q80.gguf",
    "model-q40.gguf",
    "model.safetensors",
];

pub struct Model {
    pub config: Config,
    pub lm: LmWeights,
    pub mimi: SafetensorsFile,
    pub tokenizer: Option<Arc<Tokenizer>>,
}

impl Model {
    pub fn from_parts(
        config: Config,
        lm_name: &str,
        lm: Shards,
        mimi: Shards,
        tokenizer: Option<Tokenizer>,
    ) -> Result<Self> {
        let lm = LmWeights::from_shards(lm_name, lm)?;
        let mimi = SafetensorsFile::from_shards(&config.mimi_name, mimi)?;
        Ok(Self {
            config,
            lm,
            mimi,
            tokenizer: tokenizer.map(Arc::new),
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    /// Loads a model directory laid out as upstream's: `config.json`, the
    /// files it names, and an LM file (`lm_file`, or the first of [`LM_FILES`]).
    pub fn from_dir(dir: &std::path::Path, lm_file: Option<&str>) -> Result<Self> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| Error::WeightFile {
                file: dir.join(name).display().to_string(),
                reason: e.to_string(),
            })
        };
        let config = Config::from_json(&read(CONFIG_FILE)?)?;
        let lm_name = match lm_file {
            Some(f) => f.to_string(),
            None => LM_FILES
                .iter()
                .find(|f| dir.join(f).is_file())
                .ok_or_else(|| Error::WeightFile {
                    file: dir.display().to_string(),
                    reason: format!("no LM weights found (looked for {})", LM_FILES.join(", ")),
                })?
                .to_string(),
        };
        let lm = Shards::from_path(&dir.join(&lm_name))?;
        let mimi = Shards::from_path(&dir.join(&config.mimi_name))?;
        let tokenizer = Self::find_tokenizer(dir, &config)?;
        Self::from_parts(config, &lm_name, lm, mimi, tokenizer)
    }

    #[cfg(not(target_arch = "wasm32"))]
    /// The `.model` named by the config, else a `.json` beside it (the
    /// community repo ships `tokenizer_en_fr_audio_8000.json`).
    fn find_tokenizer(dir: &std::path::Path, config: &Config) -> Result<Option<Tokenizer>> {
        let named = dir.join(&config.tokenizer_name);
        let json = named.with_extension("json");
        for p in [named, json] {
            if p.is_file() {
                return Ok(Some(Tokenizer::from_path(&p)?));
            }
        }
        Ok(None)
    }

    pub fn mimi_encoder(&self, device: &Device) -> Result<MimiEncoder> {
        MimiEncoder::load(&self.mimi, &self.config, device)
    }

    pub fn cpu_stepper(&self, device: &Device) -> Result<CpuStepper> {
        CpuStepper::load(&self.lm, &self.config, device)
    }

    /// A session on moshi's CPU LM.
    pub fn cpu_session(&self) -> Result<Session<CpuStepper>> {
        let dev = Device::Cpu;
        Ok(Session::new(
            &self.config,
            self.mimi_encoder(&dev)?,
            self.cpu_stepper(&dev)?,
            self.tokenizer.clone(),
        ))
    }
}
