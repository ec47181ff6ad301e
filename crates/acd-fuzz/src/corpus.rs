//! The seed corpus in `fuzz/corpus/<target>/` (one input per file, names free-form).

use std::path::{Path, PathBuf};

/// `fuzz/corpus/` of this workspace.
#[must_use]
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// Every file of `fuzz/corpus/<target>/`, sorted by name so runs are reproducible.
/// An unreadable directory is an error: a smoke test over no corpus proves nothing.
pub fn load(target: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = root().join(target);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_file() {
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            files.push((name, std::fs::read(&path)?));
        }
    }
    files.sort();
    Ok(files)
}
