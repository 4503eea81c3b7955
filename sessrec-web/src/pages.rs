//! The console's HTML. Everything that comes from a record (names, addresses, commands, event
//! text) is escaped for HTML here and nowhere interpreted; the pages carry no inline script or
//! style (the CSP forbids both), only links to `/static/`.
#![forbid(unsafe_code)]

use sessrec::records::RecordFile;
use sessrec::summary::{State, Summary};
use sessrec::timespec::{format_duration, short_time};
use sessrec::verdict::Verdict;

use crate::listing::{ListQuery, HAS};
use crate::search::{Outcome, SearchQuery};

/// HTML-escapes text (control characters made visible first).
pub fn esc(text: &str) -> String {
    sessrec::html::html_escape(text)
}

/// Escapes a value for a URL query component.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A whole page; `user`/`csrf` give the logout form when someone is logged in.
pub fn layout(title: &str, body: &str, login: Option<(&str, &str)>) -> String {
    let nav = match login {
        Some((user, csrf)) => format!(
            "<nav><a href=\"/sessions\">Sessions</a> <a href=\"/search\">Search</a> <a href=\"/sessions?state=live\">Live</a> <span class=\"who\">{}</span> \
<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\">Log out</button></form></nav>",
            esc(user),
            esc(csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n\
<link rel=\"stylesheet\" href=\"/static/console.css\">\n</head><body>\n{nav}\n<h1>{title}</h1>\n{body}\n</body></html>\n",
        title = esc(title)
    )
}

pub fn login_page(csrf: &str, message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(m)))
        .unwrap_or_default();
    let body = format!(
        "{message}<form method=\"post\" action=\"/login\" id=\"login\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label>User <input name=\"user\" id=\"user\" autocomplete=\"username\" required></label>\
<label>Password <input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\" id=\"submit\">Log in</button></form>",
        esc(csrf)
    );
    layout("sessrec login", &body, None)
}

/// One row of the list: the summary and the integrity verdict of a session.
pub struct Row {
    pub id: String,
    pub summary: Summary,
    pub verdict: Verdict,
}

/// The filter form, refilled with the request's values.
fn filter_form(q: &ListQuery) -> String {
    let mut form = String::from("<form method=\"get\" action=\"/sessions\" id=\"filters\">");
    for (name, label) in [
        ("host", "Host"),
        ("user", "User"),
        ("actor", "Actor"),
        ("source", "Source"),
        ("since", "Since"),
        ("until", "Until"),
    ] {
        form.push_str(&format!(
            "<label>{label} <input name=\"{name}\" id=\"f-{name}\" value=\"{}\" size=\"12\"></label> ",
            esc(q.value(name))
        ));
    }
    form.push_str("<label>State <select name=\"state\" id=\"f-state\">");
    for state in ["any", "live", "closed", "damaged"] {
        let selected = if q.value("state") == state {
            " selected"
        } else {
            ""
        };
        form.push_str(&format!("<option{selected}>{state}</option>"));
    }
    form.push_str("</select></label> ");
    for (name, label) in HAS {
        let checked = if q.checked(name) { " checked" } else { "" };
        form.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"{name}\" id=\"f-{name}\" value=\"1\"{checked}> {label}</label> "
        ));
    }
    form.push_str("<button type=\"submit\" id=\"f-apply\">Filter</button> <a href=\"/sessions\">clear</a></form>\n");
    form
}

pub fn list_page(
    rows: &[Row],
    listing: (usize, usize, usize),
    query: &ListQuery,
    problem: Option<&str>,
    now_us: i64,
    login: (&str, &str),
) -> String {
    let (page, pages, total) = listing;
    let mut body = filter_form(query);
    if let Some(p) = problem {
        body.push_str(&format!(
            "<p class=\"error\" id=\"filter-error\">{}</p>\n",
            esc(p)
        ));
    }
    body.push_str(&format!(
        "<p id=\"count\">{total} session(s), newest first; page <span id=\"page\">{}</span> of {}.</p>\n\
<p id=\"refresh-status\"></p>\n<table id=\"sessions\" data-refresh=\"{}\"><thead><tr>\
<th>Host</th><th>User</th><th>Actor</th><th>Source</th><th>Start</th><th>Duration</th>\
<th>Channels</th><th>Sudo</th><th>Transfers</th><th>Execs</th><th>State</th><th>Integrity</th>\
</tr></thead><tbody>\n",
        page + 1,
        pages.max(1),
        crate::refresh::INTERVAL_SECONDS
    ));
    for r in rows {
        let s = &r.summary;
        let duration = match (s.end_us, s.state) {
            (Some(end), _) => format_duration(end - s.start_us),
            (None, State::Live) => format!("{}+", format_duration(now_us - s.start_us)),
            (None, _) => "?".into(),
        };
        let count = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        let integrity = if r.verdict.is_damaged() {
            "DAMAGED"
        } else {
            r.verdict.word()
        };
        let host = s.session.host.as_deref().unwrap_or(&s.host);
        body.push_str(&format!(
            "<tr><td>{}</td><td><a class=\"session\" href=\"/session?id={}\">{}</a></td><td>{}</td><td>{}</td>\
<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"state\">{}</td><td class=\"integrity\" title=\"{}\">{}</td></tr>\n",
            esc(host),
            url_component(&r.id),
            esc(if s.user.is_empty() { "-" } else { &s.user }),
            esc(&s.actor),
            esc(&s.src_ip),
            esc(&short_time(s.start_us)),
            esc(&duration),
            s.channels,
            s.sudo,
            s.transfers,
            esc(&count(s.execs)),
            esc(s.state.as_str()),
            esc(&r.verdict.summary()),
            esc(integrity),
        ));
    }
    body.push_str("</tbody></table>\n<p class=\"pages\">");
    if page > 0 {
        body.push_str(&format!(
            "<a id=\"newer\" href=\"/sessions?{}\">newer</a> ",
            esc(&query.with_page(page - 1))
        ));
    }
    if page + 1 < pages {
        body.push_str(&format!(
            "<a id=\"older\" href=\"/sessions?{}\">older</a>",
            esc(&query.with_page(page + 1))
        ));
    }
    // The page refreshes its rows itself (console.js, crate::refresh).
    body.push_str("</p>\n<script src=\"/static/console.js\"></script>");
    layout("Sessions", &body, Some(login))
}

/// HTML-escapes text whose control characters are already made visible (event text).
fn esc_visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub fn session_page(
    id: &str,
    summary: &Summary,
    channels: &[RecordFile],
    // Ready HTML: the kill form and the download links.
    actions: &str,
    login: (&str, &str),
) -> String {
    let mut body = format!(
        "<p id=\"integrity\" data-src=\"/integrity?id={}\">integrity: checking…</p>\n<dl>",
        url_component(id)
    );
    for (label, value) in [
        ("session", id),
        ("host", summary.host.as_str()),
        ("user", summary.user.as_str()),
        ("actor", summary.actor.as_str()),
        ("source", summary.src_ip.as_str()),
        ("state", summary.state.as_str()),
    ] {
        body.push_str(&format!("<dt>{label}</dt><dd>{}</dd>", esc(value)));
    }
    body.push_str(&format!(
        "<dt>start</dt><dd>{}</dd></dl>\n{actions}<h2>Channels</h2>\n<ul id=\"channels\">",
        esc(&short_time(summary.start_us))
    ));
    for f in channels {
        // A channel still being recorded can be followed as it is written.
        let follow = if summary.state == State::Live
            && summary
                .open_channels
                .iter()
                .any(|(name, _)| *name == f.name)
        {
            format!(
                " <a class=\"follow\" href=\"/play?id={}&amp;file={}&amp;follow=1\">follow live</a>",
                url_component(id),
                url_component(&f.name)
            )
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<li><a class=\"play\" href=\"/play?id={}&amp;file={}\">{}</a>{follow}</li>",
            url_component(id),
            url_component(&f.name),
            esc(&sessrec::playlist::banner(f))
        ));
    }
    // The timeline arrives in parts from /timeline (console.js), so that a long recording's
    // page and its players are there at once.
    body.push_str(&format!(
        "</ul>\n<h2>Timeline</h2>\n<p id=\"timeline-status\">loading the timeline…</p>\n\
<ol id=\"timeline\" data-src=\"/timeline?id={}\"></ol>\n<script src=\"/static/console.js\"></script>",
        url_component(id)
    ));
    layout(&format!("Session {id}"), &body, Some(login))
}

/// How the player page plays its channel.
pub enum Playback {
    /// The record, from its start or paused at a moment (seconds).
    Replay(Option<f64>),
    /// The live channel as it is written.
    Follow,
}

pub fn play_page(id: &str, file: &RecordFile, how: Playback, login: (&str, &str)) -> String {
    let (cols, rows) = file.geometry();
    let start = match how {
        Playback::Replay(Some(t)) => format!(" data-start=\"{t:.3}\""),
        Playback::Replay(None) => String::new(),
        Playback::Follow => format!(
            " data-live=\"/follow?id={}&amp;file={}\"",
            url_component(id),
            url_component(&file.name)
        ),
    };
    let body = format!(
        "<p><a href=\"/session?id={}\">back to the session</a></p>\n\
<p id=\"integrity\" data-src=\"/integrity?id={}\">integrity: checking…</p>\n<p>{}</p>\n\
<div id=\"player\" data-cast=\"/cast?id={}&amp;file={}\" data-cols=\"{cols}\" data-rows=\"{rows}\"{start}></div>\n\
<script src=\"/static/asciinema-player.min.js\"></script>\n<script src=\"/static/console.js\"></script>",
        url_component(id),
        url_component(id),
        esc(&sessrec::playlist::banner(file)),
        url_component(id),
        url_component(&file.name),
    );
    let mut page = layout(&format!("Session {id}"), &body, Some(login));
    page = page.replace(
        "<link rel=\"stylesheet\" href=\"/static/console.css\">",
        "<link rel=\"stylesheet\" href=\"/static/console.css\">\n<link rel=\"stylesheet\" href=\"/static/asciinema-player.css\">",
    );
    page
}

/// The search form, refilled, and the hits, each a link into the player at its moment.
pub fn search_page(
    q: &SearchQuery,
    outcome: Option<&Outcome>,
    problem: Option<&str>,
    login: (&str, &str),
) -> String {
    let mut body = String::from("<form method=\"get\" action=\"/search\" id=\"search\">");
    body.push_str(&format!(
        "<label>Find <input name=\"q\" id=\"s-q\" value=\"{}\" size=\"30\"></label> ",
        esc(&q.q)
    ));
    body.push_str("<label>in <select name=\"scope\" id=\"s-scope\">");
    for scope in ["both", "input", "output", "commands"] {
        let selected = if q.scope == scope { " selected" } else { "" };
        body.push_str(&format!("<option{selected}>{scope}</option>"));
    }
    body.push_str("</select></label> ");
    for (name, label, value) in [
        ("regex", "regular expression", &q.regex),
        ("icase", "ignore case", &q.icase),
    ] {
        let checked = if value.is_empty() { "" } else { " checked" };
        body.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"{name}\" id=\"s-{name}\" value=\"1\"{checked}> {label}</label> "
        ));
    }
    for (name, label, value) in [
        ("host", "Host", &q.host),
        ("user", "User", &q.user),
        ("since", "Since", &q.since),
        ("until", "Until", &q.until),
    ] {
        body.push_str(&format!(
            "<label>{label} <input name=\"{name}\" id=\"s-{name}\" value=\"{}\" size=\"10\"></label> ",
            esc(value)
        ));
    }
    body.push_str("<button type=\"submit\" id=\"s-go\">Search</button></form>\n");
    if let Some(p) = problem {
        body.push_str(&format!(
            "<p class=\"error\" id=\"search-error\">{}</p>\n",
            esc(p)
        ));
    }
    if let Some(o) = outcome {
        body.push_str(&format!(
            "<p id=\"hit-count\">{} hit(s) in {} session(s) searched, newest first{}.</p>\n\
<table id=\"hits\"><thead><tr><th>Time</th><th>Session</th><th>Host</th><th>User</th>\
<th>Channel</th><th>Stream</th><th>Context</th></tr></thead><tbody>\n",
            o.hits.len(),
            o.sessions_searched,
            if o.more {
                "; more not shown: narrow the search"
            } else if o.out_of_time {
                "; stopped after 20 seconds with older sessions not searched: narrow the search"
            } else {
                ""
            }
        ));
        for h in &o.hits {
            body.push_str(&format!(
                "<tr><td><a class=\"hit\" href=\"{}\">{}</a></td><td><a href=\"/session?id={}\">{}</a></td>\
<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"context\">{}</td></tr>\n",
                esc(&h.play_href()),
                esc(&sessrec::eventtext::timeline_time(h.at_us)),
                url_component(&h.session),
                esc(&h.session),
                esc(&h.host),
                esc(&h.user),
                esc(h.file.trim_end_matches(".jsonl")),
                h.stream,
                esc_visible(&sessrec::escape::escape_bytes(&h.context)),
            ));
        }
        body.push_str("</tbody></table>");
    }
    layout("Search", &body, Some(login))
}

pub fn message_page(title: &str, message: &str, login: Option<(&str, &str)>) -> String {
    layout(
        title,
        &format!("<p class=\"error\">{}</p>", esc(message)),
        login,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_cannot_open_a_tag() {
        assert_eq!(
            esc_visible("<img src=x onerror=alert(1)>\"'&"),
            "&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"
        );
        assert_eq!(esc("<script>\u{1b}"), "&lt;script&gt;\\e");
        assert_eq!(url_component("a/b&c d"), "a%2Fb%26c%20d");
    }
}
