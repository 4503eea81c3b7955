//! Importing a sudo session while it runs (`--follow`): the record file is written in place
//! and appended to on each pass, from the first timing record not yet written. The state keeps
//! how many records and bytes are in the file, so a pass that crashed is cut back to the last
//! saved point and the hash chain continues from there.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::path::PathBuf;

use sessrec_core::import::resume::{self, ResumePoint};
use sessrec_core::tree::SessionDir;
use sessrec_core::writer::RecordWriter;

use crate::correlate::Attribution;
use crate::import::{
    file_context, record_file_name, replay_into, target_dir, write_start, Feeder, ImportError,
    ImportOptions, Imported,
};
use crate::iolog::{IologSession, ReplayMode};
use crate::state::LiveEntry;

pub enum LiveStep {
    /// More of a running session was written; keep this in the state.
    Appended(LiveEntry),
    /// The session ended (or settled) and its record is complete.
    Finished(Imported),
}

/// Writes what is new in `session`. `finish` ends the record with `sudo.end` (sudo finished,
/// or its log settled); otherwise only whole records that are fully on disk are written.
pub fn live_step(
    session: &IologSession,
    attribution: &Attribution<'_>,
    opts: &ImportOptions,
    previous: Option<&LiveEntry>,
    finish: bool,
) -> Result<LiveStep, ImportError> {
    let name = record_file_name(&session.dir, session.meta.start);
    let record = match previous {
        Some(p) => p.at.record.clone(),
        None => target_dir(attribution, session.meta.start, &name).join(&name),
    };
    let relative_dir = record
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| ImportError::Write(io::Error::other("record path has no directory")))?;
    let final_path = opts.record_dir.join(&record);
    if previous.is_none() && fs::symlink_metadata(&final_path).is_ok() {
        // Written by an earlier run whose state was lost.
        return Ok(LiveStep::Finished(Imported {
            record,
            written: false,
            outcome: Default::default(),
            anchor: None,
        }));
    }
    let dir = SessionDir::create_relative(&opts.record_dir, &relative_dir, opts.read_gid)
        .map_err(ImportError::Write)?;
    let (writer, ctx, skip) = match previous {
        None => {
            let ctx =
                file_context(&name, session, attribution, opts).map_err(ImportError::Write)?;
            let file = dir.create_file(&name).map_err(ImportError::Write)?;
            let mut w =
                RecordWriter::new(file, ctx.clone(), opts.writer).map_err(ImportError::Write)?;
            write_start(&mut w, session, attribution).map_err(ImportError::Write)?;
            (w, ctx, 0)
        }
        Some(p) => {
            let w =
                p.at.reopen(&dir, &opts.record_dir, opts.writer)
                    .map_err(ImportError::Write)?;
            let ctx = p.at.context().map_err(ImportError::Write)?;
            (w, ctx, p.records_done)
        }
    };
    let mut feeder = Feeder::new(writer, session.meta.start, opts);
    let mode = ReplayMode {
        skip,
        live: !finish,
        ..feeder.replay_mode()
    };
    let outcome = replay_into(session, &mut feeder, mode)?;
    let sync = || resume::sync(&final_path, dir.path());
    if finish {
        let anchor = feeder
            .end(&outcome, session.complete)
            .map_err(ImportError::Write)?;
        sync().map_err(ImportError::Write)?;
        return Ok(LiveStep::Finished(Imported {
            record,
            written: true,
            outcome,
            anchor: Some(anchor),
        }));
    }
    let file_len = feeder.pause().map_err(ImportError::Write)?;
    sync().map_err(ImportError::Write)?;
    Ok(LiveStep::Appended(LiveEntry {
        iolog: session.dir.clone(),
        records_done: outcome.records,
        at: ResumePoint::at(record, &ctx, file_len),
    }))
}
