//! Model configuration: the upstream `config.json` of `kyutai/stt-1b-en_fr-candle`
//! (field names verbatim) and its translation into `moshi::lm::Config`, the way
//! upstream `stt-rs` builds it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Mimi works on 24 kHz mono PCM.
pub const SAMPLE_RATE_HZ: u32 = 24_000;
/// One Mimi frame: 1920 samples = 80 ms.
pub const FRAME_SAMPLES: usize = 1920;
/// Frames (and LM steps) per second: 24000 / 1920.
pub const FRAME_RATE_HZ: f64 = SAMPLE_RATE_HZ as f64 / FRAME_SAMPLES as f64;
/// Text token that closes a word and marks "no text here" (`existing_text_padding_id`).
pub const TEXT_PAD_TOKEN: u32 = 3;
/// Text token "end of padding": closes a word and stamps the word's end time.
pub const TEXT_END_OF_PADDING_TOKEN: u32 = 0;
/// The end-of-turn heads of stt-1b-en_fr (upstream's "extra heads", a
/// semantic VAD): 4 horizons (0.5/1/2/3 s), 6 classes each. The defaults
/// when `config.json` leaves `extra_heads_num_heads` / `extra_heads_dim` out.
pub const END_OF_TURN_HEADS: usize = 4;
pub const END_OF_TURN_HEAD_WIDTH: usize = 6;

/// `stt_config` in the upstream config.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SttConfig {
    /// Silence that upstream prepends to the audio (0 for stt-1b-en_fr).
    #[serde(default)]
    pub audio_silence_prefix_seconds: f64,
    /// Text lags audio by this much (0.5 s → 6 steps).
    pub audio_delay_seconds: f64,
}

/// The upstream `config.json`, with the fields the model needs. Unknown fields
/// are kept so that a file we write round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub mimi_name: String,
    pub tokenizer_name: String,
    /// Audio codebook size (2048); the audio vocabulary adds a pad token.
    pub card: usize,
    /// Text output vocabulary (8000); the input vocabulary adds the start token.
    pub text_card: usize,
    pub dim: usize,
    pub n_q: usize,
    pub context: usize,
    pub max_period: f64,
    pub num_heads: usize,
    pub num_layers: usize,
    #[serde(default = "default_true")]
    pub causal: bool,
    pub stt_config: SttConfig,
    /// Number of extra (end-of-turn) heads in the checkpoint; 0 when absent.
    /// Not an upstream field: upstream enables them with `--vad`; we detect
    /// them from the weights when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_heads_num_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_heads_dim: Option<usize>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

fn default_true() -> bool {
    true
}

/// A `config.json` key `stt-cli synth` sets: the weights are random and the
/// words gibberish (the browser says so).
pub const SYNTHETIC_MARKER: &str = "stt_web_synthetic";

/// Upstream file names of `kyutai/stt-1b-en_fr-candle`.
pub const UPSTREAM_MIMI_FILE: &str = "mimi-pytorch-e351c8d8@125.safetensors";
pub const UPSTREAM_TOKENIZER_FILE: &str = "tokenizer_en_fr_audio_8000.model";
pub const UPSTREAM_LM_FILE: &str = "model.safetensors";
/// The tokenizer of `kyutai/stt-2.6b-en(-candle)` (English only, 4000 pieces).
pub const UPSTREAM_EN_TOKENIZER_FILE: &str = "tokenizer_en_audio_4000.model";

impl Config {
    /// stt-1b-en_fr as published.
    pub fn stt_1b_en_fr() -> Self {
        Self {
            mimi_name: UPSTREAM_MIMI_FILE.to_string(),
            tokenizer_name: UPSTREAM_TOKENIZER_FILE.to_string(),
            card: 2048,
            text_card: 8000,
            dim: 2048,
            n_q: 32,
            context: 750,
            max_period: 100_000.,
            num_heads: 16,
            num_layers: 16,
            causal: true,
            stt_config: SttConfig {
                audio_silence_prefix_seconds: 0.0,
                audio_delay_seconds: 0.5,
            },
            extra_heads_num_heads: Some(END_OF_TURN_HEADS),
            extra_heads_dim: Some(END_OF_TURN_HEAD_WIDTH),
            other: serde_json::Map::new(),
        }
    }

    /// stt-2.6b-en as published: the same width, twice the heads (of 64),
    /// 48 layers, a 4000-piece English vocabulary, a 30 s context, text
    /// 2.5 s behind the audio after 1 s of prepended silence, and no
    /// end-of-turn heads.
    pub fn stt_2b6_en() -> Self {
        Self {
            tokenizer_name: UPSTREAM_EN_TOKENIZER_FILE.to_string(),
            text_card: 4000,
            num_heads: 32,
            num_layers: 48,
            context: 375,
            stt_config: SttConfig {
                audio_silence_prefix_seconds: 1.0,
                audio_delay_seconds: 2.5,
            },
            extra_heads_num_heads: None,
            extra_heads_dim: None,
            ..Self::stt_1b_en_fr()
        }
    }

    /// The same architecture at another size (synthetic models).
    pub fn sized(dim: usize, num_heads: usize, num_layers: usize) -> Self {
        Self {
            dim,
            num_heads,
            num_layers,
            ..Self::stt_1b_en_fr()
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let cfg: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Config(format!("config.json: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        // Serialising a struct of plain fields cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.dim == 0 || self.num_heads == 0 || self.num_layers == 0 {
            return bad("dim, num_heads and num_layers must be positive".into());
        }
        if !self.dim.is_multiple_of(self.num_heads)
            || !(self.dim / self.num_heads).is_multiple_of(2)
        {
            return bad(format!(
                "dim {} must split into {} even-sized heads",
                self.dim, self.num_heads
            ));
        }
        if self.n_q == 0 || self.n_q > 32 {
            return bad(format!(
                "n_q {} must be within 1..=32 (Mimi has 32 codebooks)",
                self.n_q
            ));
        }
        if self.card == 0 || self.text_card <= TEXT_PAD_TOKEN as usize || self.context == 0 {
            return bad("card, text_card and context must be positive".into());
        }
        if self.extra_heads_num_heads == Some(0) || self.extra_heads_dim == Some(0) {
            return bad("extra_heads_num_heads and extra_heads_dim must be positive".into());
        }
        if !(self.stt_config.audio_silence_prefix_seconds >= 0.0
            && self.stt_config.audio_silence_prefix_seconds < 60.0)
        {
            return bad(format!(
                "audio_silence_prefix_seconds {}",
                self.stt_config.audio_silence_prefix_seconds
            ));
        }
        if !(self.stt_config.audio_delay_seconds >= 0.0
            && self.stt_config.audio_delay_seconds < 60.0)
        {
            return bad(format!(
                "audio_delay_seconds {}",
                self.stt_config.audio_delay_seconds
            ));
        }
        Ok(())
    }

    /// Text lags audio by this many steps (6 for stt-1b-en_fr), as upstream
    /// `stt-rs` computes it.
    pub fn asr_delay_in_tokens(&self) -> usize {
        (self.stt_config.audio_delay_seconds * FRAME_RATE_HZ) as usize
    }

    /// Hidden width of the gated MLP, as moshi derives it from `dim_feedforward = 4 * dim`.
    pub fn ffn_hidden(&self) -> usize {
        11 * self.dim / 4
    }

    pub fn text_start_token(&self) -> u32 {
        self.text_card as u32
    }

    pub fn audio_pad_token(&self) -> u32 {
        self.card as u32
    }

    /// (count, width) of the end-of-turn heads when the weights have them.
    pub fn end_of_turn_heads(&self) -> (usize, usize) {
        (
            self.extra_heads_num_heads.unwrap_or(END_OF_TURN_HEADS),
            self.extra_heads_dim.unwrap_or(END_OF_TURN_HEAD_WIDTH),
        )
    }

    /// The moshi LM config, as upstream `stt-rs` builds it.
    pub fn lm_config(&self, with_extra_heads: bool) -> moshi::lm::Config {
        let transformer = moshi::transformer::Config {
            d_model: self.dim,
            num_heads: self.num_heads,
            num_layers: self.num_layers,
            dim_feedforward: self.dim * 4,
            causal: self.causal,
            norm_first: true,
            bias_ff: false,
            bias_attn: false,
            layer_scale: None,
            context: self.context,
            max_period: self.max_period as usize,
            use_conv_block: false,
            use_conv_bias: true,
            cross_attention: None,
            gating: Some(candle_nn::Activation::Silu),
            norm: moshi::NormType::RmsNorm,
            positional_embedding: moshi::transformer::PositionalEmbedding::Rope,
            conv_layout: false,
            conv_kernel_size: 3,
            kv_repeat: 1,
            max_seq_len: 4096 * 4,
            shared_cross_attn: false,
        };
        let extra_heads = with_extra_heads.then(|| {
            let (num_heads, dim) = self.end_of_turn_heads();
            moshi::lm::ExtraHeadsConfig { num_heads, dim }
        });
        moshi::lm::Config {
            transformer,
            depformer: None,
            audio_vocab_size: self.card + 1,
            text_in_vocab_size: self.text_card + 1,
            text_out_vocab_size: self.text_card,
            audio_codebooks: self.n_q,
            conditioners: Default::default(),
            extra_heads,
        }
    }

    /// Mimi as stt-1b-en_fr uses it: all 32 codebooks.
    pub fn mimi_config(&self) -> moshi::mimi::Config {
        moshi::mimi::Config::v0_1(Some(self.n_q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_numbers() {
        let c = Config::stt_1b_en_fr();
        assert_eq!(c.asr_delay_in_tokens(), 6);
        assert_eq!(c.ffn_hidden(), 5632);
        assert_eq!(FRAME_RATE_HZ, 12.5);
        let back = Config::from_json(c.to_json().as_bytes()).unwrap();
        assert_eq!(back, c);
        // stt-2.6b-en: 2.5 s × 12.5 Hz = 31.25 → 31 steps, as stt-rs truncates.
        let en = Config::stt_2b6_en();
        assert_eq!(en.asr_delay_in_tokens(), 31);
        assert_eq!((en.dim / en.num_heads, en.ffn_hidden()), (64, 5632));
        assert_eq!(Config::from_json(en.to_json().as_bytes()).unwrap(), en);
    }

    #[test]
    fn stt_2b6_en_upstream_json() {
        // The fields of kyutai/stt-2.6b-en's config.json.
        let json = r#"{"mimi_name": "mimi-pytorch-e351c8d8@125.safetensors",
            "tokenizer_name": "tokenizer_en_audio_4000.model", "card": 2048, "text_card": 4000,
            "dim": 2048, "n_q": 32, "context": 375, "max_period": 100000.0, "num_heads": 32,
            "num_layers": 48, "causal": true, "model_type": "stt",
            "stt_config": {"audio_silence_prefix_seconds": 1.0, "audio_delay_seconds": 2.5}}"#;
        let c = Config::from_json(json.as_bytes()).unwrap();
        let mut want = Config::stt_2b6_en();
        want.other = c.other.clone();
        assert_eq!(c, want);
    }

    #[test]
    fn upstream_json_without_our_fields() {
        let json = r#"{"mimi_name": "m.safetensors", "tokenizer_name": "t.model", "card": 2048,
            "text_card": 8000, "dim": 2048, "n_q": 32, "context": 750, "max_period": 100000,
            "num_heads": 16, "num_layers": 16, "causal": true, "model_type": "stt",
            "stt_config": {"audio_silence_prefix_seconds": 0.0, "audio_delay_seconds": 0.5}}"#;
        let c = Config::from_json(json.as_bytes()).unwrap();
        assert_eq!(c.extra_heads_num_heads, None);
        assert_eq!(
            c.other.get("model_type").and_then(|v| v.as_str()),
            Some("stt")
        );
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Config::from_json(b"{}").is_err());
        assert!(Config::from_json(b"not json").is_err());
        let mut c = Config::stt_1b_en_fr();
        c.num_heads = 3;
        assert!(Config::from_json(c.to_json().as_bytes()).is_err());
        let mut c = Config::stt_1b_en_fr();
        c.extra_heads_dim = Some(0);
        assert!(Config::from_json(c.to_json().as_bytes()).is_err());
        let mut c = Config::stt_1b_en_fr();
        c.stt_config.audio_silence_prefix_seconds = -1.0;
        assert!(Config::from_json(c.to_json().as_bytes()).is_err());
    }
}
