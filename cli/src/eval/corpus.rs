//! What to evaluate: utterances (an id, an audio file, a reference text)
//! from a LibriSpeech-layout folder or a JSONL manifest.
//!
//! LibriSpeech: any depth of folders holding `*.trans.txt` files, each line
//! `ID TEXT…`, the audio beside it as `ID.flac` (or any audio extension
//! `stt-cli transcribe` reads). Manifest: one JSON object per line with
//! `audio` (a path, relative to the manifest's folder unless absolute) and
//! `text`, optionally `id` (default: the audio path). Blank lines and
//! lines starting with `#` are skipped in both.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub id: String,
    pub audio: PathBuf,
    pub reference: String,
}

/// Audio extensions tried beside a LibriSpeech transcript, in order.
const EXTENSIONS: [&str; 8] = ["flac", "wav", "mp3", "ogg", "m4a", "opus", "webm", "mp4"];

pub fn load(path: &Path) -> Result<Vec<Utterance>> {
    let mut out = if path.is_dir() {
        librispeech(path)?
    } else {
        manifest(path)?
    };
    if out.is_empty() {
        bail!(
            "{}: no utterances (a LibriSpeech folder with *.trans.txt files, or a JSONL manifest)",
            path.display()
        );
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = out.windows(2).find(|w| w[0].id == w[1].id) {
        bail!("{}: utterance {} is listed twice", path.display(), w[0].id);
    }
    Ok(out)
}

fn transcripts(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let p = entry?.path();
        if p.is_dir() {
            transcripts(&p, found)?;
        } else if p.to_string_lossy().ends_with(".trans.txt") {
            found.push(p);
        }
    }
    Ok(())
}

fn librispeech(root: &Path) -> Result<Vec<Utterance>> {
    let mut files = vec![];
    transcripts(root, &mut files)?;
    let mut out = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, reference) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let audio = EXTENSIONS
                .iter()
                .map(|e| dir.join(format!("{id}.{e}")))
                .find(|p| p.is_file())
                .with_context(|| {
                    format!(
                        "{}:{}: no audio file {id}.flac (or .wav, .mp3, …) beside it",
                        file.display(),
                        n + 1
                    )
                })?;
            out.push(Utterance {
                id: id.to_string(),
                audio,
                reference: reference.trim().to_string(),
            });
        }
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLine {
    audio: PathBuf,
    text: String,
    id: Option<String>,
}

fn manifest(path: &Path) -> Result<Vec<Utterance>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry: ManifestLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: expected {{\"audio\": PATH, \"text\": REFERENCE}}",
                path.display(),
                n + 1
            )
        })?;
        let audio = dir.join(&entry.audio);
        out.push(Utterance {
            id: entry
                .id
                .unwrap_or_else(|| entry.audio.to_string_lossy().into_owned()),
            audio,
            reference: entry.text,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stt-eval-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn librispeech_layout() {
        let root = scratch("libri");
        let ch = root.join("test-clean/61/70968");
        std::fs::create_dir_all(&ch).unwrap();
        std::fs::write(
            ch.join("61-70968.trans.txt"),
            "61-70968-0001 GIVE NOT SO EARNEST A MIND\n\n61-70968-0000 HE BEGAN A CONFUSED COMPLAINT\n",
        )
        .unwrap();
        std::fs::write(ch.join("61-70968-0000.flac"), b"").unwrap();
        std::fs::write(ch.join("61-70968-0001.wav"), b"").unwrap();
        let u = load(&root).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].id, "61-70968-0000");
        assert_eq!(u[0].reference, "HE BEGAN A CONFUSED COMPLAINT");
        assert_eq!(u[0].audio, ch.join("61-70968-0000.flac"));
        assert_eq!(u[1].audio, ch.join("61-70968-0001.wav"));

        std::fs::write(ch.join("61-70968.trans.txt"), "61-70968-0002 NO AUDIO\n").unwrap();
        let e = load(&root).unwrap_err().to_string();
        assert!(e.contains("61-70968-0002.flac"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn jsonl_manifest() {
        let root = scratch("manifest");
        let m = root.join("set.jsonl");
        std::fs::write(
            &m,
            "{\"audio\": \"a.mp3\", \"text\": \"Bonjour.\"}\n# comment\n{\"audio\": \"/abs/b.wav\", \"text\": \"\", \"id\": \"b\"}\n",
        )
        .unwrap();
        let u = load(&m).unwrap();
        assert_eq!(u[0].id, "a.mp3");
        assert_eq!(u[0].audio, root.join("a.mp3"));
        assert_eq!(u[1].id, "b");
        assert_eq!(u[1].audio, PathBuf::from("/abs/b.wav"));

        std::fs::write(&m, "{\"audio\": \"a.mp3\"}\n").unwrap();
        let e = format!("{:#}", load(&m).unwrap_err());
        assert!(e.contains("set.jsonl:1"), "{e}");
        std::fs::write(&m, "").unwrap();
        assert!(load(&m).unwrap_err().to_string().contains("no utterances"));
        std::fs::write(
            &m,
            "{\"audio\": \"a.mp3\", \"text\": \"x\"}\n{\"audio\": \"a.mp3\", \"text\": \"y\"}\n",
        )
        .unwrap();
        assert!(load(&m).unwrap_err().to_string().contains("twice"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
