//! pam-bench-driver SERVICE USER RUNS [SSH_AUTH_INFO_0-file]
//! pam-bench-driver --floor DIR RUNS [dirsync|prealloc]
//!
//! `--floor` times the disk alone, on the filesystem of DIR, doing what the module must make
//! durable: per run a new directory, a new file, a login-sized line and `fdatasync` (with
//! `dirsync`, also `fsync` of the new directory and of DIR), then a logout-sized line appended
//! and `fdatasync`. "open alone" is the first half. `prealloc` also reserves 256 KiB past the
//! end before the first line and releases it before the second sync, as the record writer does.
//!
//! With `SAMPLES=FILE` in the environment, every run's wall, open-alone and CPU microseconds are
//! appended to FILE as one line (for percentiles over interleaved rounds).
//!
//! For each run: pam_start, the PAM items and environment sshd would set, pam_acct_mgmt (as sshd
//! calls it before the session; this is also when libpam loads the stack's modules), then the
//! timed part
//! (pam_open_session + pam_close_session), then pam_end. Prints percentiles in microseconds of
//! the wall-clock time and of the CPU time this thread spent (user + system, which the load of
//! other processes does not inflate), and fails if any open or close did not succeed.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::time::Instant;

const PAM_SUCCESS: c_int = 0;
const PAM_RHOST: c_int = 4;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_open_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_close_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_putenv(pamh: *mut c_void, name_value: *const c_char) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

/// Accepts every message (the module's notice) without answering.
extern "C" fn silent(
    n: c_int,
    _msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    _: *mut c_void,
) -> c_int {
    if n <= 0 || resp.is_null() {
        return 19;
    }
    // SAFETY: libpam frees the array with free(); zeroed entries carry no text.
    let array = unsafe { libc::calloc(n as usize, std::mem::size_of::<PamResponse>()) };
    if array.is_null() {
        return 5;
    }
    // SAFETY: valid out pointer from libpam.
    unsafe { *resp = array.cast() };
    PAM_SUCCESS
}

fn check(pamh: *mut c_void, rc: c_int, what: &str) {
    if rc != PAM_SUCCESS {
        // SAFETY: pam_strerror returns a static string for any code.
        let text = unsafe { CStr::from_ptr(pam_strerror(pamh, rc)) };
        eprintln!("{what} failed: {rc} {}", text.to_string_lossy());
        std::process::exit(1);
    }
}

fn thread_cpu_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn summary(label: &str, mut values: Vec<u64>) -> String {
    values.sort_unstable();
    let mean = values.iter().sum::<u64>() / values.len() as u64;
    format!(
        "{label}: p50={}us p90={}us p99={}us max={}us mean={}us",
        percentile(&values, 0.50),
        percentile(&values, 0.90),
        percentile(&values, 0.99),
        values[values.len() - 1],
        mean
    )
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Appends each run's numbers to `$SAMPLES` when set.
fn save_samples(wall: &[u64], open: &[u64], cpu: &[u64]) {
    let Ok(path) = std::env::var("SAMPLES") else {
        return;
    };
    let mut text = String::new();
    for i in 0..wall.len() {
        text.push_str(&format!("{} {} {}\n", wall[i], open[i], cpu[i]));
    }
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open SAMPLES");
    f.write_all(text.as_bytes()).expect("write SAMPLES");
}

fn sync_dir(path: &std::path::Path) {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .expect("fsync directory");
}

/// The disk's floor for what the module makes durable (see the top of this file).
fn floor(dir: &str, runs: usize, mode: &str) {
    use std::os::unix::io::AsRawFd;
    let dirsync = mode == "dirsync";
    let prealloc = mode == "prealloc";
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let base = std::path::Path::new(dir);
    let login = vec![b'x'; 1200];
    let logout = vec![b'y'; 500];
    let (mut wall, mut open, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..runs {
        let sub = base.join(format!("floor-{}-{n}", std::process::id()));
        let start = Instant::now();
        let cpu_start = thread_cpu_micros();
        std::fs::create_dir(&sub).expect("mkdir");
        let path = sub.join("session.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .expect("create");
        if prealloc {
            // SAFETY: a valid open descriptor; KEEP_SIZE reserves blocks without changing the size.
            let rc = unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 256 * 1024) };
            assert_eq!(rc, 0, "fallocate");
        }
        f.write_all(&login).expect("write");
        f.sync_data().expect("fdatasync");
        if dirsync {
            sync_dir(&sub);
            sync_dir(base);
        }
        open.push(start.elapsed().as_micros() as u64);
        drop(f);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("reopen");
        f.write_all(&logout).expect("write");
        if prealloc {
            // The writer releases the reserve (and re-reserves on resume) before the sync.
            // SAFETY: a valid open descriptor.
            unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 256 * 1024 + 4096) };
            f.set_len((login.len() + logout.len()) as u64).expect("release");
        }
        f.sync_data().expect("fdatasync");
        wall.push(start.elapsed().as_micros() as u64);
        cpu.push(thread_cpu_micros() - cpu_start);
        drop(f);
        std::fs::remove_dir_all(&sub).expect("clean up");
    }
    save_samples(&wall, &open, &cpu);
    println!(
        "runs={} {} | {} | {}",
        wall.len(),
        summary("wall", wall),
        summary("cpu", cpu),
        summary("open alone, wall", open)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 4 && args[1] == "--floor" {
        let runs: usize = args[3].parse().expect("RUNS is a number");
        floor(&args[2], runs, args.get(4).map_or("", String::as_str));
        return;
    }
    if args.len() < 4 {
        eprintln!("usage: pam-bench-driver SERVICE USER RUNS [AUTH_INFO_FILE]");
        std::process::exit(2);
    }
    let service = CString::new(args[1].as_str()).unwrap();
    let user = CString::new(args[2].as_str()).unwrap();
    let runs: usize = args[3].parse().expect("RUNS is a number");
    let auth_info = args.get(4).map(|p| {
        let text = std::fs::read_to_string(p).expect("read auth info");
        CString::new(format!("SSH_AUTH_INFO_0={}", text.trim_end())).unwrap()
    });
    let connection = CString::new("SSH_CONNECTION=192.0.2.10 50022 127.0.0.1 22").unwrap();
    let rhost = CString::new("192.0.2.10").unwrap();
    let conv = PamConv {
        conv: silent,
        appdata_ptr: std::ptr::null_mut(),
    };
    let mut micros = Vec::with_capacity(runs);
    let mut open_micros = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut pamh = std::ptr::null_mut();
        // SAFETY: valid strings and conv (copied by libpam); pamh is an out pointer.
        let rc = unsafe { pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut pamh) };
        check(pamh, rc, "pam_start");
        // SAFETY: live handle; libpam copies items and environment strings.
        unsafe {
            check(
                pamh,
                pam_set_item(pamh, PAM_RHOST, rhost.as_ptr().cast()),
                "pam_set_item",
            );
            check(pamh, pam_putenv(pamh, connection.as_ptr()), "pam_putenv");
            if let Some(info) = &auth_info {
                check(pamh, pam_putenv(pamh, info.as_ptr()), "pam_putenv");
            }
        }
        // SAFETY: live handle.
        check(pamh, unsafe { pam_acct_mgmt(pamh, 0) }, "pam_acct_mgmt");
        let start = Instant::now();
        let cpu_start = thread_cpu_micros();
        // SAFETY: live handle.
        check(
            pamh,
            unsafe { pam_open_session(pamh, 0) },
            "pam_open_session",
        );
        open_micros.push(start.elapsed().as_micros() as u64);
        // SAFETY: live handle.
        check(
            pamh,
            unsafe { pam_close_session(pamh, 0) },
            "pam_close_session",
        );
        micros.push(start.elapsed().as_micros() as u64);
        cpu.push(thread_cpu_micros() - cpu_start);
        // SAFETY: ends the handle started above, once.
        unsafe { pam_end(pamh, PAM_SUCCESS) };
    }
    save_samples(&micros, &open_micros, &cpu);
    println!(
        "runs={} {} | {} | {}",
        micros.len(),
        summary("wall", micros),
        summary("cpu", cpu),
        summary("open alone, wall", open_micros)
    );
}
