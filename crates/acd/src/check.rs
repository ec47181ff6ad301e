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
    for (table, name, relative) in acd_config::prompt_keys(&loaded.config) {
        let problem = match loaded.read_file(&relative) {
            Ok(bytes) => match acd_media::load_wav(&bytes) {
                Ok(_) => continue,
                Err(e) => format!("{relative}: {e}"),
            },
            Err(e) => e,
        };
        errors.push(ConfigError {
            file: file.clone(),
            line: prompt_line(&text, &table.join("."), &name),
            key: format!("{}.{name}", table.join(".")),
            message: problem,
        });
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Line (1-based) of `name = ...` in the `[table]` table (`prompts`,
/// `prompt_sets.en`), if written that way (an inline table or dotted keys
/// are simply not located).
fn prompt_line(text: &str, table: &str, name: &str) -> Option<usize> {
    let mut in_prompts = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_prompts = line.trim_start_matches('[').trim_end_matches(']').trim() == table;
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
        let text = "[sip]\nwelcome = 1\n\n[prompts]\nwelcome = \"a.wav\"\n\"moh\" = \"b.wav\"\n[media]\nx = 1\n[prompt_sets.ru]\nwelcome = \"c.wav\"\n";
        assert_eq!(prompt_line(text, "prompts", "welcome"), Some(5));
        assert_eq!(prompt_line(text, "prompts", "moh"), Some(6));
        assert_eq!(prompt_line(text, "prompts", "x"), None);
        assert_eq!(prompt_line(text, "prompt_sets.ru", "welcome"), Some(10));
    }
}
