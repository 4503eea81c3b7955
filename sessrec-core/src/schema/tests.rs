use serde_json::json;

use super::*;

fn map(v: Value) -> Fields {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn a_line_splits_into_header_and_typed_event() {
    let line = Line::from_map(map(json!({
        "v": 1, "type": "channel.start", "seq": 1, "time": "2026-11-24T10:00:00.000001Z",
        "host": "h", "session": "s", "file": "channel-1.jsonl", "user": "u", "actor": "a",
        "prev": "00", "kind": "shell", "mode": "pty", "pty": "/dev/pts/7", "cols": 80,
    })));
    assert_eq!(line.header.seq, Some(1));
    assert_eq!(line.header.user.as_deref(), Some("u"));
    let Event::ChannelStart(start) = &line.event else {
        panic!("{:?}", line.event)
    };
    assert_eq!(start.pty.as_deref(), Some("/dev/pts/7"));
    assert_eq!(start.cols, Some(80));
    assert!(start.extra.is_empty(), "header keys are not event fields");
}

#[test]
fn unknown_fields_are_kept_and_written_back() {
    let fields = map(json!({"reason": "exit", "exit_code": 0, "cgroup_peak_kib": 512}));
    let Event::ChannelEnd(end) = Event::from_fields("channel.end", fields.clone()) else {
        panic!()
    };
    assert_eq!(end.extra["cgroup_peak_kib"], 512);
    assert_eq!(end.to_fields().unwrap(), fields);
}

#[test]
fn unknown_types_are_kept_whole() {
    let fields = map(json!({"conn": "10.0.0.1:22"}));
    let event = Event::from_fields("tunnel.open", fields.clone());
    assert_eq!(event.kind(), "tunnel.open");
    assert_eq!(event.to_fields(), fields);
    let Event::Unknown(u) = event else { panic!() };
    assert_eq!(u.problem, None);
}

#[test]
fn a_known_type_with_mistyped_fields_is_kept_with_the_problem() {
    let fields = map(json!({"cols": "wide"}));
    let Event::Unknown(u) = Event::from_fields("resize", fields.clone()) else {
        panic!()
    };
    assert_eq!(u.kind, "resize");
    assert_eq!(u.fields, fields);
    assert!(u.problem.is_some());
}

#[test]
fn a_null_exit_code_reads_back_as_written() {
    for fields in [
        json!({"reason": "hangup", "exit_code": null}),
        json!({"reason": "exit", "exit_code": 3}),
        json!({"reason": "exit", "signal": 9, "core_dumped": false}),
    ] {
        let end = ChannelEnd::from_fields(map(fields.clone())).unwrap();
        assert_eq!(Value::Object(end.to_fields().unwrap()), fields);
    }
}

#[test]
fn raw_identifiers_lose_their_prefix() {
    assert!(SudoStart::FIELDS.contains(&"match"));
    let start = SudoStart {
        r#match: Some("tty".into()),
        ..Default::default()
    };
    assert_eq!(start.to_fields().unwrap()["match"], "tty");
}

#[test]
fn no_event_field_is_a_header_key() {
    for (kind, fields) in known_types() {
        for f in *fields {
            assert!(!HEADER_KEYS.contains(f), "{kind}.{f} is a header key");
        }
    }
}

#[test]
fn every_type_is_listed_once() {
    let mut kinds: Vec<&str> = known_types().iter().map(|(k, _)| *k).collect();
    let n = kinds.len();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), n);
    for kind in kinds {
        assert!(
            !matches!(Event::from_fields(kind, Fields::new()), Event::Unknown(_)),
            "{kind}"
        );
    }
}

#[test]
fn login_fields_of_both_writers_read_back_whole() {
    let fields = map(json!({
        "actor_source": "certificate", "verified": true, "uid": 1001, "service": "sshd",
        "src_ip": "203.0.113.7", "src_port": 50000, "auth_methods": ["publickey"],
        "auth": [{"method": "publickey", "key_type": "ssh-ed25519-cert-v01@openssh.com",
                  "key_bits": 256, "key_fingerprint": "SHA256:k",
                  "certificate": {"type": "user", "key_id": "alice", "serial": 7,
                                  "principals": ["alice"], "valid_after": 0,
                                  "valid_before": 18446744073709551615u64,
                                  "critical_options": {}, "extensions": ["permit-pty"],
                                  "ca_key_type": "ssh-ed25519", "ca_fingerprint": "SHA256:ca",
                                  "ca_trusted": true}}],
        "certificate": {"key_id": "alice", "serial": 7, "principals": ["alice"],
                        "valid_after": 0, "valid_before": 1, "ca_fingerprint": "SHA256:ca",
                        "ca_trusted": true},
        "launch": "login-shell", "shell": "/usr/sbin/sessrec-shell", "config": "/etc/x.toml",
        "monitor_pid": 4242, "module_version": "0.1.0",
        "ssh_connection_hint": {"src_ip": "1.2.3.4", "src_port": null, "dst_ip": "5.6.7.8",
                                "dst_port": 22},
    }));
    let login = Login::from_fields(fields.clone()).unwrap();
    assert!(login.extra.is_empty(), "{:?}", login.extra);
    assert_eq!(login.to_fields().unwrap(), fields);
}

#[test]
fn newer_fields_leave_out_the_markers_of_known_fields() {
    let fields = map(json!({
        "kind": "shell", "term": "xterm", "term_truncated": 300, "shell_b64": "AA==",
        "cgroup": "/user.slice",
    }));
    let event = Event::from_fields("channel.start", fields);
    let newer: Vec<&str> = event.newer_fields().into_iter().map(|(k, _)| k).collect();
    assert_eq!(newer, ["cgroup"]);
    let unknown = Event::from_fields("tunnel.open", map(json!({"conn": 1})));
    assert!(unknown.newer_fields().is_empty());
}

#[test]
fn at_and_off_come_from_the_events_that_have_them() {
    let resize = Event::from_fields(
        "resize",
        map(json!({"at": "2026-11-24T10:00:00.000000Z", "off": 7, "cols": 80, "rows": 24})),
    );
    assert_eq!(resize.at(), Some("2026-11-24T10:00:00.000000Z"));
    assert_eq!(resize.off(), Some(7));
    let start = Event::from_fields("channel.start", map(json!({"mono_us": 5})));
    assert_eq!((start.at(), start.off()), (None, None));
}

#[test]
fn a_line_of_a_newer_schema_version_is_read_with_these_types() {
    let line =
        Line::parse(br#"{"v":2,"type":"notice","seq":3,"message":"hi","off":1,"severity":"low"}"#)
            .unwrap();
    assert_eq!(line.header.v, Some(2));
    let Event::Notice(n) = &line.event else {
        panic!("{:?}", line.event)
    };
    assert_eq!(n.message.as_deref(), Some("hi"));
    assert_eq!(n.extra["severity"], "low");
}
