//! `stt-cli eval --compare A B`: two reports of the same corpus side by
//! side — overall WER and counts of each, B − A, and every utterance whose
//! hypothesis differs (with both hypotheses), plus utterances only one of
//! them has.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Counts, Report};

pub fn read(path: &Path) -> Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a report written by stt-cli eval", path.display()))
}

#[derive(Debug, Serialize)]
pub struct Side {
    pub report: String,
    pub engine: String,
    pub lm_file: String,
    pub temperature: f32,
    pub seed: u64,
    #[serde(flatten)]
    pub total: Counts,
    pub wer: Option<f64>,
    pub real_time_factor: f64,
}

#[derive(Debug, Serialize)]
pub struct Difference {
    pub id: String,
    pub reference: String,
    pub a: String,
    pub b: String,
    pub a_errors: usize,
    pub b_errors: usize,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
    /// WER(B) − WER(A), absolute (0.01 = one point).
    pub wer_b_minus_a: Option<f64>,
    pub utterances_compared: usize,
    pub hypotheses_differ: Vec<Difference>,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
}

fn side(r: &Report, path: &Path) -> Side {
    Side {
        report: path.display().to_string(),
        engine: r.engine.clone(),
        lm_file: r.lm_file.clone(),
        temperature: r.temperature,
        seed: r.seed,
        total: r.total,
        wer: r.wer,
        real_time_factor: r.real_time_factor,
    }
}

pub fn compare(a: &Report, b: &Report, a_path: &Path, b_path: &Path) -> Comparison {
    let mut hypotheses_differ = vec![];
    let mut only_in_a = vec![];
    let mut compared = 0;
    for ua in &a.utterances {
        match b.utterances.iter().find(|ub| ub.id == ua.id) {
            Some(ub) => {
                compared += 1;
                if ua.hypothesis != ub.hypothesis {
                    hypotheses_differ.push(Difference {
                        id: ua.id.clone(),
                        reference: ua.reference.clone(),
                        a: ua.hypothesis.clone(),
                        b: ub.hypothesis.clone(),
                        a_errors: ua.counts.errors(),
                        b_errors: ub.counts.errors(),
                    });
                }
            }
            None => only_in_a.push(ua.id.clone()),
        }
    }
    let only_in_b = (b.utterances.iter())
        .filter(|ub| !a.utterances.iter().any(|ua| ua.id == ub.id))
        .map(|ub| ub.id.clone())
        .collect();
    Comparison {
        a: side(a, a_path),
        b: side(b, b_path),
        wer_b_minus_a: a.wer.zip(b.wer).map(|(a, b)| b - a),
        utterances_compared: compared,
        hypotheses_differ,
        only_in_a,
        only_in_b,
    }
}
