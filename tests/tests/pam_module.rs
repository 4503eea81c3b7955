//! pam_sessrec.so loaded by the real Linux-PAM library through a private service file
//! (`/etc/pam.d/srt-pam-<rand>`), driven by a small libpam client in this file that can set the
//! PAM environment sshd would set (`SSH_CONNECTION`, `SSH_AUTH_INFO_0`) before
//! `pam_open_session`. pamtester cannot set PAM environment variables, hence the client.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value};
use sessrec_core::grant::{Grant, GrantDir, GRANT_DIR};
use sessrec_core::id::SessionId;
use sessrec_core::identity::Identity;
use sessrec_core::record::FileContext;
use sessrec_core::tree::SessionDir;
use sessrec_core::writer::{RecordWriter, WriterOptions};
use sessrec_tests::util::write_file;
use sessrec_tests::*;

/// A minimal libpam client: pam_start with a conversation that collects messages.
mod driver {
    use std::ffi::{CStr, CString};
    use std::os::raw::{c_char, c_int, c_void};
    use std::sync::Mutex;

    pub const PAM_SUCCESS: c_int = 0;
    pub const PAM_SESSION_ERR: c_int = 14;
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

    type ConvFn =
        extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

    #[repr(C)]
    struct PamConv {
        conv: ConvFn,
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
        fn pam_open_session(pamh: *mut c_void, flags: c_int) -> c_int;
        fn pam_close_session(pamh: *mut c_void, flags: c_int) -> c_int;
        fn pam_putenv(pamh: *mut c_void, name_value: *const c_char) -> c_int;
        fn pam_getenv(pamh: *mut c_void, name: *const c_char) -> *const c_char;
        fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    }

    extern "C" fn collect(
        num_msg: c_int,
        msg: *mut *const PamMessage,
        resp: *mut *mut PamResponse,
        appdata: *mut c_void,
    ) -> c_int {
        if num_msg <= 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
            return 19; // PAM_CONV_ERR
        }
        // SAFETY: appdata is the &Mutex<Vec<String>> owned by the Pam value that started this
        // handle and outlives it.
        let sink = unsafe { &*(appdata as *const Mutex<Vec<String>>) };
        for i in 0..num_msg as usize {
            // SAFETY: Linux-PAM passes an array of `num_msg` message pointers.
            let m = unsafe { *msg.add(i) };
            // SAFETY: each message is valid for the call and its text NUL-terminated.
            let text = unsafe { CStr::from_ptr((*m).msg) }
                .to_string_lossy()
                .into_owned();
            sink.lock().unwrap().push(text);
        }
        // SAFETY: libpam frees the response array with free(); calloc'd zeroes mean "no text".
        let array = unsafe { libc::calloc(num_msg as usize, std::mem::size_of::<PamResponse>()) };
        if array.is_null() {
            return 5; // PAM_BUF_ERR
        }
        // SAFETY: resp is a valid out pointer supplied by libpam.
        unsafe { *resp = array.cast() };
        PAM_SUCCESS
    }

    pub struct Pam {
        handle: *mut c_void,
        messages: Box<Mutex<Vec<String>>>,
    }

    impl Pam {
        pub fn start(service: &str, user: &str) -> Pam {
            let messages = Box::new(Mutex::new(Vec::new()));
            let conv = PamConv {
                conv: collect,
                appdata_ptr: &*messages as *const Mutex<Vec<String>> as *mut c_void,
            };
            let service = CString::new(service).unwrap();
            let user = CString::new(user).unwrap();
            let mut handle = std::ptr::null_mut();
            // SAFETY: valid NUL-terminated strings and conv struct (libpam copies it);
            // `handle` is a valid out pointer.
            let rc = unsafe { pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut handle) };
            assert_eq!(rc, PAM_SUCCESS, "pam_start");
            Pam { handle, messages }
        }

        pub fn putenv(&mut self, name_value: &[u8]) {
            let text = CString::new(name_value).unwrap();
            // SAFETY: live handle, NUL-terminated string (libpam copies it).
            let rc = unsafe { pam_putenv(self.handle, text.as_ptr()) };
            assert_eq!(rc, PAM_SUCCESS);
        }

        pub fn set_rhost(&mut self, rhost: &str) {
            let text = CString::new(rhost).unwrap();
            // SAFETY: live handle; libpam copies string items.
            let rc = unsafe { pam_set_item(self.handle, PAM_RHOST, text.as_ptr().cast()) };
            assert_eq!(rc, PAM_SUCCESS);
        }

        pub fn open_session(&mut self) -> c_int {
            // SAFETY: live handle.
            unsafe { pam_open_session(self.handle, 0) }
        }

        pub fn close_session(&mut self) -> c_int {
            // SAFETY: live handle.
            unsafe { pam_close_session(self.handle, 0) }
        }

        pub fn getenv(&mut self, name: &str) -> Option<String> {
            let name = CString::new(name).unwrap();
            // SAFETY: live handle; the result is NULL or a string owned by the handle, copied
            // at once.
            let value = unsafe { pam_getenv(self.handle, name.as_ptr()) };
            if value.is_null() {
                return None;
            }
            // SAFETY: non-null NUL-terminated string (see above).
            Some(
                unsafe { CStr::from_ptr(value) }
                    .to_string_lossy()
                    .into_owned(),
            )
        }

        pub fn messages(&self) -> Vec<String> {
            self.messages.lock().unwrap().clone()
        }
    }

    impl Drop for Pam {
        fn drop(&mut self) {
            // SAFETY: the handle came from pam_start and is ended once.
            unsafe { pam_end(self.handle, PAM_SUCCESS) };
        }
    }
}

use driver::{Pam, PAM_SESSION_ERR, PAM_SUCCESS};

/// `/etc/pam.d/srt-pam-<rand>`, removed on drop.
struct ModuleService {
    name: String,
    path: PathBuf,
}

impl ModuleService {
    /// `/etc/pam.d/<name>` whose session stack is the module (required) then pam_permit, so
    /// that a PAM_IGNORE from the module still gives PAM_SUCCESS.
    fn named(name: String, module_args: &str) -> ModuleService {
        let path = Path::new("/etc/pam.d").join(&name);
        let module = products().pam_module();
        write_file(
            &path,
            format!(
                "auth required pam_permit.so\naccount required pam_permit.so\n\
                 session required {} {module_args}\nsession required pam_permit.so\n",
                module.display()
            ),
            0o644,
        );
        ModuleService { name, path }
    }
}

impl Drop for ModuleService {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A stand-in for the installed recorder (the launch check compares paths only).
struct Recorder {
    _dir: TempDir,
    path: PathBuf,
}

fn recorder() -> Recorder {
    let dir = TempDir::new_in(Path::new("/usr/local/lib"), "pamrec", 0o755);
    let path = dir.join("sessrec-shell");
    write_file(&path, "#!/bin/sh\nexit 0\n", 0o755);
    Recorder { _dir: dir, path }
}

const BASE_CONFIG: &str = "min_free_mb = 1\n";

struct Setup {
    tree: RecordTree,
    recorder: Recorder,
    user: TestUser,
    service: ModuleService,
}

/// A record tree with `config`, a user whose shell is the recorder, and a PAM service with
/// the module configured for them (plus `extra_args`).
fn setup(prefix: &str, config: &str, extra_args: &str) -> Setup {
    let tree = RecordTree::new(&format!("{BASE_CONFIG}{config}"));
    let recorder = recorder();
    let user = TestUser::new(prefix, &recorder.path);
    let service = service_for(&tree, &recorder, extra_args);
    Setup {
        tree,
        recorder,
        user,
        service,
    }
}

fn service_for(tree: &RecordTree, recorder: &Recorder, extra_args: &str) -> ModuleService {
    let name = unique_name("pam");
    let args = format!(
        "config={} recorder={} services={name} {extra_args}",
        tree.config_path().display(),
        recorder.path.display()
    );
    ModuleService::named(name, &args)
}

fn public_key_words(public_line: &str) -> (String, String) {
    let mut w = public_line.split_whitespace();
    (w.next().unwrap().to_owned(), w.next().unwrap().to_owned())
}

fn auth_info_for(public_file: &Path) -> String {
    let text = fs::read_to_string(public_file).unwrap();
    let (kind, blob) = public_key_words(&text);
    format!("publickey {kind} {blob}")
}

/// Opens a session as sshd would for `user`, with the given auth info.
fn sshd_like(service: &ModuleService, user: &TestUser, auth_info: Option<&[u8]>) -> Pam {
    let mut pam = Pam::start(&service.name, user.name());
    pam.set_rhost("192.0.2.10");
    pam.putenv(b"SSH_CONNECTION=192.0.2.10 50022 127.0.0.1 2222");
    if let Some(info) = auth_info {
        let mut kv = b"SSH_AUTH_INFO_0=".to_vec();
        kv.extend_from_slice(info);
        pam.putenv(&kv);
    }
    pam
}

fn session_file(session_dir: &Path) -> PathBuf {
    session_dir.join("session.jsonl")
}

fn grant_path(id: &str) -> PathBuf {
    Path::new(GRANT_DIR).join(id)
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {m:?}"))
}

#[test]
fn open_and_close_write_login_logout_and_the_grant() {
    require_e2e!();
    let s = setup(
        "pm-open",
        "[recorder]\nnotice = \"Recorded as {session}.\"\n",
        "notice",
    );
    let info = auth_info_for(&s.user.key().public());
    let mut pam = sshd_like(&s.service, &s.user, Some(info.as_bytes()));
    assert_eq!(pam.open_session(), PAM_SUCCESS);

    let id = pam.getenv("SESSREC_SESSION").expect("SESSREC_SESSION set");
    assert!(SessionId::parse(&id).is_some(), "{id}");
    assert_eq!(pam.messages(), vec![format!("Recorded as {id}.")]);
    let session = s.tree.only_session();
    assert!(session.ends_with(&id));
    assert_eq!(fs::metadata(&session).unwrap().mode() & 0o7777, 0o700);

    // The grant: root-only, naming this process as the monitor.
    let gpath = grant_path(&id);
    let meta = fs::symlink_metadata(&gpath).expect("grant written");
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid()),
        (0o600, 0),
        "grant mode/owner"
    );
    let grant: Grant = serde_json::from_slice(&fs::read(&gpath).unwrap()).unwrap();
    assert_eq!(grant.session.to_string(), id);
    assert_eq!(grant.uid, s.user.uid());
    assert_eq!(grant.monitor_pid, std::process::id());
    assert_eq!(
        grant.monitor_start,
        sessrec_core::sys::process_start_time(std::process::id()).unwrap()
    );
    assert_eq!(grant.session_dir, session);
    assert_eq!(grant.config_path, s.tree.config_path());
    assert_eq!(grant.identity.actor, s.user.name());
    assert!(grant.identity.verified);

    let login = only_event(&session_file(&session), "login");
    assert_eq!(str_of(&login, "user"), s.user.name());
    assert_eq!(str_of(&login, "actor"), s.user.name());
    assert_eq!(str_of(&login, "actor_source"), "unix-user");
    assert_eq!(str_of(&login, "src_ip"), "192.0.2.10");
    assert_eq!(login["src_port"], 50022);
    assert_eq!(str_of(&login, "dst_ip"), "127.0.0.1");
    assert_eq!(login["dst_port"], 2222);
    assert_eq!(str_of(&login, "rhost"), "192.0.2.10");
    assert_eq!(str_of(&login, "service"), s.service.name);
    assert_eq!(login["uid"], s.user.uid());
    assert_eq!(str_of(&login, "key_type"), "ssh-ed25519");
    assert_eq!(
        str_of(&login, "key_fingerprint"),
        s.user.key().fingerprint()
    );
    assert_eq!(login["auth_methods"], serde_json::json!(["publickey"]));
    assert_eq!(str_of(&login, "launch"), "login-shell");

    // A recorder's channel: one that ended, one still open.
    let ctx = |file: &str| FileContext {
        host: sessrec_core::sys::hostname(),
        session: grant.session,
        file: file.into(),
        user: s.user.name().into(),
        actor: s.user.name().into(),
    };
    let dir = SessionDir::open(s.tree.record_dir(), grant.session).unwrap();
    let (n1, f1) = dir.create_channel_file().unwrap();
    let mut w1 = RecordWriter::new(f1, ctx("channel-1.jsonl"), WriterOptions::default()).unwrap();
    w1.event("channel.start", Map::new()).unwrap();
    w1.event("channel.end", Map::new()).unwrap();
    let (d1, s1) = (w1.digest(), w1.seq());
    drop(w1);
    let (n2, f2) = dir.create_channel_file().unwrap();
    let mut w2 = RecordWriter::new(f2, ctx("channel-2.jsonl"), WriterOptions::default()).unwrap();
    w2.event("channel.start", Map::new()).unwrap();
    w2.io(Stream::Output, 5, b"still running").unwrap();
    w2.flush().unwrap();
    let (d2, s2) = (w2.digest(), w2.seq());
    assert_eq!((n1, n2), (1, 2));
    GrantDir::default().mark_claimed(grant.session).unwrap();

    assert_eq!(pam.close_session(), PAM_SUCCESS);
    drop(w2);
    assert!(!gpath.exists(), "grant removed at close");
    assert!(!Path::new(&format!("{GRANT_DIR}/{id}.claimed")).exists());
    let logout = only_event(&session_file(&session), "logout");
    assert_eq!(logout["unclaimed"], false);
    assert!(logout["duration_us"].as_u64().is_some());
    assert_eq!(
        logout["channels"],
        serde_json::json!([
            {"file": "channel-1.jsonl", "last_seq": s1, "digest": d1, "open": false},
            {"file": "channel-2.jsonl", "last_seq": s2, "digest": d2, "open": true},
        ])
    );
    assert_chain_ok(&session_file(&session));
}

#[test]
fn a_grant_nobody_claimed_is_reported_at_logout() {
    require_e2e!();
    let s = setup("pm-unclaimed", "", "");
    let log = AuthLog::mark();
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    // Without the `notice` argument the module leaves the notice to the recorder.
    assert_eq!(pam.messages(), Vec::<String>::new());
    let id = pam.getenv("SESSREC_SESSION").unwrap();
    let session = s.tree.only_session();
    assert_eq!(pam.close_session(), PAM_SUCCESS);
    let logout = only_event(&session_file(&session), "logout");
    assert_eq!(logout["unclaimed"], true);
    assert_eq!(logout["channels"], serde_json::json!([]));
    log.wait_for(
        &format!(
            "session {id} of {} .*no recorder ever claimed its grant",
            s.user.name()
        ),
        Duration::from_secs(15),
    );
    // Both lines of session.jsonl were anchored to authpriv with their chain digests.
    let report = assert_chain_ok(&session_file(&session));
    assert_eq!(report.last_seq, 2);
    log.wait_for(
        &format!(
            "sessrec anchor file={id}/session.jsonl seq=2 sha256={}",
            report.last_digest
        ),
        Duration::from_secs(15),
    );
    log.wait_for(
        &format!("sessrec anchor file={id}/session.jsonl seq=1 sha256=[0-9a-f]{{64}}"),
        Duration::from_secs(15),
    );
}

#[test]
fn services_outside_the_list_are_ignored_without_reading_config() {
    require_e2e!();
    let recorder = recorder();
    let user = TestUser::new("pm-svc", &recorder.path);
    // The config does not exist: reading it would fail closed.
    let service = ModuleService::named(
        unique_name("pam"),
        "config=/nonexistent/sessrec.toml services=some-other-service",
    );
    let mut pam = Pam::start(&service.name, user.name());
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert_eq!(pam.getenv("SESSREC_SESSION"), None);
    assert_eq!(pam.close_session(), PAM_SUCCESS);

    // The same module line for a listed service does read it, and refuses.
    let listed = unique_name("pam");
    let service = ModuleService::named(
        listed.clone(),
        &format!("config=/nonexistent/sessrec.toml services={listed}"),
    );
    let mut pam = Pam::start(&service.name, user.name());
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
}

#[test]
fn policy_exclusions_are_not_recorded() {
    require_e2e!();
    let tree = RecordTree::new(BASE_CONFIG);
    let recorder = recorder();
    let user = TestUser::new("pm-excl", &recorder.path);
    tree.write_config(&format!(
        "{BASE_CONFIG}[policy]\nexclude_users = [\"{}\"]\n",
        user.name()
    ));
    let service = service_for(&tree, &recorder, "");
    let mut pam = sshd_like(&service, &user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert_eq!(pam.getenv("SESSREC_SESSION"), None);
    assert!(tree.sessions().is_empty());
    assert_eq!(pam.close_session(), PAM_SUCCESS);

    // Group-based policy: only members of a group are recorded.
    let group = TestGroup::new("pm-grp");
    tree.write_config(&format!(
        "{BASE_CONFIG}[policy]\nusers = []\ngroups = [\"{}\"]\n",
        group.name()
    ));
    let mut pam = sshd_like(&service, &user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert!(tree.sessions().is_empty(), "not a member yet");
    drop(pam);
    user.add_to_group(group.name());
    let mut pam = sshd_like(&service, &user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert_eq!(tree.sessions().len(), 1, "member is recorded");
    assert_eq!(pam.close_session(), PAM_SUCCESS);
}

#[test]
fn bad_config_denies_unless_on_error_allow_or_break_glass() {
    require_e2e!();
    let s = setup("pm-badcfg", "", "");
    s.tree
        .write_raw_config("record_dir = \"/x\"\nno_such_key = 1\n");
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
    drop(pam);

    // A world-writable config is not trusted, not even for on_error.
    s.tree
        .write_raw_config("on_error = \"allow\"\nrecord_dir = \"/x\"\n");
    fs::set_permissions(s.tree.config_path(), fs::Permissions::from_mode(0o666)).unwrap();
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
    drop(pam);

    s.tree
        .write_raw_config("on_error = \"allow\"\nrecord_dir = \"/x\"\nno_such_key = 1\n");
    fs::set_permissions(s.tree.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert_eq!(pam.getenv("SESSREC_SESSION"), None);
    assert_eq!(pam.close_session(), PAM_SUCCESS);
    drop(pam);

    s.tree.write_raw_config(&format!(
        "record_dir = \"/x\"\nno_such_key = 1\n[policy]\nbreak_glass_users = [\"{}\"]\n",
        s.user.name()
    ));
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert!(s.tree.sessions().is_empty());
}

#[test]
fn hostile_auth_info_falls_back_to_the_unix_user() {
    require_e2e!();
    let s = setup("pm-hostile", "", "");
    let (kind, blob) = public_key_words(&fs::read_to_string(s.user.key().public()).unwrap());
    let truncated = format!("publickey {kind} {}", &blob[..blob.len() / 2]);
    let mismatched = format!("publickey ssh-rsa {blob}");
    let huge = format!("publickey {kind} {}", "A".repeat(200_000));
    let many = "password\n".repeat(10_000);
    let binary: Vec<u8> = (1u8..=255).cycle().take(4096).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", truncated.into_bytes()),
        ("mismatched", mismatched.into_bytes()),
        ("huge", huge.into_bytes()),
        ("many", many.into_bytes()),
        ("binary", binary),
        ("shell", b"$(reboot)\n`id`".to_vec()),
    ];
    for (what, info) in cases {
        let mut pam = sshd_like(&s.service, &s.user, Some(&info));
        assert_eq!(pam.open_session(), PAM_SUCCESS, "{what}");
        let id = pam.getenv("SESSREC_SESSION").expect(what);
        let session = s
            .tree
            .sessions()
            .into_iter()
            .find(|p| p.ends_with(&id))
            .unwrap();
        let login = only_event(&session_file(&session), "login");
        assert_eq!(str_of(&login, "actor"), s.user.name(), "{what}");
        assert_eq!(str_of(&login, "actor_source"), "unix-user", "{what}");
        assert!(
            login.contains_key("auth_info_error"),
            "{what}: no auth_info_error in {login:?}"
        );
        assert_eq!(pam.close_session(), PAM_SUCCESS, "{what}");
        assert_chain_ok(&session_file(&session));
    }
}

#[test]
fn certificate_actor_only_from_a_trusted_ca() {
    require_e2e!();
    let trusted = SshCa::new();
    let users_own = SshCa::new();
    let s = setup("pm-cert", "", "");
    s.tree.write_config(&format!(
        "{BASE_CONFIG}[identity]\ntrusted_user_cas = [\"{}\"]\n[identity.fingerprints]\n\"{}\" = \"mapped@example.com\"\n",
        trusted.fingerprint(),
        s.user.key().fingerprint()
    ));
    let good = trusted.sign(s.user.key(), "alice@example.com", &[s.user.name()], 77);
    let forged = users_own.sign(s.user.key(), "root@example.com", &[s.user.name()], 78);

    let login_with = |cert: &Path| {
        let info = auth_info_for(cert);
        let mut pam = sshd_like(&s.service, &s.user, Some(info.as_bytes()));
        assert_eq!(pam.open_session(), PAM_SUCCESS);
        let id = pam.getenv("SESSREC_SESSION").unwrap();
        assert_eq!(pam.close_session(), PAM_SUCCESS);
        let session = s
            .tree
            .sessions()
            .into_iter()
            .find(|p| p.ends_with(&id))
            .unwrap();
        only_event(&session_file(&session), "login")
    };

    let login = login_with(good.path());
    assert_eq!(str_of(&login, "actor"), "alice@example.com");
    assert_eq!(str_of(&login, "actor_source"), "certificate");
    let cert = login["certificate"].as_object().unwrap();
    assert_eq!(str_of(cert, "key_id"), "alice@example.com");
    assert_eq!(cert["serial"], 77);
    assert_eq!(cert["ca_trusted"], true);
    assert_eq!(str_of(cert, "ca_fingerprint"), trusted.fingerprint());
    assert_eq!(cert["principals"], serde_json::json!([s.user.name()]));
    assert_eq!(
        str_of(&login, "key_fingerprint"),
        s.user.key().fingerprint()
    );

    // A CA the user could have added to authorized_keys: its key id is not the actor; the
    // key's fingerprint mapping applies instead.
    let login = login_with(forged.path());
    assert_eq!(str_of(&login, "actor"), "mapped@example.com");
    assert_eq!(str_of(&login, "actor_source"), "fingerprint-map");
    let cert = login["certificate"].as_object().unwrap();
    assert_eq!(str_of(cert, "key_id"), "root@example.com");
    assert_eq!(cert["ca_trusted"], false);
}

#[test]
fn launch_check_refuses_a_shell_that_bypasses_the_recorder() {
    require_e2e!();
    let s = setup("pm-launch", "", "");
    s.user.set_shell(Path::new("/bin/bash"));
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
    drop(pam);
    assert!(s.tree.sessions().is_empty());

    // force-command: bash reads ~/.bashrc for `bash -c` under sshd; dash does not.
    s.tree.write_config(&format!(
        "{BASE_CONFIG}[policy]\nlaunch = \"force-command\"\n"
    ));
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
    drop(pam);
    s.user.set_shell(Path::new("/bin/sh"));
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert_eq!(pam.close_session(), PAM_SUCCESS);
    drop(pam);

    // A break-glass user is admitted, with an alert.
    s.user.set_shell(Path::new("/bin/bash"));
    s.tree.write_config(&format!(
        "{BASE_CONFIG}[policy]\nbreak_glass_users = [\"{}\"]\n",
        s.user.name()
    ));
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS);
    assert_eq!(pam.getenv("SESSREC_SESSION"), None);
}

#[test]
fn unwritable_record_tree_refuses_and_admits_break_glass() {
    require_e2e!("mount", "umount");
    let s = setup("pm-ro", "", "");
    let ro = Mount::read_only_bind(s.tree.record_dir());
    let on = |extra: &str| {
        s.tree.write_raw_config(&format!(
            "record_dir = \"{}\"\n{BASE_CONFIG}{extra}",
            ro.path().display()
        ))
    };
    let log = AuthLog::mark();
    on("");
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
    drop(pam);
    log.wait_for(
        &format!(
            "login of {} refused, recording cannot be set up: .*Read-only",
            s.user.name()
        ),
        Duration::from_secs(15),
    );

    on("on_error = \"allow\"\n");
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS, "on_error = allow");
    assert_eq!(pam.getenv("SESSREC_SESSION"), None);
    drop(pam);
    log.wait_for(
        &format!("login of {} allowed WITHOUT recording", s.user.name()),
        Duration::from_secs(15),
    );

    on(&format!(
        "[policy]\nbreak_glass_users = [\"{}\"]\n",
        s.user.name()
    ));
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SUCCESS, "break-glass");
    assert_eq!(pam.getenv("SESSREC_SESSION"), None);
    drop(pam);
    log.wait_for(
        &format!(
            "BREAK-GLASS login of {} admitted WITHOUT recording",
            s.user.name()
        ),
        Duration::from_secs(15),
    );
    let other = TestUser::new("pm-ro2", &s.recorder.path);
    let mut pam = sshd_like(&s.service, &other, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR, "not break-glass");
}

#[test]
fn min_free_space_floor_refuses_new_sessions() {
    require_e2e!();
    let s = setup("pm-free", "", "");
    s.tree.write_config("min_free_mb = 1000000000\n");
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
    assert!(s.tree.sessions().is_empty());
}

#[test]
fn bad_module_arguments_fail_closed() {
    require_e2e!();
    let s = setup("pm-args", "", "no_such_option");
    let mut pam = sshd_like(&s.service, &s.user, None);
    assert_eq!(pam.open_session(), PAM_SESSION_ERR);
}

#[test]
fn stale_grants_are_swept_when_their_monitor_is_gone() {
    require_e2e!();
    let s = setup("pm-sweep", "", "");
    // A grant whose monitor was a process that has exited.
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let dead_pid = child.id();
    let dead_start = sessrec_core::sys::process_start_time(dead_pid).unwrap_or(1);
    child.wait().unwrap();
    let stale_id = SessionId::new().unwrap();
    let stale = Grant {
        session: stale_id,
        uid: s.user.uid(),
        identity: Identity::unverified(s.user.name(), s.user.uid()),
        config_path: s.tree.config_path().to_path_buf(),
        session_dir: s.tree.record_dir().join("none"),
        monitor_pid: dead_pid,
        monitor_start: dead_start,
        login_time: "2026-01-01T00:00:00.000000Z".into(),
        ticket: None,
    };
    let grants = GrantDir::default();
    grants.write(&stale).unwrap();
    assert!(grant_path(&stale_id.to_string()).exists());

    // Sweeping is logout work (a stale grant cannot be claimed: its monitor is gone).
    let mut first = sshd_like(&s.service, &s.user, None);
    assert_eq!(first.open_session(), PAM_SUCCESS);
    let mut second = sshd_like(&s.service, &s.user, None);
    assert_eq!(second.open_session(), PAM_SUCCESS);
    let live = second.getenv("SESSREC_SESSION").unwrap();
    assert_eq!(first.close_session(), PAM_SUCCESS);
    assert!(
        !grant_path(&stale_id.to_string()).exists(),
        "stale grant swept"
    );
    assert!(grant_path(&live).exists(), "a live grant is kept");
    assert_eq!(second.close_session(), PAM_SUCCESS);
    assert!(!grant_path(&live).exists());
}

#[test]
fn module_exports_only_pam_entry_points_and_links_libpam() {
    require_e2e!("nm", "ldd");
    let module = products().pam_module();
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&module)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let symbols: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(!symbols.is_empty(), "{text}");
    for sym in &symbols {
        assert!(sym.starts_with("pam_sm_"), "unexpected export {sym}");
    }
    assert!(symbols.contains(&"pam_sm_open_session"));
    assert!(symbols.contains(&"pam_sm_close_session"));
    let out = Command::new("ldd").arg(&module).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("libpam.so.0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
