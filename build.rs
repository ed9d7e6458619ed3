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
        PathBuf::from("proto/mora/v1/models.proto"),
    ];
    let descriptor_path = out_dir.join("mora_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        // Well-known types from pbjson-types, which carry serde support for the
        // JSON mapping below (instead of prost's default, prost-types).
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_with_config(prost_config, &protos, &[PathBuf::from("proto"), well_known])?;

    // Serde implementations following the proto3 JSON mapping, used by event files.
    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".mora"])?;

    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
