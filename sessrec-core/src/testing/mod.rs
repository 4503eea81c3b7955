//! Helpers for the workspace's tests, examples and benchmarks (feature `test-util`; never in a
//! shipped build).
#![forbid(unsafe_code)]

pub mod synth;
mod temp_dir;

pub use temp_dir::TempDir;
