//! `acd check-config FILE`: everything a role would refuse at start-up,
//! found before the config is applied — shape, cross references, and every
//! prompt file decoded as the edge will decode it.

use std::path::Path;

use acd_config::{ConfigError, ConfigErrors, Loaded};

/// The config and its prompts, or every problem found.
pub fn check(path: &Path) -> Result<Loaded, ConfigErrors> {
    let loaded = Loaded::from_file(path)?;
    let file = path.display().to_string();
    // Only read again to locate prompt lines; the file was just read fine.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut errors = Vec::new();
    for (name, relative) in &loaded.config.prompts {
        let problem = match loaded.read_file(relative) {
            Ok(bytes) => match acd_media::load_wav(&bytes) {
                Ok(_) => continue,
                Err(e) => format!("{relative}: {e}"),
            },
            Err(e) => e,
        };
        errors.push(ConfigError {
            file: file.clone(),
            line: prompt_line(&text, name),
            key: format!("prompts.{name}"),
            message: problem,
        });
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Line (1-based) of `name = ...` in the `[prompts]` table, if written that
/// way (an inline table or dotted keys are simply not located).
fn prompt_line(text: &str, name: &str) -> Option<usize> {
    let mut in_prompts = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_prompts = line.trim_start_matches('[').trim_end_matches(']').trim() == "prompts";
            continue;
        }
        if !in_prompts {
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        if key.trim().trim_matches(|c| c == '"' || c == '\'') == name {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prompt_line;

    #[test]
    fn locates_prompt_lines() {
        let text = "[sip]\nwelcome = 1\n\n[prompts]\nwelcome = \"a.wav\"\n\"moh\" = \"b.wav\"\n[media]\nx = 1\n";
        assert_eq!(prompt_line(text, "welcome"), Some(5));
        assert_eq!(prompt_line(text, "moh"), Some(6));
        assert_eq!(prompt_line(text, "x"), None);
    }
}
