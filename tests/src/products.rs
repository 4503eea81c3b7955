//! Locating (and if needed building) the workspace's programs and the PAM module.
//!
//! Cargo gives an integration test the paths of its *own* package's binaries only
//! (`CARGO_BIN_EXE_*`), and this crate depends on none of the programs it tests. So the harness
//! derives the target directory from the test executable itself
//! (`<target>/<profile>/deps/<test>-<hash>`, or `<target>/<triple>/<profile>/deps/...`) and,
//! once per test process (guarded by a file lock in the target directory, so concurrent test
//! binaries build once), runs `cargo build -p <package>` for each product with the same target
//! directory and profile. Cargo's own freshness check makes this a no-op when nothing changed,
//! and it guarantees the tests never run a stale recorder. Each package is built separately so
//! a package that does not build fails only the tests that use it.
//!
//! Environment:
//! - `SESSREC_E2E_PRODUCTS=DIR`: use the programs in DIR as they are (e.g. an installed
//!   package's files copied together, or a release build); nothing is built.
//! - `SESSREC_E2E_NO_BUILD=1`: use the target directory's files without running cargo.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

/// One build product of the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// The setuid recorder, `sessrec-shell`.
    Shell,
    /// The operator's CLI, `sessrec`.
    Cli,
    /// The sudo I/O log importer, `sudo-iolog-import`.
    SudoImport,
    /// The kernel audit importer, `sessrec-audit-import`.
    AuditImport,
    /// The PAM module; the file is `libpam_sessrec.so` in the target dir and is installed as
    /// `pam_sessrec.so`.
    PamModule,
    /// The web review console, `sessrec-web`.
    Web,
}

impl Product {
    pub const ALL: [Product; 6] = [
        Product::Shell,
        Product::Cli,
        Product::SudoImport,
        Product::AuditImport,
        Product::PamModule,
        Product::Web,
    ];

    /// The Cargo package that builds it.
    pub fn package(self) -> &'static str {
        match self {
            Product::Shell => "sessrec-shell",
            Product::Cli => "sessrec",
            Product::SudoImport => "sudo-iolog-import",
            Product::AuditImport => "audit-import",
            Product::PamModule => "pam_sessrec",
            Product::Web => "sessrec-web",
        }
    }

    /// Its file name in the target directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Product::Shell => "sessrec-shell",
            Product::Cli => "sessrec",
            Product::SudoImport => "sudo-iolog-import",
            Product::AuditImport => "sessrec-audit-import",
            Product::PamModule => "libpam_sessrec.so",
            Product::Web => "sessrec-web",
        }
    }

    /// The name it is installed under.
    pub fn installed_name(self) -> &'static str {
        match self {
            Product::PamModule => "pam_sessrec.so",
            other => other.file_name(),
        }
    }
}

/// Where the products are, and which of them failed to build.
#[derive(Debug)]
pub struct Products {
    dir: PathBuf,
    build_errors: HashMap<&'static str, String>,
}

/// The products of this workspace, built (once per process) for the profile and target
/// directory this test was built in. See the module docs.
pub fn products() -> &'static Products {
    static PRODUCTS: OnceLock<Products> = OnceLock::new();
    PRODUCTS.get_or_init(locate_and_build)
}

impl Products {
    /// The directory holding the products.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `product`; panics with the build error (or a clear "missing" message) if it
    /// is not available.
    pub fn path(&self, product: Product) -> PathBuf {
        if let Some(err) = self.build_errors.get(product.package()) {
            panic!(
                "`cargo build -p {}` failed, so {} is not available:\n{err}",
                product.package(),
                product.file_name()
            );
        }
        let candidates = [
            self.dir.join(product.file_name()),
            self.dir.join(product.installed_name()),
        ];
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "{} not found in {} (is package {} built?)",
                    product.file_name(),
                    self.dir.display(),
                    product.package()
                )
            })
    }

    /// Whether `product` is available (built without error and present).
    pub fn available(&self, product: Product) -> bool {
        !self.build_errors.contains_key(product.package())
            && (self.dir.join(product.file_name()).is_file()
                || self.dir.join(product.installed_name()).is_file())
    }

    pub fn sessrec_shell(&self) -> PathBuf {
        self.path(Product::Shell)
    }

    pub fn sessrec_cli(&self) -> PathBuf {
        self.path(Product::Cli)
    }

    pub fn sudo_iolog_import(&self) -> PathBuf {
        self.path(Product::SudoImport)
    }

    pub fn audit_import(&self) -> PathBuf {
        self.path(Product::AuditImport)
    }

    pub fn sessrec_web(&self) -> PathBuf {
        self.path(Product::Web)
    }

    pub fn pam_module(&self) -> PathBuf {
        self.path(Product::PamModule)
    }
}

/// The target layout this test executable was built in.
struct BuildLayout {
    target_dir: PathBuf,
    triple: Option<String>,
    profile: String,
    profile_dir: PathBuf,
}

fn build_layout() -> BuildLayout {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a directory");
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    };
    let profile = profile_dir
        .file_name()
        .expect("profile dir name")
        .to_string_lossy()
        .into_owned();
    let above = profile_dir.parent().expect("profile dir has a parent");
    // `<target>/CACHEDIR.TAG` marks the target root; otherwise we are under `<target>/<triple>`.
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").exists() {
        (above.to_path_buf(), None)
    } else {
        let triple = above.file_name().map(|n| n.to_string_lossy().into_owned());
        (above.parent().expect("target dir").to_path_buf(), triple)
    };
    BuildLayout {
        target_dir,
        triple,
        profile,
        profile_dir,
    }
}

fn locate_and_build() -> Products {
    if let Some(dir) = std::env::var_os("SESSREC_E2E_PRODUCTS") {
        return Products {
            dir: PathBuf::from(dir),
            build_errors: HashMap::new(),
        };
    }
    let layout = build_layout();
    let mut build_errors = HashMap::new();
    if std::env::var_os("SESSREC_E2E_NO_BUILD").is_some_and(|v| v == "1") {
        return Products {
            dir: layout.profile_dir,
            build_errors,
        };
    }
    let lock_path = layout.target_dir.join("sessrec-e2e-build.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", lock_path.display()));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("Cargo.toml");
    let packages: Vec<&'static str> = Product::ALL.iter().map(|p| p.package()).collect();
    // One build for all (the same feature resolution as a workspace build, so nothing is
    // rebuilt after `cargo build --workspace`); if that fails, one per package to tell which.
    // (Sources may change while this runs; what counts is each package's own last build.)
    if cargo_build(&manifest, &layout, &packages).is_err() {
        for package in &packages {
            if let Err(err) = cargo_build(&manifest, &layout, &[package]) {
                build_errors.insert(*package, err);
            }
        }
    }
    Products {
        dir: layout.profile_dir,
        build_errors,
    }
}

/// `cargo build -p <each package>` into the layout's target dir and profile; the tail of
/// cargo's error output on failure.
fn cargo_build(manifest: &Path, layout: &BuildLayout, packages: &[&str]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", &layout.target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    match layout.profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(triple) = &layout.triple {
        cmd.args(["--target", triple]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", crate::util::describe(&cmd)));
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = &lines[lines.len().saturating_sub(60)..];
    Err(tail.join("\n"))
}

/// Runs the built `sessrec` CLI on the record tree `dir` (never on a configured one).
pub fn run_sessrec(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(products().sessrec_cli())
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("SESSREC_CONFIG")
        .output()
        .expect("run sessrec")
}

/// `sessrec export ID --format pcap -o OUT` (which must succeed), then `tcpdump -n -A -r OUT`
/// (which must read it): the written file's bytes and tcpdump's text.
pub fn export_pcap_through_tcpdump(
    dir: &std::path::Path,
    id: &str,
    out: &std::path::Path,
) -> (Vec<u8>, String) {
    let export = run_sessrec(
        dir,
        &[
            "export",
            id,
            "--format",
            "pcap",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(export.status.success(), "{export:?}");
    let dump = std::process::Command::new("tcpdump")
        .args(["-n", "-A", "-r"])
        .arg(out)
        .output()
        .expect("tcpdump");
    assert!(dump.status.success(), "tcpdump: {dump:?}");
    let written = std::fs::read(out).unwrap();
    (written, String::from_utf8_lossy(&dump.stdout).into_owned())
}
