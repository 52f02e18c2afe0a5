//! Where models come from: a local directory, or a Hugging Face repository
//! fetched once into the local Hugging Face cache (`--offline`: cache only).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use stt_model::config::Config;
use stt_model::model::{CONFIG_FILE, LM_FILES};

/// The upstream model, with its end-of-turn heads.
pub const DEFAULT_REPO: &str = "kyutai/stt-1b-en_fr-candle";

/// Resolves `--model` to a directory holding the model's files.
pub fn resolve(model: &str, lm_file: Option<&str>, offline: bool) -> Result<PathBuf> {
    let p = Path::new(model);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    if p.exists() || !model.contains('/') || model.starts_with('.') || model.starts_with('/') {
        bail!("--model {model}: not a model directory (expected config.json and weights), nor a Hugging Face repo id like {DEFAULT_REPO}");
    }
    fetch_repo(model, lm_file, offline)
}

fn fetch_repo(repo_id: &str, lm_file: Option<&str>, offline: bool) -> Result<PathBuf> {
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(repo_id.to_string());
    let api = if offline {
        None
    } else {
        Some(
            hf_hub::api::sync::ApiBuilder::from_env()
                .with_progress(true)
                .build()
                .context("setting up the Hugging Face client")?,
        )
    };
    // Ok(None): the file is not there (a 404, or not cached offline), so a
    // fallback may be tried. Any other failure (network, disk) is an error
    // the user must see, not a reason to try the next name.
    let find = |file: &str| -> Result<Option<PathBuf>> {
        if let Some(p) = cached.get(file) {
            return Ok(Some(p));
        }
        let Some(api) = &api else {
            return Ok(None);
        };
        match api.model(repo_id.to_string()).get(file) {
            Ok(p) => Ok(Some(p)),
            Err(hf_hub::api::sync::ApiError::RequestError(e))
                if matches!(*e, ureq::Error::Status(404, _)) =>
            {
                Ok(None)
            }
            Err(e) => Err(e).with_context(|| format!("downloading {repo_id}/{file}")),
        }
    };
    let get = |file: &str| -> Result<PathBuf> {
        match find(file)? {
            Some(p) => Ok(p),
            None if offline => bail!(
                "{repo_id}/{file} is not in the local Hugging Face cache ({}), and --offline \
                 forbids downloading it",
                cache.path().display()
            ),
            None => bail!("{repo_id} has no file {file}"),
        }
    };
    let config_path = get(CONFIG_FILE)?;
    let config = Config::from_json(&std::fs::read(&config_path)?)?;
    get(&config.mimi_name)?;
    let json_tok = Path::new(&config.tokenizer_name).with_extension("json");
    if find(&config.tokenizer_name)?.is_none() {
        get(&json_tok.to_string_lossy())?;
    }
    match lm_file {
        Some(f) => {
            get(f)?;
        }
        None => {
            let mut found = false;
            for f in LM_FILES {
                if find(f)?.is_some() {
                    found = true;
                    break;
                }
            }
            if !found {
                bail!("{repo_id} has none of the LM files {}", LM_FILES.join(", "));
            }
        }
    }
    let dir = config_path
        .parent()
        .context("cache path has no parent")?
        .to_path_buf();
    Ok(dir)
}
