//! Ending a live session from the console: offered only when `kill_group` is configured, to
//! members of that group (checked again at every request), as a CSRF-protected POST. The
//! access line is written before anything is signalled; the channels end through the same code
//! as `sessrec kill`, with the auditor (user, uid, browser address) as the operator that the
//! recorder writes into `channel.end`'s `ended_by`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use sessrec::kill::{end_live_channels, MAX_MESSAGE};
use sessrec_core::schema::KillRequest;

use crate::auth::{same_secret, Login};
use crate::pages::{esc, url_component};
use crate::server::{html, redirect, shown_id, App};

/// Whether `login` may end sessions: a kill group is configured and the user is in it.
pub fn may_kill(app: &App, login: &Login) -> bool {
    app.settings
        .kill_group
        .as_deref()
        .is_some_and(|g| crate::auth::member_of(&login.user, g).is_ok())
}

/// The form on a live session's page, for those who may end it.
pub fn form(app: &App, login: &Login, id: &str, live: bool) -> String {
    if !live || !may_kill(app, login) {
        return String::new();
    }
    format!(
        "<form method=\"post\" action=\"/kill\" id=\"kill\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
<label>Message to the user <input name=\"message\" id=\"kill-message\" maxlength=\"{MAX_MESSAGE}\"></label>\
<label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" id=\"kill-confirm\" required> end it now</label>\
<button type=\"submit\" id=\"kill-submit\">End this session</button></form>\n",
        esc(&login.csrf),
        esc(id)
    )
}

#[derive(Deserialize)]
pub struct KillForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    message: String,
    /// The form's checkbox: a stray click does not end a session.
    #[serde(default)]
    confirm: String,
}

fn refused(status: StatusCode, why: &str, login: Option<&Login>) -> Response {
    html(
        status,
        crate::pages::message_page(
            "Refused",
            why,
            login.map(|l| (l.user.as_str(), l.csrf.as_str())),
        ),
    )
}

pub async fn submit(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Form(form): Form<KillForm>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return redirect("/login");
    };
    if !same_secret(&login.csrf, &form.csrf) {
        eprintln!(
            "sessrec-web: kill by {} from {remote} refused: CSRF token missing or wrong",
            sessrec::escape::escape_control(&login.user)
        );
        return refused(
            StatusCode::FORBIDDEN,
            "CSRF token missing or wrong.",
            Some(&login),
        );
    }
    if form.message.len() > MAX_MESSAGE {
        return refused(
            StatusCode::BAD_REQUEST,
            "The message is longer than 1 KiB.",
            Some(&login),
        );
    }
    tokio::task::spawn_blocking(move || kill(&app, &login, remote, &form))
        .await
        .unwrap_or_else(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), None))
}

fn kill(app: &App, login: &Login, remote: crate::remote::Remote, form: &KillForm) -> Response {
    if !may_kill(app, login) {
        eprintln!(
            "sessrec-web: kill by {} from {remote} refused: not a member of the kill group",
            sessrec::escape::escape_control(&login.user)
        );
        return refused(
            StatusCode::FORBIDDEN,
            "Ending sessions needs membership of the kill group.",
            Some(login),
        );
    }
    if form.confirm != "yes" {
        return refused(
            StatusCode::BAD_REQUEST,
            "Tick \"end it now\" to end the session.",
            Some(login),
        );
    }
    let Some(session) = app.find(&form.id) else {
        return refused(StatusCode::NOT_FOUND, "No such session.", Some(login));
    };
    let id = shown_id(&session);
    let mut args = vec![id.clone()];
    if !form.message.is_empty() {
        args.push(format!("--message={}", form.message));
    }
    if let Err(r) = app.log(login, remote, "web-kill", &args, std::slice::from_ref(&id)) {
        return r;
    }
    let operator = crate::access::operator(login, remote);
    let request = KillRequest {
        message: (!form.message.is_empty()).then(|| form.message.clone()),
        operator: Some(operator),
        ..Default::default()
    };
    let outcome = end_live_channels(&session, None, &app.host, &request);
    let who = sessrec::escape::escape_control(&login.user);
    for note in &outcome.notes {
        eprintln!("sessrec-web: kill of {id} by {who}: {note}");
    }
    let mut body = String::from("<ul id=\"killed\">");
    for c in &outcome.channels {
        eprintln!(
            "sessrec-web: {who} from {remote} ended {id}/{}{}",
            c.name,
            if c.ended {
                ""
            } else {
                " (signalled, no channel.end yet)"
            }
        );
        body.push_str(&format!(
            "<li>{}: {}</li>",
            esc(c.name.trim_end_matches(".jsonl")),
            if c.ended {
                "ended"
            } else {
                "signalled (no channel.end yet)"
            }
        ));
    }
    body.push_str("</ul>");
    if let Some(e) = &outcome.error {
        eprintln!("sessrec-web: kill of {id} by {who}: {e}");
        body.push_str(&format!(
            "<p class=\"error\" id=\"kill-error\">{}</p>",
            esc(e)
        ));
    }
    body.push_str(&format!(
        "<p><a id=\"back\" href=\"/session?id={}\">back to the session</a></p>",
        url_component(&id)
    ));
    let status = if outcome.channels.is_empty() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    html(
        status,
        crate::pages::layout(
            &format!("End session {id}"),
            &body,
            Some((&login.user, &login.csrf)),
        ),
    )
}
