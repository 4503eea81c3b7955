//! A new record file and its writer, as the recorder opens one (append only, created new, mode
//! 0600), and its lines read back once its chain is checked, for tests of the writer and the
//! readers.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::id::SessionId;
use crate::reader::{self, verify_file, Line};
use crate::record::FileContext;
use crate::writer::{RecordWriter, WriterOptions};

/// Creates `dir/name` and a writer on it for a new session on host `bastion` of user
/// `srt-user`, by `actor`.
pub fn record_file(
    dir: &Path,
    name: &str,
    opts: WriterOptions,
    actor: &str,
) -> (PathBuf, RecordWriter) {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let ctx = FileContext {
        host: "bastion".into(),
        session: SessionId::new().expect("a session id"),
        file: name.into(),
        user: "srt-user".into(),
        actor: actor.into(),
    };
    let writer = RecordWriter::new(file, ctx, opts).expect("a record writer");
    (path, writer)
}

/// Every line of the record file at `path`, after checking its hash chain.
pub fn chained_lines(path: &Path) -> Vec<Line> {
    let report = verify_file(path).expect("verify the record file");
    assert!(report.ok, "chain of {}: {report:?}", path.display());
    reader::read_file(path)
        .expect("read the record file")
        .into_iter()
        .map(|l| l.expect("a readable line"))
        .collect()
}
