//! The recorder installed the way a package installs it: setuid root in a root-owned,
//! world-traversable directory on a suid-capable mount, with the PAM module beside it.
#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::statvfs::{statvfs, FsFlags};

use crate::leftovers::{register, Leftover, Registration};
use crate::products::{products, Product};
use crate::util::{keep_files, unique_name};

/// Parent of every install directory. Not under /root (not traversable by users) nor /tmp
/// (often `nosuid`).
pub const INSTALL_PARENT: &str = "/usr/local/lib";

/// A private installation, removed on drop: `/usr/local/lib/srt-<rand>/` (root 0755) holding
/// `sessrec-shell` (root 4755) and, when requested, `pam_sessrec.so` (root 0644).
#[derive(Debug)]
pub struct Installed {
    dir: PathBuf,
    shell: PathBuf,
    pam_module: Option<PathBuf>,
    registration: Registration,
}

impl Installed {
    /// Installs the recorder only.
    pub fn recorder() -> Installed {
        Installed::install(false)
    }

    /// Installs the recorder and the PAM module.
    pub fn recorder_and_pam() -> Installed {
        Installed::install(true)
    }

    fn install(with_pam: bool) -> Installed {
        let shell_src = products().path(Product::Shell);
        let pam_src = with_pam.then(|| products().path(Product::PamModule));
        let parent = Path::new(INSTALL_PARENT);
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        let flags = statvfs(parent)
            .unwrap_or_else(|e| panic!("statvfs {}: {e}", parent.display()))
            .flags();
        assert!(
            !flags.contains(FsFlags::ST_NOSUID),
            "{} is on a nosuid mount: the setuid recorder cannot be tested there",
            parent.display()
        );
        let dir = parent.join(unique_name("inst"));
        let registration = register(Leftover::Path(dir.clone()));
        crate::util::create_dir(&dir, 0o755);
        let mut installed = Installed {
            shell: dir.join(Product::Shell.installed_name()),
            dir,
            pam_module: None,
            registration,
        };
        copy_with_mode(&shell_src, &installed.shell, 0o4755);
        if let Some(src) = pam_src {
            let dest = installed.dir.join(Product::PamModule.installed_name());
            copy_with_mode(&src, &dest, 0o644);
            installed.pam_module = Some(dest);
        }
        installed
    }

    /// The install directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The installed setuid recorder: use it as a login shell or ForceCommand.
    pub fn shell(&self) -> &Path {
        &self.shell
    }

    /// The installed PAM module (absolute path for a PAM stack line). Panics if this
    /// installation was made with [`Installed::recorder`].
    pub fn pam_module(&self) -> &Path {
        self.pam_module
            .as_deref()
            .expect("PAM module not installed: use Installed::recorder_and_pam()")
    }
}

fn copy_with_mode(src: &Path, dest: &Path, mode: u32) {
    fs::copy(src, dest)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", src.display(), dest.display()));
    // We run as root, so the copy is root-owned; set the mode after the copy so the setuid bit
    // is not cleared by a later write.
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", dest.display()));
}

impl Drop for Installed {
    fn drop(&mut self) {
        if keep_files() {
            eprintln!("keeping {}", self.dir.display());
            self.registration.release();
            return;
        }
        match fs::remove_dir_all(&self.dir) {
            Err(e) => eprintln!("warning: cannot remove {}: {e}", self.dir.display()),
            Ok(()) => self.registration.release(),
        }
    }
}
