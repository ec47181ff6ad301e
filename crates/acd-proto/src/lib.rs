//! The wire contracts of acd: package `acd.v1`, one service per file under
//! `proto/`. Shells translate between these types and the cores' own types;
//! cores never import this crate.

pub mod client;
pub mod ivr_wire;
pub mod leader;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("acd.v1");
}

/// Encoded `FileDescriptorSet` of every acd service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/acd_descriptor.bin"));
