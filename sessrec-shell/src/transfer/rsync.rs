//! rsync channels: the protocol is not decoded; the command line says what and which way.
#![forbid(unsafe_code)]

use super::event::TransferEvent;

/// What an accepted `rsync --server` argv tells about the transfer.
pub struct RsyncCommand {
    options: Vec<String>,
    paths: Vec<String>,
}

impl RsyncCommand {
    /// The operands `classify` read from an accepted `rsync --server` argv.
    pub fn new(options: Vec<String>, paths: Vec<String>) -> Self {
        RsyncCommand { options, paths }
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
    use crate::transfer::{classify, Direction, Operands, TransferConfig, TransferKind};
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
        let Operands::Rsync { options, paths } = cmd.operands else {
            panic!("rsync operands: {cmd:?}");
        };
        let r = RsyncCommand::new(options, paths);
        let mut ev = TransferEvent::new(crate::transfer::Protocol::Rsync, "summary");
        r.describe(&mut ev);
        assert_eq!(ev.get("paths"), Some(json!(["/srv/a", "/srv/b"])));
        assert_eq!(ev.get("options"), Some(json!(["-logDtprze.iLsfxCIvu"])));
    }
}
