//! The user notice (`[recorder] notice`): shown on the terminal of every pty channel before its
//! command runs, and recorded either way, so the record proves what each user was told — or
//! why a channel had nothing to show it on.
#![forbid(unsafe_code)]

use std::os::fd::AsFd;

use sessrec_core::bounds::set_bounded;
use sessrec_core::id::SessionId;
use sessrec_core::record::Stream;
use sessrec_core::schema::{user_notice, UserNotice};

use crate::recording::ChannelRecorder;
use crate::relay::notify::say;
use crate::sys::StdFd;

/// Longest notice text kept in the record (the configuration is root's; this only keeps the
/// line within bounds).
const TEXT_MAX: usize = 4096;

/// What the channel does about the notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNoticePlan {
    /// Written to the terminal.
    Terminal { text: String },
    /// The configured notice is empty.
    NotConfigured,
    /// A pipe channel: its bytes belong to the command and its protocol.
    NoTerminal,
}

impl UserNoticePlan {
    /// A pty channel's notice: the configured text with `{session}` replaced.
    pub fn for_terminal(configured: &str, session: SessionId) -> Self {
        if configured.is_empty() {
            UserNoticePlan::NotConfigured
        } else {
            UserNoticePlan::Terminal {
                text: configured.replace("{session}", &session.to_string()),
            }
        }
    }

    /// Shows the notice on the outer terminal (fd 1) and records what was done.
    pub fn show_and_record(self, recorder: &mut ChannelRecorder) {
        self.show_and_record_on(StdFd::Output, recorder);
    }

    fn show_and_record_on(self, terminal: impl AsFd, recorder: &mut ChannelRecorder) {
        let mut event = UserNotice {
            off: Some(recorder.offset_us()),
            ..Default::default()
        };
        let mut shown_bytes = None;
        match self {
            UserNoticePlan::Terminal { text } => {
                let on_screen = format!("{text}\r\n");
                let shown = say(&terminal, &on_screen);
                if shown {
                    // Bytes the terminal got: in the output stream too, so that replay shows
                    // what the user saw and the output is the terminal's, byte for byte.
                    shown_bytes = Some(on_screen);
                }
                event.shown = Some(shown);
                set_bounded(
                    &mut event.text,
                    &mut event.extra,
                    user_notice::text,
                    &text,
                    TEXT_MAX,
                );
                if !shown {
                    event.reason = Some("terminal_write_failed".into());
                }
            }
            UserNoticePlan::NotConfigured => {
                event.shown = Some(false);
                event.reason = Some("not_configured".into());
            }
            UserNoticePlan::NoTerminal => {
                event.shown = Some(false);
                event.reason = Some("no_terminal".into());
            }
        }
        recorder.write(&event);
        if let Some(bytes) = shown_bytes {
            recorder.output(Stream::Output, bytes.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::testing::{recorder, verified_lines};
    use crate::sys;
    use sessrec_core::schema::{ChannelEnd, Event, Line};
    use sessrec_core::testing::TempDir;

    /// The one `user_notice` line recorded, and the recorded output.
    fn recorded_notice(plan: UserNoticePlan, terminal: impl AsFd) -> (UserNotice, Vec<u8>) {
        let dir = TempDir::new("notice");
        let (mut rec, path) = recorder(dir.path(), 1 << 30);
        plan.show_and_record_on(terminal, &mut rec);
        rec.finish(ChannelEnd::default());
        let lines = verified_lines(&path);
        let output: Vec<u8> = lines
            .iter()
            .flat_map(sessrec_core::reader::decode_frames)
            .filter(|f| f.stream == Stream::Output)
            .flat_map(|f| f.data)
            .collect();
        let notices: Vec<UserNotice> = lines
            .into_iter()
            .filter_map(|line| match Line::from_map(line.value).event {
                Event::UserNotice(n) => Some(n),
                _ => None,
            })
            .collect();
        assert_eq!(notices.len(), 1, "{notices:?}");
        (notices.into_iter().next().unwrap(), output)
    }

    #[test]
    fn the_session_is_named_and_an_empty_notice_is_not_configured() {
        let id = SessionId::new().unwrap();
        assert_eq!(
            UserNoticePlan::for_terminal("Recorded as {session}.", id),
            UserNoticePlan::Terminal {
                text: format!("Recorded as {id}.")
            }
        );
        assert_eq!(
            UserNoticePlan::for_terminal("", id),
            UserNoticePlan::NotConfigured
        );
    }

    #[test]
    fn a_shown_notice_is_on_the_terminal_and_in_the_record() {
        let (r, w) = sys::pipe().unwrap();
        let (notice, output) = recorded_notice(
            UserNoticePlan::Terminal {
                text: "This session is recorded.".into(),
            },
            &w,
        );
        assert_eq!(output, b"This session is recorded.\r\n");
        assert_eq!(notice.shown, Some(true));
        assert_eq!(notice.text.as_deref(), Some("This session is recorded."));
        assert_eq!(notice.reason, None);
        assert!(notice.off.is_some());
        let mut buf = [0u8; 64];
        let n = sys::read(&r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"This session is recorded.\r\n");
    }

    #[test]
    fn a_notice_the_terminal_did_not_take_is_recorded_as_not_shown() {
        let (r, w) = sys::pipe().unwrap();
        drop(r);
        let (notice, output) = recorded_notice(
            UserNoticePlan::Terminal {
                text: "This session is recorded.".into(),
            },
            &w,
        );
        assert!(output.is_empty());
        assert_eq!(notice.shown, Some(false));
        assert_eq!(notice.reason.as_deref(), Some("terminal_write_failed"));
        assert_eq!(notice.text.as_deref(), Some("This session is recorded."));
    }

    #[test]
    fn pipe_channels_and_empty_notices_record_why_nothing_was_shown() {
        let (r, w) = sys::pipe().unwrap();
        for (plan, reason) in [
            (UserNoticePlan::NoTerminal, "no_terminal"),
            (UserNoticePlan::NotConfigured, "not_configured"),
        ] {
            let (notice, output) = recorded_notice(plan, &w);
            assert!(output.is_empty());
            assert_eq!(notice.shown, Some(false));
            assert_eq!(notice.reason.as_deref(), Some(reason));
            assert_eq!(notice.text, None);
        }
        sys::set_nonblocking(&r).unwrap();
        let mut buf = [0u8; 8];
        assert!(sys::read(&r, &mut buf).is_err(), "nothing was written");
    }
}
