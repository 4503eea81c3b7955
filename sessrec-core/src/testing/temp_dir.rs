//! A temporary directory removed on drop.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A fresh directory, removed with everything in it on drop; kept for a look by hand when
/// `SESSREC_KEEP_TEMP=1` (or the older `SRT_KEEP` / `SESSREC_E2E_KEEP=1`) is set.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `$TMPDIR/sessrec-<tag>-<12 random hex>`, mode 0700.
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag, 0o700)
    }

    /// `<parent>/sessrec-<tag>-<12 random hex>` with `mode`.
    pub fn new_in(parent: &Path, tag: &str, mode: u32) -> TempDir {
        let mut random = [0u8; 6];
        crate::sys::getrandom(&mut random).expect("getrandom");
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = parent.join(format!("sessrec-{tag}-{suffix}"));
        fs::DirBuilder::new()
            .mode(mode)
            .create(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        // The umask may have taken bits away.
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

fn keep_requested() -> bool {
    let set = |name| std::env::var_os(name).is_some_and(|v| v == "1");
    set("SESSREC_KEEP_TEMP") || set("SESSREC_E2E_KEEP") || std::env::var_os("SRT_KEEP").is_some()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if keep_requested() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                eprintln!("warning: cannot remove {}: {e}", self.path.display());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn is_fresh_private_and_gone_after_drop() {
        let a = TempDir::new("testing");
        let b = TempDir::new("testing");
        assert_ne!(a.path(), b.path());
        let meta = fs::metadata(a.path()).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        fs::write(a.join("f"), b"x").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        if !keep_requested() {
            assert!(!path.exists());
        }
    }
}
