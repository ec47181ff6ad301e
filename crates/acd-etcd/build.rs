//! Compiles the vendored etcd protos (see NOTICE) with the pure-Rust `protox`
//! compiler, so a fresh machine needs no system `protoc`. Clients only.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    let files = [
        "etcd/api/etcdserverpb/rpc.proto",
        "etcd/server/etcdserver/api/v3election/v3electionpb/v3election.proto",
    ]
    .map(|f| root.join(f));
    println!("cargo:rerun-if-changed={}", root.display());
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
