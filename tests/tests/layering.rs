//! The cores stay free of I/O: no tokio, no tonic, nothing generated from
//! proto/ (the house style's layering rule, checked on the dependency tree).

use std::process::Command;

const CORES: [&str; 7] = [
    "acd-sip",
    "acd-b2bua",
    "acd-media",
    "acd-routing",
    "acd-replication",
    "acd-ivr",
    "acd-config",
];
const FORBIDDEN: [&str; 5] = ["tokio", "tonic", "acd-proto", "prost", "mio"];

#[test]
fn cores_depend_on_no_runtime_and_no_wire_types() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for core in CORES {
        let out = Command::new(&cargo)
            .args([
                "tree",
                "--offline",
                "-p",
                core,
                "-e",
                "normal",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo tree");
        assert!(
            out.status.success(),
            "cargo tree -p {core}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(
            tree.lines().any(|l| l.starts_with(core)),
            "cargo tree printed nothing for {core}: {tree}"
        );
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            assert!(
                !FORBIDDEN.contains(&name),
                "core {core} depends on {name}:\n{tree}"
            );
        }
    }
}
