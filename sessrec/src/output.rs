//! Where a subcommand writes: buffered standard output or an `--output` file.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::Path;

use crate::context::Failure;

/// Standard output, buffered, for commands that print a lot.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Opens `--output FILE` (created 0600: exports hold record data) or standard output.
pub fn output(path: Option<&str>) -> Result<Box<dyn Write>, Failure> {
    match path {
        None | Some("-") => Ok(Box::new(stdout())),
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(Path::new(p))
                .map_err(|e| Failure::error(format!("cannot write {p}: {e}")))?;
            Ok(Box::new(io::BufWriter::new(f)))
        }
    }
}
