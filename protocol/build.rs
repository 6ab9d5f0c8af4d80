//! Compiles the `.proto` files under `proto/` into Rust with `protox` (a
//! protobuf compiler written in Rust, so no system `protoc` is needed) and
//! `tonic-prost-build`, and writes the encoded descriptor set next to the
//! generated code.

use std::error::Error;
use std::path::PathBuf;

use prost::Message as _;

/// Every file we generate code for, relative to `proto/`.
const PROTOS: &[&str] = &[
    "apache/rocketmq/v2/definition.proto",
    "apache/rocketmq/v2/service.proto",
    "apache/rocketmq/v2/admin.proto",
    "tern/admin/v1/admin.proto",
    "tern/nameserver/v1/nameserver.proto",
    "tern/replication/v1/replication.proto",
];

/// Name of the encoded `FileDescriptorSet` in `OUT_DIR`.
const DESCRIPTOR_FILE: &str = "tern_protocol_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    println!("cargo:rerun-if-changed=build.rs");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }

    let paths: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    // Includes the imported well-known types and the source comments (which
    // become doc comments on the generated items).
    let fds = protox::compile(&paths, [&root])?;

    // The copy kept for gRPC reflection: the same descriptors without the
    // source locations and comments, which only make it larger.
    let mut lean = fds.clone();
    for file in &mut lean.file {
        file.source_code_info = None;
    }
    std::fs::write(out_dir.join(DESCRIPTOR_FILE), lean.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;

    Ok(())
}
