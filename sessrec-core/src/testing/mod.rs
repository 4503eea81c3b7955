//! Helpers for the workspace's tests, examples and benchmarks (feature `test-util`; never in a
//! shipped build).
#![forbid(unsafe_code)]

mod record_file;
pub mod synth;
mod temp_dir;

pub use record_file::{chained_lines, record_file};
pub use temp_dir::TempDir;
