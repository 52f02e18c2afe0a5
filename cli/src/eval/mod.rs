//! `stt-cli eval`: word error rate of the model on a corpus with reference
//! texts — a LibriSpeech-layout folder or a JSONL manifest (`corpus`) — as
//! one JSON report (per utterance and overall: substitutions, deletions,
//! insertions, WER, real-time factor); `--compare A B` sets two reports
//! side by side (e.g. the GPU Q4_K engine against the CPU f32 reference).

mod compare;
mod corpus;
mod normalize;
mod wer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use stt_model::mimi::MimiBackend;
use stt_model::{LmStepper, Model, Session};

use crate::transcribe::{transcribe_one, with_session, EngineArgs, WithSession};
pub use normalize::words as normalized_words;
pub use wer::Counts;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A LibriSpeech-layout folder (`*.trans.txt` beside the audio) or a
    /// JSONL manifest (`{"audio": PATH, "text": REFERENCE}` per line).
    #[arg(required_unless_present = "compare")]
    pub corpus: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Write the JSON report here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Evaluate only the first N utterances (in id order).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Compare two reports written by `stt-cli eval` (B against A).
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "corpus")]
    pub compare: Option<Vec<PathBuf>>,
    /// Progress on stderr, one line per utterance.
    #[arg(long, short)]
    pub verbose: bool,
}

/// One utterance's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scored {
    pub id: String,
    pub audio: PathBuf,
    pub reference: String,
    pub hypothesis: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub wer: Option<f64>,
    pub audio_s: f64,
    pub wall_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub id: String,
    pub audio: PathBuf,
    pub error: String,
}

/// What `stt-cli eval` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub corpus: PathBuf,
    pub model: String,
    pub lm_file: String,
    pub engine: String,
    /// Text sampling: 0 is greedy (moshi's choice); else the seed's draws.
    pub temperature: f32,
    pub seed: u64,
    pub normalisation: String,
    pub utterances: Vec<Scored>,
    /// Utterances that could not be transcribed (not in the totals).
    pub failed: Vec<Failure>,
    #[serde(flatten)]
    pub total: Counts,
    pub wer: Option<f64>,
    pub audio_s: f64,
    pub wall_s: f64,
    pub real_time_factor: f64,
}

pub const NORMALISATION: &str = "lower case, punctuation and hyphens as word breaks, \
    apostrophes kept inside words, accents kept, numbers as written";

/// Scores a hypothesis text against a reference text.
pub fn score(reference: &str, hypothesis: &str) -> Counts {
    Counts::of(&normalize::words(reference), &normalize::words(hypothesis))
}

struct Evaluate<'a> {
    corpus: &'a Path,
    /// The model as given (a folder or a repo id).
    model: &'a str,
    temperature: f32,
    seed: u64,
    utterances: Vec<corpus::Utterance>,
    verbose: bool,
}

impl WithSession for Evaluate<'_> {
    type Output = Report;

    fn run<S: LmStepper, M: MimiBackend>(
        self,
        session: &mut Session<S, M>,
        model: &Model,
        engine: &str,
    ) -> Result<Report> {
        let started = Instant::now();
        let (mut utterances, mut failed) = (vec![], vec![]);
        let mut total = Counts::default();
        let mut audio_s = 0.0;
        let n = self.utterances.len();
        for (i, u) in self.utterances.into_iter().enumerate() {
            let input = u.audio.to_string_lossy().into_owned();
            match transcribe_one(session, &input) {
                Ok((transcript, stats)) => {
                    let hypothesis = transcript.text();
                    let counts = score(&u.reference, &hypothesis);
                    total.add(&counts);
                    audio_s += stats.audio_s;
                    if self.verbose {
                        eprintln!(
                            "[{}/{n}] {}: {} errors / {} words",
                            i + 1,
                            u.id,
                            counts.errors(),
                            counts.reference_words
                        );
                    }
                    utterances.push(Scored {
                        id: u.id,
                        audio: u.audio,
                        reference: u.reference,
                        hypothesis,
                        wer: counts.wer(),
                        counts,
                        audio_s: stats.audio_s,
                        wall_s: stats.wall_s,
                    });
                }
                Err(e) => {
                    eprintln!("error: {}: {e:#}", u.id);
                    failed.push(Failure {
                        id: u.id,
                        audio: u.audio,
                        error: format!("{e:#}"),
                    });
                }
            }
        }
        let wall_s = started.elapsed().as_secs_f64();
        Ok(Report {
            corpus: self.corpus.to_path_buf(),
            model: self.model.to_string(),
            lm_file: model.lm.file_name().to_string(),
            engine: engine.to_string(),
            temperature: self.temperature,
            seed: self.seed,
            normalisation: NORMALISATION.to_string(),
            utterances,
            failed,
            wer: total.wer(),
            total,
            audio_s,
            wall_s,
            real_time_factor: if audio_s > 0.0 { wall_s / audio_s } else { 0.0 },
        })
    }
}

fn write_json(value: &impl Serialize, output: Option<&Path>) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            Ok(out.flush()?)
        }
    }
}

/// Ok(false) when some utterance failed (the report says which).
pub fn run(args: EvalArgs) -> Result<bool> {
    if let Some(pair) = &args.compare {
        let [a, b] = pair.as_slice() else {
            bail!("--compare takes two reports");
        };
        let c = compare::compare(&compare::read(a)?, &compare::read(b)?, a, b);
        write_json(&c, args.output.as_deref())?;
        return Ok(true);
    }
    let Some(corpus) = &args.corpus else {
        bail!("a corpus (folder or manifest) or --compare A B");
    };
    let mut utterances = corpus::load(corpus)?;
    if let Some(n) = args.limit {
        utterances.truncate(n);
    }
    let task = Evaluate {
        corpus,
        model: &args.engine.model,
        temperature: args.engine.temperature,
        seed: args.engine.seed,
        utterances,
        verbose: args.verbose,
    };
    let report = with_session(&args.engine, args.verbose, task)?;
    eprintln!(
        "WER {} over {} utterances ({} words: {} substitutions, {} deletions, {} insertions); \
         {:.1} s of audio in {:.1} s (real-time factor {:.3}){}",
        report
            .wer
            .map_or("n/a".to_string(), |w| format!("{:.2} %", 100.0 * w)),
        report.utterances.len(),
        report.total.reference_words,
        report.total.substitutions,
        report.total.deletions,
        report.total.insertions,
        report.audio_s,
        report.wall_s,
        report.real_time_factor,
        if report.failed.is_empty() {
            String::new()
        } else {
            format!("; {} failed", report.failed.len())
        }
    );
    write_json(&report, args.output.as_deref())?;
    Ok(report.failed.is_empty())
}
