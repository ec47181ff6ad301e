//! `[ivr] prompt_dirs = { en = "prompts/en" }`: a language's prompt set as a
//! directory, every `*.wav` in it a prompt named by its stem, so a set of a
//! hundred say-fragments needs no hundred lines. Prompts listed in
//! `[prompt_sets.<lang>]` win over a file of the same name.

use crate::flows::FlowDir;
use crate::locate::{self, Seg};
use crate::{defaults, Config, ConfigError};

/// Prompt files read from one directory, at most: a bound on a load loop.
const MAX_PROMPT_FILES: usize = 2000;

/// Adds every prompt of every `prompt_dirs` entry to `c.prompt_sets`.
pub(crate) fn load(c: &mut Config, text: &str, name: &str, dir: FlowDir) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (lang, relative) in c.ivr.prompt_dirs.clone() {
        match list(&relative, dir) {
            Ok(files) if files.is_empty() => {
                let at = [Seg::Key("ivr"), Seg::Key("prompt_dirs"), Seg::Key(&lang)];
                let msg = format!("no .wav file in `{relative}`");
                errors.push(locate::error(text, name, &at, msg));
            }
            Ok(files) => {
                let set = c.prompt_sets.entry(lang).or_default();
                for (prompt, file) in files {
                    set.entry(prompt).or_insert(file);
                }
            }
            Err(e) => {
                let at = [Seg::Key("ivr"), Seg::Key("prompt_dirs"), Seg::Key(&lang)];
                errors.push(locate::error(text, name, &at, e));
            }
        }
    }
    errors
}

/// `(prompt name, file relative to the config)` of each `*.wav` in `relative`.
fn list(relative: &str, dir: FlowDir) -> Result<Vec<(String, String)>, String> {
    let relative = relative.trim_end_matches('/');
    let names: Vec<String> = match dir {
        FlowDir::None => return Err("prompt_dirs needs the config to be a file".into()),
        FlowDir::Embedded => defaults::files_under(&format!("{relative}/"))
            .map(|(path, _)| path[relative.len() + 1..].to_string())
            .collect(),
        FlowDir::Path(base) => {
            let full = base.join(relative);
            std::fs::read_dir(&full)
                .map_err(|e| format!("cannot read {}: {e}", full.display()))?
                .flatten()
                .take(MAX_PROMPT_FILES)
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        }
    };
    let mut out: Vec<(String, String)> = names
        .into_iter()
        .filter_map(|file| {
            let stem = file.strip_suffix(".wav")?;
            (!stem.is_empty() && !stem.starts_with('.'))
                .then(|| (stem.to_string(), format!("{relative}/{file}")))
        })
        .collect();
    out.sort();
    Ok(out)
}
