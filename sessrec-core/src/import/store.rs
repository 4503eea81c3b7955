//! An importer's state file: one JSON document, replaced atomically (temporary file, fsync,
//! rename, fsync of the directory), and an exclusive lock held for a whole pass so that two
//! importers (the service and a manual run) never interleave.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest state file read.
pub const MAX_STATE_BYTES: u64 = 256 << 20;

/// An exclusive lock on `<state_file>.lock`, held while it lives.
pub struct PassLock {
    _lock: nix::fcntl::Flock<File>,
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Waits for and takes the pass lock of `state_file`.
pub fn lock(state_file: &Path) -> io::Result<PassLock> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent_dir(state_file))?;
    let mut name = state_file.as_os_str().to_owned();
    name.push(".lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(PathBuf::from(name))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io::Error::from(errno))?;
    Ok(PassLock { _lock: lock })
}

/// Reads a state that carries its format version: a missing file is the default state, a
/// damaged one or one of another version an error naming the file.
pub fn load_versioned<T: DeserializeOwned + Default>(
    path: &Path,
    expected: u32,
    version: impl FnOnce(&T) -> u32,
) -> io::Result<T> {
    let Some(state) = load::<T>(path)? else {
        return Ok(T::default());
    };
    let found = version(&state);
    if found != expected {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "state file {} has version {found}, expected {expected}",
                path.display()
            ),
        ));
    }
    Ok(state)
}

/// Reads the state; a missing file is `None`. A damaged one is an error naming the file: the
/// operator has to look.
pub fn load<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let mut text = Vec::new();
    file.take(MAX_STATE_BYTES).read_to_end(&mut text)?;
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("state file {} is damaged: {e}", path.display()),
        )
    })
}

/// Replaces the state file atomically.
pub fn save<T: Serialize>(path: &Path, state: &T) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "state_file has no name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    let written = file.write_all(&bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}
