//! A connect channel from start to end: `channel.start`, the policy's answer, the connection,
//! the relay, `forward.open` / `forward.close`, `channel.end`. A refusal or a failure is
//! recorded like a connection.
#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use sessrec_core::forward::Decision;
use sessrec_core::schema::{ChannelEnd, ChannelStart, ForwardClose, ForwardOpen};
use sessrec_core::sys::{syslog_authpriv, Level};
use sessrec_core::tree::SessionDir;

use super::{err, finish_own_session, OwnSession, Setup};
use crate::forward::ConnectRequest;
use crate::recording::ChannelRecorder;
use crate::relay::{Client, ForwardRelay, IdlePolicy};
use crate::start_error::StartError;
use crate::sys;
use crate::terminal::RawModeGuard;
use sessrec_core::pcap::PcapWriter;

/// What a connect channel needs beside the shared set-up.
pub(super) struct ForwardChannel<'a> {
    pub request: &'a ConnectRequest,
    pub file_name: &'a str,
    pub recorder_user: &'a sys::Passwd,
}

/// The record's end of a channel that did not connect.
struct NotConnected {
    result: &'static str,
    reason: String,
    address: Option<String>,
    rule: Option<String>,
}

impl Setup {
    pub(super) fn run_forward(
        &self,
        channel: ForwardChannel<'_>,
        mut recorder: ChannelRecorder,
        own_session: Option<OwnSession>,
    ) -> Result<i32, StartError> {
        let request = channel.request;
        // The recorder itself carries the forwarded connection: it is the channel's process.
        let start = ChannelStart {
            pid: Some(sys::getpid().as_raw()),
            ..self.channel_start(&recorder, "forward", "pipe")
        };
        self.write_start(&mut recorder, start);

        let resolved = request.resolve();
        let decision = match &resolved {
            Ok(addrs) if !addrs.is_empty() => self.config.forward.decide(
                &self.user.name,
                &self.group_names,
                &request.host,
                request.port,
                addrs,
            ),
            _ => Decision::Refused(String::new()),
        };
        let (addr, record_payload, rule) = match (decision, resolved) {
            (
                Decision::Allowed {
                    addr,
                    record_payload,
                    rule,
                },
                _,
            ) => (addr, record_payload, rule),
            (Decision::Refused(reason), Ok(addrs)) if !addrs.is_empty() => {
                return self.forward_not_connected(
                    &channel,
                    recorder,
                    own_session,
                    NotConnected {
                        result: "refused",
                        reason,
                        address: None,
                        rule: None,
                    },
                )
            }
            (_, resolved) => {
                let reason = match resolved {
                    Ok(_) => format!("{} has no address", request.host),
                    Err(e) => format!("{} does not resolve: {e}", request.host),
                };
                return self.forward_not_connected(
                    &channel,
                    recorder,
                    own_session,
                    NotConnected {
                        result: "unresolved",
                        reason,
                        address: None,
                        rule: None,
                    },
                );
            }
        };

        // The PCAP file is created as root in the root-only session directory, before the drop.
        let pcap_name = record_payload.then(|| request.pcap_name(addr));
        let pcap_file = match &pcap_name {
            None => None,
            Some(name) => match self.open_session_pcap(name) {
                Ok(file) => Some(file),
                Err(e) => {
                    return self.forward_not_connected(
                        &channel,
                        recorder,
                        own_session,
                        NotConnected {
                            result: "failed",
                            reason: format!("cannot create the PCAP file {name}: {e}"),
                            address: Some(addr.to_string()),
                            rule: Some(rule),
                        },
                    )
                }
            },
        };
        let signal_fd = sys::signal_pipe(&[libc::SIGHUP, libc::SIGTERM])
            .map_err(|e| err(format!("signal setup failed: {e}")))?;
        self.drop_recorder_privileges(channel.recorder_user)?;

        let target = SocketAddr::new(addr, request.port);
        let timeout = Duration::from_secs(self.config.forward.connect_timeout_s);
        let socket = match TcpStream::connect_timeout(&target, timeout) {
            Ok(socket) => socket,
            Err(e) => {
                return self.forward_not_connected(
                    &channel,
                    recorder,
                    own_session,
                    NotConnected {
                        result: "failed",
                        reason: format!("connect: {e}"),
                        address: Some(addr.to_string()),
                        rule: Some(rule),
                    },
                )
            }
        };
        let local = socket.local_addr().ok();
        let _ = socket.set_nodelay(true);
        let pcap = match (pcap_file, local) {
            (Some(file), Some(local)) => match PcapWriter::start(file, local, target) {
                Ok(w) => Some(w),
                Err(e) => {
                    recorder.write(&sessrec_core::schema::Error {
                        message: Some(format!("the PCAP file cannot be written: {e}")),
                        ..Default::default()
                    });
                    None
                }
            },
            _ => None,
        };
        recorder.write(&ForwardOpen {
            destination: Some(request.host.clone()),
            port: Some(request.port),
            address: Some(addr.to_string()),
            result: Some("connected".into()),
            rule: Some(rule),
            record_payload: Some(record_payload),
            pcap: pcap.as_ref().and(pcap_name.clone()),
            local_address: local.map(|l| l.ip().to_string()),
            local_port: local.map(|l| l.port()),
            ..Default::default()
        });
        syslog_authpriv(
            Level::Info,
            &format!(
                "session {} user {}: forwarding to {} port {} ({addr})",
                self.session, self.user.name, request.host, request.port
            ),
        );

        let guard = RawModeGuard::new(&[sys::StdFd::Input, sys::StdFd::Output])
            .map_err(|e| err(format!("descriptor setup failed: {e}")))?;
        if let Err(e) = socket.set_nonblocking(true) {
            return Err(err(format!("socket setup failed: {e}")));
        }
        let began = Instant::now();
        let relay = ForwardRelay {
            client: Client::standard(),
            socket,
            signal_fd: signal_fd.as_fd(),
            recorder: &mut recorder,
            pcap,
            pcap_cap: self.config.recorder.max_channel_bytes,
            idle: IdlePolicy::new(self.config.recorder.idle_timeout_s, 0),
        };
        let end = relay.run();
        drop(guard);
        let mut close = ForwardClose {
            destination: Some(request.host.clone()),
            port: Some(request.port),
            address: Some(addr.to_string()),
            bytes_to_destination: Some(end.to_destination),
            bytes_from_destination: Some(end.from_destination),
            duration_us: Some(began.elapsed().as_micros() as u64),
            result: Some(end.result.into()),
            reason: end
                .reason
                .or(end.pcap_error.map(|e| format!("PCAP file: {e}"))),
            pcap_truncated_bytes: (end.pcap_truncated > 0).then_some(end.pcap_truncated),
            ..Default::default()
        };
        if let Some(pcap) = end.pcap {
            close.pcap = pcap_name;
            match pcap.finish() {
                Ok((bytes, sha)) => {
                    close.pcap_bytes = Some(bytes);
                    close.pcap_sha256 = Some(sha);
                }
                Err(e) => close.reason = Some(format!("PCAP file: {e}")),
            }
        }
        recorder.write(&close);
        let anchor = recorder.finish(ChannelEnd {
            reason: Some("exit".into()),
            exit_code: Some(Some(0)),
            ..Default::default()
        });
        if let Some(own) = own_session {
            finish_own_session(own, channel.file_name, anchor.as_ref());
        }
        Ok(0)
    }

    /// Records a request that got no connection and tells the user why.
    fn forward_not_connected(
        &self,
        channel: &ForwardChannel<'_>,
        mut recorder: ChannelRecorder,
        own_session: Option<OwnSession>,
        not: NotConnected,
    ) -> Result<i32, StartError> {
        let request = channel.request;
        recorder.write(&ForwardOpen {
            destination: Some(request.host.clone()),
            port: Some(request.port),
            address: not.address,
            result: Some(not.result.into()),
            reason: Some(not.reason.clone()),
            rule: not.rule,
            ..Default::default()
        });
        let refused = not.result == "refused";
        let anchor = recorder.finish(ChannelEnd {
            reason: Some(if refused { "refused" } else { "exit" }.into()),
            exit_code: Some(if refused { None } else { Some(1) }),
            ..Default::default()
        });
        if let Some(own) = own_session {
            finish_own_session(own, channel.file_name, anchor.as_ref());
        }
        let message = format!(
            "forwarding to {} port {} {}: {}",
            request.host, request.port, not.result, not.reason
        );
        syslog_authpriv(
            if refused { Level::Warning } else { Level::Info },
            &format!(
                "session {} user {}: {message}",
                self.session, self.user.name
            ),
        );
        if refused {
            Err(StartError::Refused(message))
        } else {
            eprintln!("sessrec-shell: {message}");
            Ok(1)
        }
    }

    /// The destination's PCAP file in this session's directory (root-owned, as the record
    /// files), shared by the login's connections to it.
    fn open_session_pcap(&self, name: &str) -> std::io::Result<std::fs::File> {
        let read_gid = if self.config.read_group.is_empty() {
            None
        } else {
            sys::group_gid(&self.config.read_group)
                .ok()
                .flatten()
                .map(sys::Gid::as_raw)
        };
        SessionDir::create(&self.config.record_dir, self.session, read_gid)?.open_shared_file(name)
    }
}
