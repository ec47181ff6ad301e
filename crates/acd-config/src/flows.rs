//! IVR flows: inline `[flows.X]` tables and one file per flow under
//! `[ivr] flows_dir` (the file stem is the flow id, its top level the flow
//! table), checked by the interpreter's own `acd_ivr::validate` with every
//! issue located at the node's key in the file it came from.

use std::path::{Path, PathBuf};

use acd_ivr::{Flow, Known};

use crate::locate::{self, Seg};
use crate::{defaults, Config, ConfigError};

/// Flow files read from one directory, at most: a bound on a load loop.
const MAX_FLOW_FILES: usize = 1000;
/// Largest flow file read.
const MAX_FLOW_FILE_BYTES: u64 = 1024 * 1024;

/// Where `[ivr] flows_dir` is resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FlowDir<'a> {
    /// Config text alone (`parse`): a flows_dir cannot be read.
    None,
    /// The directory of the config file.
    Path(&'a Path),
    /// The files embedded from `config/`.
    Embedded,
}

/// A flow that came from its own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowFile {
    /// As named in errors (the path, or `<embedded config/flows/x.toml>`).
    pub name: String,
    /// On disk (for reload on change); `None` when embedded.
    pub path: Option<PathBuf>,
    pub text: String,
}

/// Reads the flows of `[ivr] flows_dir` into `c.flows` (and
/// `c.flow_files`); errors are located in the file at fault.
pub(crate) fn load_dir(c: &mut Config, text: &str, name: &str, dir: FlowDir) -> Vec<ConfigError> {
    let Some(relative) = c.ivr.flows_dir.clone() else {
        return Vec::new();
    };
    let at_key = [Seg::Key("ivr"), Seg::Key("flows_dir")];
    let files = match list(&relative, dir) {
        Ok(files) => files,
        Err(e) => return vec![locate::error(text, name, &at_key, e)],
    };
    let mut errors = Vec::new();
    for (id, file) in files {
        if c.flows.contains_key(&id) {
            let path = [Seg::Key("flows"), Seg::Key(&id)];
            let msg = format!("flow `{id}` is defined here and in {}", file.name);
            errors.push(locate::error(text, name, &path, msg));
            continue;
        }
        match toml_edit::de::from_str::<Flow>(&file.text) {
            Ok(flow) => {
                c.flows.insert(id.clone(), flow);
                c.flow_files.insert(id, file);
            }
            Err(e) => errors.push(crate::de_error(&file.text, &file.name, &e)),
        }
    }
    errors
}

/// `*.toml` files of the flows directory as (flow id, file), sorted by id.
fn list(relative: &str, dir: FlowDir) -> Result<Vec<(String, FlowFile)>, String> {
    match dir {
        FlowDir::None => Err("flows_dir needs the config to be a file".into()),
        FlowDir::Embedded => {
            let prefix = format!("{}/", relative.trim_end_matches('/'));
            let mut out = Vec::new();
            for (path, bytes) in defaults::files_under(&prefix) {
                let Some(id) = flow_id(&path[prefix.len()..]) else {
                    continue;
                };
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("config/{path} is not UTF-8"))?;
                let name = format!("<embedded config/{path}>");
                out.push((
                    id,
                    FlowFile {
                        name,
                        path: None,
                        text,
                    },
                ));
            }
            Ok(out)
        }
        FlowDir::Path(base) => {
            let full = base.join(relative);
            let entries = std::fs::read_dir(&full)
                .map_err(|e| format!("cannot read {}: {e}", full.display()))?;
            let mut out = Vec::new();
            for entry in entries.flatten().take(MAX_FLOW_FILES) {
                let path = entry.path();
                let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(flow_id) else {
                    continue;
                };
                out.push((id, read_flow_file(path)?));
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        }
    }
}

fn read_flow_file(path: PathBuf) -> Result<FlowFile, String> {
    let name = path.display().to_string();
    let len = std::fs::metadata(&path)
        .map_err(|e| format!("cannot read {name}: {e}"))?
        .len();
    if len > MAX_FLOW_FILE_BYTES {
        return Err(format!("{name} is larger than {MAX_FLOW_FILE_BYTES} bytes"));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {name}: {e}"))?;
    Ok(FlowFile {
        name,
        path: Some(path),
        text,
    })
}

/// `sales.toml` → `sales`; other names are not flows.
fn flow_id(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(".toml")?;
    (!stem.is_empty() && !stem.starts_with('.') && !stem.contains('/')).then(|| stem.to_string())
}

/// What flows may refer to: queues, prompt names (flattened prompt sets
/// included) and languages (the default first).
pub fn known(c: &Config) -> Known {
    let mut languages: Vec<String> = c.ivr.default_language.iter().cloned().collect();
    for lang in c.prompt_sets.keys() {
        if !languages.contains(lang) {
            languages.push(lang.clone());
        }
    }
    Known {
        queues: c.queues.iter().map(|q| q.id.clone()).collect(),
        prompts: c.prompt_names().into_keys().collect(),
        languages,
    }
}

/// Every issue of every flow, as config errors in the right file.
pub(crate) fn check(c: &Config, text: &str, name: &str) -> Vec<ConfigError> {
    let known = known(c);
    let mut errors = Vec::new();
    for (id, flow) in &c.flows {
        for issue in acd_ivr::validate(flow, &known) {
            let (file_text, file_name, mut path) = match c.flow_files.get(id) {
                Some(f) => (f.text.as_str(), f.name.as_str(), Vec::new()),
                None => (text, name, vec![Seg::Key("flows"), Seg::Key(id)]),
            };
            if let Some(node) = &issue.node {
                path.extend([Seg::Key("nodes"), Seg::Key(node)]);
            }
            if let Some(key) = &issue.key {
                path.push(Seg::Key(key));
            }
            let message = match &issue.node {
                Some(node) => format!("flow `{id}`, node `{node}`: {}", issue.message),
                None => format!("flow `{id}`: {}", issue.message),
            };
            errors.push(locate::error(file_text, file_name, &path, message));
        }
    }
    errors
}
