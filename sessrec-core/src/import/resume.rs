//! A record file an importer appends to over several passes: where it stood at the last saved
//! state. A pass that crashed after writing lines but before saving its state is cut back to
//! that point, and the hash chain continues from there, so every line is written exactly once.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::id::SessionId;
use crate::record::FileContext;
use crate::tree::SessionDir;
use crate::writer::{RecordWriter, WriterOptions};

/// Where a record file stood after the last saved pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The record file, relative to `record_dir`.
    pub record: PathBuf,
    /// Its length then (anything past it is cut off on resume).
    pub file_len: u64,
    /// The record's line header, kept so that the chain continues unchanged.
    pub host: String,
    pub session: String,
    pub user: String,
    pub actor: String,
}

impl ResumePoint {
    /// The file's line header.
    pub fn context(&self) -> io::Result<FileContext> {
        let session = SessionId::parse(&self.session).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("state names a bad session id {:?}", self.session),
            )
        })?;
        let file = self
            .record
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(FileContext {
            host: self.host.clone(),
            session,
            file,
            user: self.user.clone(),
            actor: self.actor.clone(),
        })
    }

    /// The point of a file just written up to `file_len`.
    pub fn at(record: PathBuf, ctx: &FileContext, file_len: u64) -> ResumePoint {
        ResumePoint {
            record,
            file_len,
            host: ctx.host.clone(),
            session: ctx.session.to_string(),
            user: ctx.user.clone(),
            actor: ctx.actor.clone(),
        }
    }

    /// Reopens the file in `dir` (its session directory), cut back to this point.
    pub fn reopen(
        &self,
        dir: &SessionDir,
        record_dir: &Path,
        opts: WriterOptions,
    ) -> io::Result<RecordWriter> {
        let ctx = self.context()?;
        let file = dir.open_file(&ctx.file)?;
        let len = file.metadata()?.len();
        if len < self.file_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is shorter ({len} bytes) than when last written ({} bytes)",
                    record_dir.join(&self.record).display(),
                    self.file_len
                ),
            ));
        }
        // Lines written after the last saved state are written again by the caller.
        file.set_len(self.file_len)?;
        RecordWriter::resume(file, ctx, opts)
    }
}

/// fsyncs a record file and its directory, before the state that counts its lines is saved.
pub fn sync(path: &Path, dir: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    File::open(dir)?.sync_all()
}
