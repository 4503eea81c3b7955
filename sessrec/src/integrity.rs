//! The integrity check every view runs on what it reads: the same checks as `sessrec verify`
//! (hash chains, completeness against the logout, syslog anchors when given), summed up as a
//! [`Verdict`].
#![forbid(unsafe_code)]

use crate::context::{Context, Failure};
use crate::store::{session_files, SessionRef};
use crate::verdict::{Status, Verdict};
use crate::verify::{check_anchors, parse_anchors, AnchorLine, Severity};

/// The anchors named by `--anchors FILE`, if given.
pub fn anchors_arg(ctx: &Context) -> Result<Option<Vec<AnchorLine>>, Failure> {
    let Some(path) = ctx.args.value("--anchors") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::error(format!("cannot read anchors {path}: {e}")))?;
    let anchors = parse_anchors(&text);
    if anchors.is_empty() {
        return Err(Failure::error(format!(
            "{path} holds no `sessrec anchor` lines"
        )));
    }
    Ok(Some(anchors))
}

/// Uids whose anchors are trusted: root and the `sessrec` user.
pub fn trusted_anchor_uids() -> Vec<u32> {
    let mut v = vec![0];
    if let Ok(Some(u)) = nix::unistd::User::from_name("sessrec") {
        v.push(u.uid.as_raw());
    }
    v
}

/// Checks one session.
pub fn check(session: &SessionRef, host: &str, anchors: Option<&[AnchorLine]>) -> Verdict {
    let unverifiable = |reason: String| Verdict {
        session: session.id.clone(),
        status: Status::Unverifiable { reason },
        anchors: None,
        problems: Vec::new(),
    };
    // What cannot be read cannot be checked: say so rather than call it damaged.
    let files = match session_files(&session.dir) {
        Ok(f) => f,
        Err(e) => return unverifiable(format!("cannot read {}: {e}", session.dir.display())),
    };
    if files.is_empty() {
        return unverifiable("the session directory holds no record files".into());
    }
    for (_, name, path) in &files {
        if let Err(e) = sessrec_core::stored::open(path) {
            return unverifiable(format!("cannot read {name}: {e}"));
        }
    }
    let mut result = crate::verdict_cache::verify_cached(session, host);
    let anchors_checked = anchors.map(|a| {
        check_anchors(session, a, &trusted_anchor_uids(), &mut result);
        let prefix = format!("{}/", session.id);
        a.iter()
            .filter(|x| x.file.contains(&prefix) || x.file.starts_with(&prefix))
            .count()
    });
    let name = |p: &std::path::Path| {
        crate::escape::escape_control(
            &p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
        )
    };
    let status = match result.worst() {
        None => Status::Verified { live: result.live },
        Some(Severity::Incomplete) => {
            let p = &result.problems[0];
            Status::Incomplete {
                problem: format!("{}: {}", name(&p.file), p.text),
            }
        }
        Some(Severity::Broken) => {
            // The first damaged line of the first damaged file, else the first whole-file problem.
            let broken = result
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Broken);
            let p = broken
                .clone()
                .find(|p| p.line > 0)
                .or_else(|| broken.clone().next())
                .unwrap_or(&result.problems[0]);
            Status::Damaged {
                file: name(&p.file),
                line: p.line,
                problem: p.text.clone(),
            }
        }
    };
    Verdict {
        session: session.id.clone(),
        status,
        anchors: anchors_checked,
        problems: result.problem_strings(),
    }
}
