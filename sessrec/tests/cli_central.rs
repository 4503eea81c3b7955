//! The `sessrec` binary on a central archive laid out as the shipped rsyslog receiver writes
//! it (`<root>/<host>/<session>/<file>.jsonl`), with records written by the real record writer
//! on three hosts. (tests/tests/shipper_rsyslog.rs reads a tree a real receiver wrote.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sessrec_core::id::SessionId;
use sessrec_core::testing::synth::{id_at, shift_times, SynthSession};
use sessrec_core::testing::TempDir;

mod support;
use support::sessrec;

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A closed session recorded on `host` at `millis`, typing `word`, moved into
/// `central/<host>/<id>/` as the receiver files it.
fn session_on(stage: &Path, central: &Path, host: &str, millis: u64, word: &str) -> SessionId {
    let id = id_at(millis).unwrap();
    let mut s =
        SynthSession::login_on(host, stage, id, "srt-ops", "ops@example.com", "203.0.113.9")
            .unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    let mut t = 100_000;
    ch.typed(&mut t, "$ ", &format!("echo {word}"), &format!("{word}\n"))
        .unwrap();
    s.finished(ch, 0).unwrap();
    let dir = s.logout().unwrap();
    shift_times(
        &dir,
        millis as i64 * 1000 - sessrec_core::time::Timestamp::now().as_micros(),
    )
    .unwrap();
    let target = central.join(host).join(id.to_string());
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(&dir, &target).unwrap();
    id
}

struct Fleet {
    _t: TempDir,
    central: PathBuf,
    ids: Vec<(String, SessionId)>,
}

fn fleet(name: &str) -> Fleet {
    let t = TempDir::new(name);
    let (stage, central) = (t.join("stage"), t.join("central"));
    let mut ids = Vec::new();
    for (i, host) in ["b1.example.net", "b2.example.net", "b3.example.net"]
        .iter()
        .enumerate()
    {
        let word = format!("needle-{}", i + 1);
        let id = session_on(
            &stage,
            &central,
            host,
            1_764_000_000_000 + i as u64 * 1000,
            &word,
        );
        ids.push((host.to_string(), id));
    }
    Fleet {
        _t: t,
        central,
        ids,
    }
}

#[test]
fn lists_shows_and_searches_across_hosts() {
    let f = fleet("central-list");
    let o = sessrec(&f.central, &["list"]);
    assert!(o.status.success(), "{o:?}");
    let out = text(&o);
    assert!(out.starts_with("HOST"), "{out}");
    for (host, id) in &f.ids {
        let row = out
            .lines()
            .find(|l| l.contains(&id.to_string()))
            .unwrap_or_else(|| panic!("{id} not listed: {out}"));
        assert!(row.starts_with(host.as_str()), "{row}");
        assert!(row.contains("verified"), "{row}");
    }

    let o = sessrec(&f.central, &["list", "--host", "b2.*", "--json"]);
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["session"], f.ids[1].1.to_string());
    assert_eq!(rows[0]["host_dir"], "b2.example.net");
    assert_eq!(rows[0]["host"], "b2.example.net");

    let o = sessrec(&f.central, &["show", &f.ids[2].1.to_string()]);
    assert!(o.status.success(), "{o:?}");
    assert!(text(&o).contains("$ echo needle-3"), "{}", text(&o));
    // A prefix resolves across hosts too.
    let o = sessrec(&f.central, &["show", &f.ids[0].1.to_string()[..13]]);
    assert!(o.status.success(), "{o:?}");

    let target = format!("{}/1", f.ids[1].1);
    let o = sessrec(&f.central, &["export", &target, "--format", "text"]);
    assert!(o.status.success(), "{o:?}");
    assert!(text(&o).contains("needle-2"), "{}", text(&o));

    let o = sessrec(
        &f.central,
        &["search", "needle-", "--fixed-strings", "--json"],
    );
    assert!(o.status.success(), "{o:?}");
    let out = text(&o);
    for (_, id) in &f.ids {
        assert!(out.contains(&id.to_string()), "{id} not found: {out}");
    }
    let o = sessrec(
        &f.central,
        &[
            "search",
            "needle-",
            "--fixed-strings",
            "--json",
            "--host",
            "b3*",
        ],
    );
    let out = text(&o);
    assert!(out.contains(&f.ids[2].1.to_string()), "{out}");
    assert!(!out.contains(&f.ids[0].1.to_string()), "{out}");
}

#[test]
fn verify_catches_an_edit_and_a_misfiled_copy() {
    let f = fleet("central-verify");
    let o = sessrec(&f.central, &["verify", "--all"]);
    assert!(o.status.success(), "{o:?}");

    // A line edited on the central copy.
    let (host, id) = &f.ids[0];
    let file = f
        .central
        .join(host)
        .join(id.to_string())
        .join("channel-1.jsonl");
    let body = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, body.replacen("needle-1", "needle-X", 1)).unwrap();
    let o = sessrec(&f.central, &["verify", "--all"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("channel-1.jsonl"),
        "{o:?}"
    );
    std::fs::write(&file, body).unwrap();

    // The same session filed under a second host: refused until --host picks one, and the
    // copy under the wrong host is damaged.
    let (_, id2) = &f.ids[1];
    let copy = f.central.join("b1.example.net").join(id2.to_string());
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(f.central.join("b2.example.net").join(id2.to_string())).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let o = sessrec(&f.central, &["show", &id2.to_string()]);
    assert!(!o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--host") && err.contains("b1.example.net"),
        "{err}"
    );
    let o = sessrec(
        &f.central,
        &["--host", "b2.example.net", "show", &id2.to_string()],
    );
    assert!(o.status.success(), "{o:?}");
    let o = sessrec(
        &f.central,
        &["--host", "b1.example.net", "verify", &id2.to_string()],
    );
    assert!(!o.status.success(), "{o:?}");
    assert!(
        text(&o).contains(
            "filed under host b1.example.net but its records are from host b2.example.net"
        ),
        "{o:?}"
    );
}

#[test]
fn prune_removes_old_sessions_under_their_host() {
    let f = fleet("central-prune");
    let o = sessrec(
        &f.central,
        &["prune", "--older-than", "30d", "--host", "b1.*"],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(!f
        .central
        .join("b1.example.net")
        .join(f.ids[0].1.to_string())
        .exists());
    assert!(
        f.central.join("b1.example.net").is_dir(),
        "the host directory stays"
    );
    assert!(f
        .central
        .join("b2.example.net")
        .join(f.ids[1].1.to_string())
        .exists());
}

/// Sets the modification time of every file under `dir` to `ago` before now.
fn age(dir: &Path, ago: &str) {
    let o = Command::new("find")
        .arg(dir)
        .args(["-exec", "touch", "-h", "-d", ago, "{}", "+"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn hosts_reports_silence_stalls_and_gaps() {
    let f = fleet("central-hosts");
    let prom = f.central.join("..").join("sessrec.prom");
    let o = sessrec(&f.central, &["hosts", "--prom", prom.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = text(&o);
    for (host, _) in &f.ids {
        let row = out.lines().find(|l| l.starts_with(host.as_str())).unwrap();
        assert!(row.ends_with(" ok"), "{out}");
    }
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(
        metrics.contains("sessrec_host_problems{host=\"b2.example.net\"} 0"),
        "{metrics}"
    );

    // b3 has sent nothing for three hours.
    age(&f.central.join("b3.example.net"), "3 hours ago");
    // b2 has a session that logged in, wrote, and has been quiet for two hours without logout.
    let t = TempDir::new("central-hosts-open");
    let open_id = id_at(1_764_000_100_000).unwrap();
    let mut s = SynthSession::login_on(
        "b2.example.net",
        &t.join("stage"),
        open_id,
        "srt-ops",
        "ops@example.com",
        "203.0.113.9",
    )
    .unwrap();
    let mut ch = s.channel("shell", "pty", None).unwrap();
    ch.output(1000, b"$ ").unwrap();
    ch.flush().unwrap();
    std::mem::forget(ch);
    let dir = s.abandon().unwrap();
    let open_dir = f.central.join("b2.example.net").join(open_id.to_string());
    std::fs::rename(&dir, &open_dir).unwrap();
    age(&open_dir, "2 hours ago");
    // b1 lost a line in transit.
    let file = f
        .central
        .join("b1.example.net")
        .join(f.ids[0].1.to_string())
        .join("channel-1.jsonl");
    let body = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = body.lines().collect();
    lines.remove(1);
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let o = sessrec(&f.central, &["hosts", "--prom", prom.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = text(&o);
    assert!(out.contains("silent: nothing arrived for 3h"), "{out}");
    assert!(
        out.contains(&format!(
            "session {open_id} is open but no line arrived for 2h"
        )),
        "{out}"
    );
    assert!(out.contains("seq gap (lines lost in transit)"), "{out}");
    let b2 = out
        .lines()
        .find(|l| l.starts_with("b2.example.net"))
        .unwrap();
    assert!(b2.contains("PROBLEM"), "{b2}");
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(
        metrics.contains("sessrec_host_open_sessions{host=\"b2.example.net\"} 1"),
        "{metrics}"
    );
    let o = sessrec(&f.central, &["--host", "b1*", "hosts", "--json"]);
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["host"], "b1.example.net");
}

#[test]
fn the_verdict_cache_never_hides_an_edit_that_keeps_size_and_mtime() {
    let f = fleet("central-cache");
    let (host, id) = &f.ids[0];
    let dir = f.central.join(host).join(id.to_string());
    let row = |f: &Fleet| {
        let o = sessrec(&f.central, &["list", "--json"]);
        text(&o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["session"] == id.to_string())
            .unwrap()
    };
    // A verdict is kept only once the files' times would show any later change.
    settle();
    assert_eq!(row(&f)["verify"]["ok"], true);
    assert!(
        dir.join(".verdict.json").is_file(),
        "a closed session's verdict is kept"
    );
    assert_eq!(row(&f)["verify"]["ok"], true, "answered from the cache");

    // Same length, same mtime, different byte: only ctime (and the content) tell.
    let file = dir.join("channel-1.jsonl");
    let before = std::fs::metadata(&file).unwrap();
    let body = std::fs::read_to_string(&file).unwrap();
    let edited = body.replacen("needle-1", "needle-9", 1);
    assert_eq!(edited.len(), body.len());
    std::fs::write(&file, &edited).unwrap();
    let stamp = format!(
        "@{}.{:09}",
        std::os::unix::fs::MetadataExt::mtime(&before),
        std::os::unix::fs::MetadataExt::mtime_nsec(&before)
    );
    let o = Command::new("touch")
        .args(["-d", &stamp])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (before.len(), before.modified().unwrap())
    );
    let v = row(&f);
    assert_eq!(v["verify"]["ok"], false, "{v}");
    assert_eq!(v["integrity"]["status"], "damaged", "{v}");
}

#[test]
fn prune_never_crosses_a_legal_hold() {
    let f = fleet("central-hold");
    let held = f.ids[1].1.to_string();
    let o = sessrec(
        &f.central,
        &["hold", "--session", &held, "--reason", "case 4711"],
    );
    assert!(o.status.success(), "{o:?}");
    let o = sessrec(
        &f.central,
        &["hold", "--host", "b3.*", "--reason", "incident 12"],
    );
    assert!(o.status.success(), "{o:?}");
    let o = sessrec(&f.central, &["hold", "--actor", "ops@*"]);
    assert_eq!(o.status.code(), Some(2), "a hold needs a reason: {o:?}");
    let o = sessrec(&f.central, &["hold"]);
    let listed = text(&o);
    assert!(
        listed.contains(&format!("session {held}: case 4711")),
        "{listed}"
    );
    assert!(listed.contains("host b3.*: incident 12"), "{listed}");

    let o = sessrec(&f.central, &["prune", "--older-than", "30d"]);
    assert!(o.status.success(), "{o:?}");
    let out = text(&o);
    assert!(
        out.contains(&format!("keep   {held} (legal hold: case 4711)")),
        "{out}"
    );
    assert!(out.contains("2 on legal hold"), "{out}");
    let exists = |i: usize| {
        f.central
            .join(&f.ids[i].0)
            .join(f.ids[i].1.to_string())
            .exists()
    };
    assert!(!exists(0), "not held: removed");
    assert!(exists(1) && exists(2), "held sessions stay");
    // The deletion is in the chained access log, naming host and session.
    let access: String = std::fs::read_dir(f.central.join("access"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let deletion = access
        .lines()
        .find(|l| l.contains("\"prune-removed\""))
        .unwrap_or_else(|| panic!("no deletion record:\n{access}"));
    assert!(
        deletion.contains(&format!("b1.example.net/{}", f.ids[0].1)) && !deletion.contains(&held),
        "{deletion}"
    );
    let o = sessrec(&f.central, &["verify", "--all"]);
    assert!(text(&o).contains("OK         access log"), "{o:?}");

    // A damaged holds file stops prune instead of being skipped.
    std::fs::write(f.central.join("holds.jsonl"), "not json\n").unwrap();
    let o = sessrec(&f.central, &["prune", "--older-than", "30d"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(exists(1) && exists(2));
}

/// Appends a heartbeat to `central/<host>/heartbeat/` as the receiver files it.
fn heartbeat_on(central: &Path, host: &str, beat: &sessrec_core::schema::Heartbeat) -> PathBuf {
    let host_dir = central.join(host);
    std::fs::create_dir_all(&host_dir).unwrap();
    let today = sessrec_core::time::Timestamp::now().date();
    sessrec_core::access_log::append_daily(
        &host_dir,
        sessrec::heartbeat::CENTRAL_DIR,
        &sessrec::heartbeat::file_name(today),
        // One id per day's file, as `sessrec heartbeat` keeps it: the chain binds it.
        SessionId::parse("019ab4f0-5c00-7000-8000-000000000000").unwrap(),
        host,
        beat,
        8192,
    )
    .unwrap();
    host_dir.join(sessrec::heartbeat::CENTRAL_DIR)
}

fn beat(lag: u64, audit: &str) -> sessrec_core::schema::Heartbeat {
    sessrec_core::schema::Heartbeat {
        open_sessions: Some(0),
        record_disk_free_mb: Some(5000),
        sudo_import_lag: Some(lag),
        audit_import_lag: Some(0),
        exec_audit: Some(audit.into()),
        interval: Some(300),
        ..Default::default()
    }
}

#[test]
fn hosts_judges_hosts_by_their_heartbeats() {
    let t = TempDir::new("central-heartbeats");
    let central = t.join("central");
    let prom = t.join("sessrec.prom");
    // q1 beats and records nothing: quiet, not silent.
    heartbeat_on(&central, "q1.example.net", &beat(0, "on"));
    let o = sessrec(&central, &["--host", "q1*", "hosts"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = text(&o);
    assert!(out.lines().nth(1).unwrap().ends_with(" ok"), "{out}");
    assert!(
        out.contains(
            "5000 MiB free for records, sudo import lag 0s, audit import lag 0s, exec audit on"
        ),
        "{out}"
    );

    // q2's last heartbeat is 20 minutes old: past three 5-minute intervals, silent, though
    // well within the hour that holds for a host without heartbeats.
    let dir = heartbeat_on(&central, "q2.example.net", &beat(0, "on"));
    shift_times(&dir, -20 * 60 * 1_000_000).unwrap();
    age(&central.join("q2.example.net"), "20 minutes ago");
    // q3 beats, but its sudo importer is two hours behind and exec audit is off.
    heartbeat_on(&central, "q3.example.net", &beat(7200, "off"));

    let o = sessrec(&central, &["hosts", "--prom", prom.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = text(&o);
    let section = |host: &str| -> String {
        out.split("\n")
            .skip_while(|l| !l.starts_with(host))
            .take_while(|l| l.starts_with(host) || l.starts_with("    "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(section("q1.example.net").contains(" ok"), "{out}");
    assert!(
        section("q2.example.net").contains("silent: nothing arrived for 20m"),
        "{out}"
    );
    let q3 = section("q3.example.net");
    assert!(
        q3.contains("sudo-iolog-import is 2h00m behind its input"),
        "{out}"
    );
    assert!(q3.contains("exec audit is off"), "{out}");
    assert!(!q3.contains("sessrec-audit-import is"), "{out}");
    let metrics = std::fs::read_to_string(&prom).unwrap();
    for m in [
        "sessrec_host_import_lag_seconds{host=\"q3.example.net\",importer=\"sudo-iolog-import\"} 7200",
        "sessrec_host_exec_audit_on{host=\"q3.example.net\",state=\"off\"} 0",
        "sessrec_host_exec_audit_on{host=\"q1.example.net\",state=\"on\"} 1",
        "sessrec_host_record_disk_free_bytes{host=\"q1.example.net\"} 5242880000",
        "sessrec_host_problems{host=\"q3.example.net\"} 2",
    ] {
        assert!(metrics.contains(m), "{m} in {metrics}");
    }

    // Thresholds are options: a longer silence and lag allowed, only audit-off remains.
    let o = sessrec(
        &central,
        &[
            "hosts",
            "--silent-after",
            "1h",
            "--lag-after",
            "3h",
            "--json",
        ],
    );
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1]["problems"].as_array().unwrap().len(), 0, "{rows:?}");
    assert_eq!(rows[2]["problems"].as_array().unwrap().len(), 1, "{rows:?}");
    assert_eq!(rows[2]["heartbeat"]["sudo_import_lag"], 7200, "{rows:?}");
}

#[test]
fn heartbeat_appends_a_chained_host_record() {
    let t = TempDir::new("heartbeat-cmd");
    let (records, iolog) = (t.join("records"), t.join("sudo-io"));
    std::fs::create_dir_all(&records).unwrap();
    std::fs::create_dir_all(&iolog).unwrap();
    age(&iolog, "2 hours ago");
    let config = t.join("sessrec.toml");
    std::fs::write(
        &config,
        format!(
            "record_dir = {:?}\n[sudo]\niolog_dirs = [{:?}]\nstate_file = {:?}\n[audit]\nlog_file = {:?}\nstate_file = {:?}\n",
            records,
            iolog,
            t.join("sudo.state"),
            t.join("none.log"),
            t.join("audit.state")
        ),
    )
    .unwrap();
    for _ in 0..2 {
        let o = Command::new(env!("CARGO_BIN_EXE_sessrec"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "heartbeat",
                "--interval",
                "1m",
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{o:?}");
    }
    let dir = records.join(sessrec::heartbeat::HOST_DIR);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let path = files[0].path();
    let report = sessrec_core::reader::verify_lines(
        sessrec_core::reader::LineIter::new(std::fs::File::open(&path).unwrap()),
        path.file_name().unwrap().to_str().unwrap(),
    )
    .unwrap();
    assert!(report.ok && report.lines == 2, "{report:?}");
    let body = std::fs::read_to_string(&path).unwrap();
    assert_eq!(body.lines().count(), 2, "{body}");
    let line = sessrec_core::schema::Line::from_map(
        serde_json::from_str(body.lines().last().unwrap()).unwrap(),
    );
    let sessrec_core::schema::Event::Heartbeat(h) = line.event else {
        panic!("{body}");
    };
    assert_eq!(h.interval, Some(60));
    assert!(h.sudo_import_lag.unwrap() >= 7200, "{body}");
    assert_eq!(h.audit_import_lag, None, "{body}");
    assert!(
        h.record_disk_free_mb.is_some() && h.exec_audit.is_some(),
        "{body}"
    );
    // The host's own directory is no host of a central tree.
    let o = sessrec(&records, &["hosts"]);
    assert!(!text(&o).contains("\nhost "), "{o:?}");
}

/// Waits until the records' last changes are old enough for the verdict cache and the
/// catalog to keep them (a change within the same clock tick as their `stat` would not show).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2_200));
}

#[test]
fn the_catalog_never_hides_an_edit_made_after_it_was_written() {
    let f = fleet("central-catalog");
    let (host, id) = &f.ids[1];
    let dir = f.central.join(host).join(id.to_string());
    // The first list keeps each verdict; the next, once those have settled, the catalog.
    settle();
    let o = sessrec(&f.central, &["list"]);
    assert!(o.status.success(), "{o:?}");
    settle();
    let before = text(&sessrec(&f.central, &["list"]));
    let catalog = f
        .central
        .join(".sessrec-cache")
        .join(format!("{host}.catalog"));
    let kept = std::fs::read(&catalog).expect("list keeps a catalog per host");
    let has = |bytes: &[u8], word: &str| bytes.windows(word.len()).any(|w| w == word.as_bytes());
    assert!(has(&kept, &id.to_string()));
    // The verdict cache is out of the way (unreadable, rewritten in place so the directory
    // stays as catalogued): only the catalog could answer stale.
    std::fs::write(dir.join(".verdict.json"), "not a verdict").unwrap();
    let o = sessrec(&f.central, &["list"]);
    assert_eq!(text(&o), before, "answered from the catalog");
    assert!(text(&o).contains("closed,verified"), "{}", text(&o));

    // An edited line, same length and mtime: the catalog's entry no longer matches.
    let file = dir.join("channel-1.jsonl");
    let before = std::fs::metadata(&file).unwrap();
    let body = std::fs::read_to_string(&file).unwrap();
    let edited = body.replacen("needle-2", "needle-8", 1);
    assert_eq!(edited.len(), body.len());
    std::fs::write(&file, &edited).unwrap();
    let stamp = format!(
        "@{}.{:09}",
        std::os::unix::fs::MetadataExt::mtime(&before),
        std::os::unix::fs::MetadataExt::mtime_nsec(&before)
    );
    let o = Command::new("touch")
        .args(["-d", &stamp])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let damaged = |f: &Fleet| {
        let o = sessrec(&f.central, &["list"]);
        let listed = text(&o);
        let row = listed
            .lines()
            .find(|l| l.contains(&id.to_string()))
            .unwrap()
            .to_string();
        assert!(row.contains("DAMAGED"), "{listed}");
    };
    damaged(&f);
    let o = sessrec(&f.central, &["hosts", "--silent-after", "3650d"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("chain broken"), "{}", text(&o));
    let o = sessrec(&f.central, &["search", "needle-8"]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("2 of 3 session(s) searched verified"),
        "{said}"
    );

    // The catalog as it was while the session was whole, put back: its entry is of files
    // that are no longer as they were, and is not believed.
    std::fs::write(&catalog, &kept).unwrap();
    damaged(&f);
    // (A forged catalog is refused when anyone but the reader could have written it: see
    // the catalog's own tests, which write one.)
}

#[test]
fn a_lone_sudo_session_of_a_central_tree_stays_unattributed_when_catalogued() {
    use sessrec_core::record::{FileContext, Stream};
    use sessrec_core::writer::{RecordWriter, WriterOptions};
    let f = fleet("central-lone-sudo");
    let host = "b2.example.net";
    let id = id_at(1_764_000_100_000).unwrap();
    let dir = f.central.join(host).join(id.to_string());
    std::fs::create_dir(&dir).unwrap();
    let name = "sudo-00000000000000ab.jsonl";
    let ctx = FileContext {
        host: host.into(),
        session: id,
        file: name.into(),
        user: "srt-root".into(),
        actor: "srt-root".into(),
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(name))
        .unwrap();
    let mut w = RecordWriter::new(file, ctx, WriterOptions::default()).unwrap();
    let fields = |v: serde_json::Value| v.as_object().unwrap().clone();
    w.event(
        "sudo.start",
        fields(serde_json::json!({"runuser": "root", "command": "/usr/bin/id"})),
    )
    .unwrap();
    w.io(Stream::Output, 1000, b"uid=0(root)\r\n").unwrap();
    w.event("sudo.end", fields(serde_json::json!({"exit_code": 0})))
        .unwrap();
    w.close().unwrap();
    // Read afresh, then kept (verdict, then catalog), then from the catalog: the same rows.
    let row = || {
        let o = sessrec(&f.central, &["list"]);
        text(&o)
            .lines()
            .find(|l| l.contains(&id.to_string()))
            .unwrap_or_else(|| panic!("{o:?}"))
            .to_string()
    };
    let first = row();
    assert!(first.contains(&format!("unattributed/{id}")), "{first}");
    assert!(first.contains("closed,verified"), "{first}");
    settle();
    assert_eq!(row(), first);
    settle();
    assert_eq!(row(), first);
    let catalog = f
        .central
        .join(".sessrec-cache")
        .join(format!("{host}.catalog"));
    let kept = std::fs::read(&catalog).unwrap();
    let name = id.to_string();
    assert!(kept.windows(name.len()).any(|w| w == name.as_bytes()));
    assert_eq!(row(), first, "from the catalog");
}

#[test]
fn search_finds_text_that_json_escapes() {
    let t = TempDir::new("central-escapes");
    let (stage, central) = (t.join("stage"), t.join("central"));
    // A quote, a backslash and a tab are escaped in the record's JSON.
    let word = "say\"hi\\there\tnow";
    let id = session_on(&stage, &central, "b1.example.net", 1_764_000_000_000, word);
    let o = sessrec(&central, &["search", "--fixed-strings", word]);
    assert!(o.status.success(), "{o:?}");
    assert!(text(&o).contains(&id.to_string()), "{}", text(&o));
    let o = sessrec(&central, &["search", "--fixed-strings", "say\"hi\\there"]);
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn hosts_checks_the_heartbeat_chain_and_hosts_and_hold_are_logged() {
    let t = TempDir::new("central-beat-chain");
    let central = t.join("central");
    heartbeat_on(&central, "c1.example.net", &beat(0, "on"));
    let dir = heartbeat_on(&central, "c1.example.net", &beat(0, "on"));
    let o = sessrec(&central, &["hosts"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // The first heartbeat edited on the central host: the chain no longer holds.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let body = std::fs::read_to_string(&file).unwrap();
    let edited = body.replacen(
        "\"record_disk_free_mb\":5000",
        "\"record_disk_free_mb\":9000",
        1,
    );
    assert_ne!(edited, body);
    std::fs::write(&file, edited).unwrap();
    let o = sessrec(&central, &["hosts"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        text(&o).contains("heartbeat chain broken: heartbeat-"),
        "{}",
        text(&o)
    );
    let o = sessrec(&central, &["hold"]);
    assert!(o.status.success(), "{o:?}");
    let logged: String = std::fs::read_dir(central.join("access"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(logged.contains("\"hosts\""), "{logged}");
    assert!(logged.contains("\"hold\""), "{logged}");
}
