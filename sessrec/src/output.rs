//! Where a subcommand writes: buffered standard output or an `--output` file.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::PathBuf;

use crate::context::Failure;

/// Standard output, buffered, for commands that print a lot.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Where an export goes: standard output, or a file that appears only when it is whole.
pub enum Output {
    Stdout(io::BufWriter<io::StdoutLock<'static>>),
    /// Written to a temporary file beside `dest` (mode 0600: exports hold record data) and
    /// renamed over it by [`Output::finish`]; dropped unfinished, the temporary file goes.
    File {
        writer: Option<io::BufWriter<std::fs::File>>,
        temp: PathBuf,
        dest: PathBuf,
    },
}

/// Opens `--output FILE` (see [`Output::File`]) or standard output.
pub fn output(path: Option<&str>) -> Result<Output, Failure> {
    match path {
        None | Some("-") => Ok(Output::Stdout(stdout())),
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            let dest = PathBuf::from(p);
            let name = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Failure::error(format!("cannot write {p}: not a file name")))?;
            let temp = dest.with_file_name(format!(".{name}.sessrec-{}.tmp", std::process::id()));
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
                .map_err(|e| Failure::error(format!("cannot write {p}: {e}")))?;
            Ok(Output::File {
                writer: Some(io::BufWriter::new(f)),
                temp,
                dest,
            })
        }
    }
}

impl Output {
    /// Flushes, and puts a file in place (synced first, so a crash leaves the old or the new).
    pub fn finish(mut self) -> io::Result<()> {
        match &mut self {
            Output::Stdout(w) => w.flush(),
            Output::File { writer, temp, dest } => {
                let Some(w) = writer.take() else {
                    return Ok(());
                };
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                std::fs::rename(&*temp, &*dest)
            }
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File {
            writer: Some(_),
            temp,
            ..
        } = self
        {
            let _ = std::fs::remove_file(&*temp);
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File {
                writer: Some(w), ..
            } => w.write(buf),
            Output::File { writer: None, .. } => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File {
                writer: Some(w), ..
            } => w.flush(),
            Output::File { writer: None, .. } => Ok(()),
        }
    }
}
