//! rsync channels: the protocol is not decoded; the command line says what and which way.
#![forbid(unsafe_code)]

use super::event::TransferEvent;

/// What an accepted `rsync --server` argv tells about the transfer.
pub struct RsyncCommand {
    options: Vec<String>,
    paths: Vec<String>,
}

impl RsyncCommand {
    /// `argv` as accepted by `classify`: `rsync --server [--sender] OPTIONS . PATH...`.
    pub fn new(argv: &[String]) -> Self {
        let args: Vec<&String> = argv
            .iter()
            .skip(1)
            .filter(|a| *a != "--server" && *a != "--sender")
            .collect();
        let dot = args.iter().position(|a| *a == ".").unwrap_or(args.len());
        RsyncCommand {
            options: args[..dot].iter().map(|s| (*s).clone()).collect(),
            paths: args
                .get(dot + 1..)
                .unwrap_or_default()
                .iter()
                .map(|s| (*s).clone())
                .collect(),
        }
    }

    /// Adds `paths` (the server-side operands) and `options` to the summary. Both are
    /// already bounded: `classify` accepts no word longer than a path may be.
    pub fn describe(&self, ev: &mut TransferEvent) {
        ev.paths = Some(self.paths.clone());
        ev.options = Some(self.options.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::{classify, Direction, TransferConfig, TransferKind};
    use serde_json::json;

    #[test]
    fn paths_and_options_come_from_the_argv() {
        let cmd = classify(
            "rsync --server --sender -logDtprze.iLsfxCIvu . /srv/a /srv/b",
            false,
            &TransferConfig::default(),
        )
        .expect("a transfer");
        assert_eq!(
            cmd.kind,
            TransferKind::Rsync {
                direction: Direction::Download
            }
        );
        let r = RsyncCommand::new(&cmd.argv);
        let mut ev = TransferEvent::new(crate::transfer::Protocol::Rsync, "summary");
        r.describe(&mut ev);
        assert_eq!(ev.get("paths"), Some(json!(["/srv/a", "/srv/b"])));
        assert_eq!(ev.get("options"), Some(json!(["-logDtprze.iLsfxCIvu"])));
    }
}
