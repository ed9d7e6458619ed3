//! Generates the gRPC code for `proto/mora/v1` with a `protoc` that ships inside
//! a crate, so that building needs no system protobuf compiler.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut prost_config = prost_build::Config::new();
    prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;
    let protos = [
        PathBuf::from("proto/mora/v1/common.proto"),
        PathBuf::from("proto/mora/v1/events.proto"),
        PathBuf::from("proto/mora/v1/scoring.proto"),
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("mora_descriptor.bin"))
        .compile_with_config(prost_config, &protos, &[PathBuf::from("proto"), well_known])?;

    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
