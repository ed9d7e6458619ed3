//! The `mora` command line: parses arguments and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    mora::allocator::pin_mmap_threshold();
    mora::cli::run(mora::cli::Cli::parse())
}
