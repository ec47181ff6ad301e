//! Paths, the per-test log directory, and the failure report.

use std::path::{Path, PathBuf};

use crate::ports::PortBlock;

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace
/// root if relative) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        None => workspace_root().join("target"),
    }
}

fn binary(name: &str) -> PathBuf {
    let p = target_dir().join("debug").join(name);
    if !p.is_file() {
        panic!(
            "binary `{}` not found at {}: run `cargo build --workspace --bins` first \
             (tests/run.sh does)",
            name,
            p.display()
        );
    }
    p
}

/// `target/debug/acd`; panics with instructions when it was not built.
pub fn acd_bin() -> PathBuf {
    binary("acd")
}

/// `target/debug/acdctl`; panics with instructions when it was not built.
pub fn acdctl_bin() -> PathBuf {
    binary("acdctl")
}

/// `tests/config/e2e.toml`.
pub fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/e2e.toml")
}

/// `tests/sipp/`.
pub fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp")
}

/// One test's environment: its name, port block and log directory. On a
/// panic (a failed assertion) it prints the tail of every log in the
/// directory when dropped, so declare it FIRST in a test (dropped last).
pub struct TestEnv {
    pub name: String,
    pub ports: PortBlock,
    pub log_dir: PathBuf,
}

impl TestEnv {
    pub fn new(name: &str, block: u16) -> Self {
        let log_dir = target_dir().join("e2e-logs").join(name);
        let _ = std::fs::remove_dir_all(&log_dir);
        std::fs::create_dir_all(&log_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_dir.display()));
        eprintln!("[e2e] {name}: logs in {}", log_dir.display());
        TestEnv {
            name: name.to_string(),
            ports: PortBlock::for_test(block),
            log_dir,
        }
    }

    pub fn log_path(&self, file: &str) -> PathBuf {
        self.log_dir.join(file)
    }

    /// Writes `tests/config/e2e.toml` plus `extra` TOML (tables such as
    /// `[sip.limits]`) into the log directory, with its relative file paths
    /// made absolute; returns the new file's path.
    pub fn write_config(&self, extra: &str) -> PathBuf {
        let base = config_path();
        let text = std::fs::read_to_string(&base)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", base.display()));
        let config_dir = base.parent().unwrap_or(Path::new("."));
        let text = text.replace("\"../../", &format!("\"{}/../../", config_dir.display()));
        let path = self.log_path("acd.toml");
        std::fs::write(&path, format!("{text}\n{extra}\n"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// tests/config/e2e.toml changed by `edit`, written to the log directory
    /// (prompt paths made absolute so they still resolve there).
    pub fn config_variant(&self, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(config_path())
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", config_path().display()));
        let prompts = workspace_root().join("config").join("prompts");
        let text = text.replace(
            "\"../../config/prompts/",
            &format!("\"{}/", prompts.display()),
        );
        let edited = edit(text.clone());
        assert_ne!(
            edited, text,
            "the config edit changed nothing: does e2e.toml still read as it expects?"
        );
        let path = self.log_path("config.toml");
        std::fs::write(&path, edited)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// `127.0.0.1:<sip>` of the edge.
    pub fn sip_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.sip())
    }

    /// Prints the last `lines` lines of every file in the log directory.
    pub fn dump_logs(&self, lines: usize) {
        let mut files: Vec<_> = match std::fs::read_dir(&self.log_dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect(),
            Err(_) => return,
        };
        files.sort();
        for f in files {
            eprintln!("\n===== {} (last {lines} lines) =====", f.display());
            eprintln!("{}", tail(&f, lines));
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n[e2e] {} FAILED; log tails follow (full logs in {})",
                self.name,
                self.log_dir.display()
            );
            self.dump_logs(40);
        }
    }
}

/// Last `lines` lines of a file (lossy UTF-8), or a note if unreadable.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read: {e}>"),
    }
}
