//! Filesystems for the "cannot write the record" cases: a small tmpfs that fills up, and a
//! read-only bind mount (root ignores mode bits, so these are the honest ways).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::leftovers::{register, Leftover, Registration};
use crate::util::{output_with_timeout, run, TempDir};

/// A mount on a fresh directory `/var/lib/srt-mnt-<rand>/m`, unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    point: PathBuf,
    registration: Registration,
    _parent: TempDir,
}

impl Mount {
    /// A tmpfs of `size_kib` KiB, root 0700: writes fail with ENOSPC once it is full.
    pub fn tmpfs(size_kib: u64) -> Mount {
        let (parent, point) = fresh_point();
        let registration = register(Leftover::Mount(point.clone()));
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_kib}k,mode=0700,nosuid,nodev"))
            .arg("srt-tmpfs")
            .arg(&point));
        Mount {
            point,
            registration,
            _parent: parent,
        }
    }

    /// `source` (a directory) bind-mounted read-only: every write fails with EROFS, for root
    /// too.
    pub fn read_only_bind(source: &Path) -> Mount {
        let (parent, point) = fresh_point();
        let registration = register(Leftover::Mount(point.clone()));
        run(Command::new("mount").arg("--bind").arg(source).arg(&point));
        let mount = Mount {
            point,
            registration,
            _parent: parent,
        };
        run(Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&mount.point));
        mount
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.point
    }
}

fn fresh_point() -> (TempDir, PathBuf) {
    let parent = TempDir::new_in(Path::new("/var/lib"), "mnt", 0o755);
    let point = parent.join("m");
    crate::util::create_dir(&point, 0o700);
    (parent, point)
}

impl Drop for Mount {
    fn drop(&mut self) {
        let out = output_with_timeout(
            Command::new("umount").arg(&self.point),
            b"",
            Duration::from_secs(30),
        );
        if !out.status.success() {
            // Still busy (a recorder holding a file): detach it so the directory can go.
            let _ = output_with_timeout(
                Command::new("umount").arg("-l").arg(&self.point),
                b"",
                Duration::from_secs(30),
            );
        }
        self.registration.release();
    }
}
