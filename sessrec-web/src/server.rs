//! The HTTP side: routes, login and logout, the pages, the streamed cast. Record reads run on
//! the blocking pool; every page that shows record content is logged first ([`crate::access`]).
#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use sessrec::records::{session_record_files, RecordFile};
use sessrec::store::{SessionRef, Tree};

use crate::auth::{same_secret, Login, Sessions};
use crate::config::Settings;
use crate::listing::ListQuery;
use crate::pages;

/// Sessions on one page of the list.
pub const PAGE_SIZE: usize = 50;
/// Bytes of cast gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reader and the connection: bounds the memory per playback.
const CHUNKS_IN_FLIGHT: usize = 4;
pub(crate) const SESSION_COOKIE: &str = "sessrec_session";
const LOGIN_CSRF_COOKIE: &str = "sessrec_login_csrf";

/// No inline script or style, nothing from elsewhere; the player's WebAssembly needs
/// `wasm-unsafe-eval`.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

pub struct App {
    pub settings: Settings,
    pub tree: Tree,
    pub host: String,
    pub sessions: Sessions,
    pub throttle: crate::auth::Throttle,
    pub player_js: String,
    pub player_css: String,
    /// Built timelines of recently viewed sessions ([`crate::timeline`]).
    pub timelines: crate::timeline::Kept,
    /// What each login's lists have shown, for the access lines of refreshes.
    pub list_views: crate::refresh::ListViews,
}

impl App {
    pub fn new(settings: Settings) -> Result<App, String> {
        let player = sessrec::html::player_dir(settings.player.as_ref().and_then(|p| p.to_str()))
            .map_err(|e| e.message)?;
        let read = |name: &str| {
            std::fs::read_to_string(player.join(name))
                .map_err(|e| format!("{}: {e}", player.join(name).display()))
        };
        Ok(App {
            tree: Tree::new(settings.record_dir.clone()),
            host: sessrec_core::sys::hostname(),
            sessions: Sessions::new(settings.session_lifetime),
            throttle: Default::default(),
            timelines: Default::default(),
            list_views: Default::default(),
            player_js: read("asciinema-player.min.js")?,
            player_css: read("asciinema-player.css")?,
            settings,
        })
    }

    /// The session a request names, only when the tree has it under exactly that id (no prefix
    /// matching, no path: the id is checked by the tree's own parser).
    pub(crate) fn find(&self, id: &str) -> Option<SessionRef> {
        if id.is_empty() || id.len() > 300 {
            return None;
        }
        let s = match id.split_once('/') {
            // A central archive's `<host>/<id>`: looked up under that host only.
            Some((host, rest)) if host != "unattributed" => {
                if !sessrec::central::is_host_dir_name(host) {
                    return None;
                }
                let tree = Tree {
                    root: self.tree.root.clone(),
                    host_filter: Some(host.to_string()),
                };
                tree.resolve(rest).ok()?
            }
            _ => self.tree.resolve(id).ok()?,
        };
        (shown_id(&s) == id).then_some(s)
    }

    /// The logged-in auditor of a request.
    pub(crate) fn login(&self, headers: &HeaderMap) -> Option<(String, Login)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let login = self.sessions.get(&id)?;
        Some((id, login))
    }

    /// The session a request names, with the access line for viewing it written first
    /// (`command` with the session as both its argument and the session touched).
    pub(crate) fn find_logged(
        &self,
        login: &Login,
        remote: crate::remote::Remote,
        command: &str,
        id: &str,
    ) -> Result<(SessionRef, String), Response> {
        let Some(s) = self.find(id) else {
            return Err(not_found(login));
        };
        let id = shown_id(&s);
        self.log(
            login,
            remote,
            command,
            std::slice::from_ref(&id),
            std::slice::from_ref(&id),
        )?;
        Ok((s, id))
    }

    pub(crate) fn log(
        &self,
        login: &Login,
        remote: crate::remote::Remote,
        command: &str,
        args: &[String],
        sessions: &[String],
    ) -> Result<(), Response> {
        crate::access::log(
            &self.settings.record_dir,
            &self.host,
            login,
            remote,
            command,
            args,
            sessions,
        )
        .map_err(|e| {
            eprintln!("sessrec-web: refused a page: {e}");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::message_page(
                    "Refused",
                    "Every view of the records is logged, and the access log cannot be written.",
                    None,
                ),
            )
        })
    }
}

/// How a session is named in pages and requests.
/// `<host>/<id>` in a central archive, `unattributed/<name>` or `<id>` in a bastion's tree.
pub fn shown_id(s: &SessionRef) -> String {
    match &s.host {
        Some(host) => format!("{host}/{}", s.id),
        None if s.unattributed => format!("unattributed/{}", s.id),
        None => s.id.clone(),
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Headers every response carries.
fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

pub(crate) fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secured(r)
}

pub(crate) fn html(status: StatusCode, page: String) -> Response {
    response(status, "text/html; charset=utf-8", Body::from(page))
}

pub(crate) fn redirect(to: &'static str) -> Response {
    let mut r = response(StatusCode::SEE_OTHER, "text/plain", Body::empty());
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

/// For requests a script makes (casts, verdicts, live output): no login page to send it to.
fn unauthorized() -> Response {
    response(
        StatusCode::UNAUTHORIZED,
        "text/plain",
        Body::from("log in first"),
    )
}

pub(crate) fn not_found(login: &Login) -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::message_page(
            "Not found",
            "No such session or channel.",
            Some((&login.user, &login.csrf)),
        ),
    )
}

pub(crate) fn internal(what: String) -> Response {
    eprintln!("sessrec-web: {what}");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message_page("Error", &what, None),
    )
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { redirect("/sessions") }))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/sessions", get(list))
        .route("/session", get(session))
        .route("/timeline", get(timeline))
        .route("/search", get(search))
        .route("/play", get(play))
        .route("/cast", get(cast))
        .route("/follow", get(follow))
        .route("/integrity", get(integrity))
        .route("/static/{name}", get(asset))
        .route(
            "/favicon.ico",
            get(|| async { response(StatusCode::NO_CONTENT, "text/plain", Body::empty()) }),
        )
        .with_state(app)
}

async fn asset(
    State(app): State<Arc<App>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let (kind, body): (&'static str, Body) = match name.as_str() {
        "asciinema-player.min.js" => ("text/javascript", Body::from(app.player_js.clone())),
        "asciinema-player.css" => ("text/css", Body::from(app.player_css.clone())),
        "console.js" => (
            "text/javascript",
            Body::from(include_str!("../static/console.js")),
        ),
        "console.css" => (
            "text/css",
            Body::from(include_str!("../static/console.css")),
        ),
        _ => return response(StatusCode::NOT_FOUND, "text/plain", Body::from("not found")),
    };
    response(StatusCode::OK, kind, body)
}

/// The login form, with a fresh CSRF token in a cookie and in the form (both must come back).
fn login_response(status: StatusCode, message: Option<&str>) -> Response {
    let csrf = crate::auth::token();
    let mut r = html(status, pages::login_page(&csrf, message));
    let c =
        format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=900");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_form() -> Response {
    login_response(StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login_submit(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&expected, &form.csrf) {
        eprintln!("sessrec-web: login from {remote} refused: CSRF token missing or wrong");
        return login_response(
            StatusCode::FORBIDDEN,
            Some("The login form expired or was not sent by this console: try again."),
        );
    }
    if form.user.is_empty() || form.user.len() > 256 || form.password.len() > 4096 {
        return login_response(StatusCode::FORBIDDEN, Some("Login refused."));
    }
    if !app.throttle.allows(remote.ip(), &form.user) {
        eprintln!(
            "sessrec-web: login of {} from {remote} refused: too many failed attempts",
            sessrec::escape::escape_control(&form.user)
        );
        return login_response(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins: try again later."),
        );
    }
    let service = app.settings.pam_service.clone();
    let group = app.settings.group.clone();
    let user = form.user.clone();
    let rhost = remote.ip().to_string();
    let _slot = crate::auth::pam_slot().await;
    let outcome = tokio::task::spawn_blocking(move || {
        crate::sys::authenticate(&service, &user, &form.password, &rhost)?;
        crate::auth::member_of(&user, &group)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let shown = sessrec::escape::escape_control(&form.user);
    match outcome {
        Ok(uid) => {
            eprintln!("sessrec-web: {shown} logged in from {remote}");
            app.throttle.succeeded(remote.ip(), &form.user);
            let id = app.sessions.start(form.user, uid);
            let secure = if app.settings.tls { "; Secure" } else { "" };
            let c = format!(
                "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                app.sessions.lifetime().as_secs()
            );
            let mut r = redirect("/sessions");
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            eprintln!("sessrec-web: login of {shown} from {remote} refused: {e}");
            app.throttle.failed(remote.ip(), &form.user);
            login_response(StatusCode::FORBIDDEN, Some("Login refused."))
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((id, login)) = app.login(&headers) else {
        return redirect("/login");
    };
    if !same_secret(&login.csrf, &form.csrf) {
        return html(
            StatusCode::FORBIDDEN,
            pages::message_page("Refused", "CSRF token missing or wrong.", None),
        );
    }
    app.sessions.end(&id);
    let mut r = redirect("/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("sessrec_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// Runs a page's record reads on the blocking pool.
async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(|| {
        let page = f();
        crate::sys::release_free_memory();
        page
    })
    .await
    .unwrap_or_else(|e| internal(format!("a page failed: {e}")))
}

async fn list(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    // An open list page asking for itself again ([`crate::refresh`]).
    let refresh = headers.contains_key("x-sessrec-refresh");
    let Some((cookie, login)) = app.login(&headers) else {
        return if refresh {
            unauthorized()
        } else {
            redirect("/login")
        };
    };
    if refresh && !app.list_views.may_refresh(&cookie) {
        return response(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain",
            Body::from("refreshed too often"),
        );
    }
    blocking(move || {
        let began = std::time::Instant::now();
        let now = sessrec_core::time::Timestamp::now().as_micros();
        let (filter, problem) = match q.filter(now) {
            Ok(f) => (f, None),
            // A bad filter selects nothing rather than everything.
            Err(e) => (Default::default(), Some(e)),
        };
        let listing = if problem.is_some() {
            crate::listing::Listing {
                rows: Vec::new(),
                total: 0,
                page: 0,
                pages: 0,
            }
        } else {
            match crate::listing::select(
                &app.tree,
                &app.host,
                &filter,
                q.page.unwrap_or(0),
                PAGE_SIZE,
            ) {
                Ok(l) => l,
                Err(e) => return internal(e.to_string()),
            }
        };
        let ids: Vec<String> = listing
            .rows
            .iter()
            .map(|(s, _)| shown_id(&s.session))
            .collect();
        let list = q.access_args(listing.page);
        if app.list_views.shown(&cookie, &list, &ids, refresh) {
            let mut args = list.clone();
            if refresh {
                args.push("refresh".into());
            }
            if let Err(r) = app.log(&login, remote, "web-list", &args, &ids) {
                app.list_views.forget(&cookie, &list);
                return r;
            }
        }
        let rows: Vec<pages::Row> = listing
            .rows
            .into_iter()
            .map(|(summary, verdict)| pages::Row {
                id: shown_id(&summary.session),
                verdict,
                summary,
            })
            .collect();
        let mut r = html(
            StatusCode::OK,
            pages::list_page(
                &rows,
                (listing.page, listing.pages, listing.total),
                &q,
                problem.as_deref(),
                now,
                (&login.user, &login.csrf),
            ),
        );
        server_timing(&mut r, began);
        r
    })
    .await
}

/// How long the server took (`Server-Timing`), for the benchmarks and the browser's tools.
fn server_timing(r: &mut Response, began: std::time::Instant) {
    let ms = began.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        r.headers_mut().insert("server-timing", v);
    }
}

async fn search(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<crate::search::SearchQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return redirect("/login");
    };
    blocking(move || {
        let user = (login.user.as_str(), login.csrf.as_str());
        if q.q.is_empty() {
            return html(StatusCode::OK, pages::search_page(&q, None, None, user));
        }
        let now = sessrec_core::time::Timestamp::now().as_micros();
        let outcome = q.run(&app.tree, &app.host, now, &shown_id);
        let mut sessions: Vec<String> = Vec::new();
        if let Ok(o) = &outcome {
            for h in &o.hits {
                if !sessions.contains(&h.session) {
                    sessions.push(h.session.clone());
                }
            }
        }
        if let Err(r) = app.log(&login, remote, "web-search", &q.access_args(), &sessions) {
            return r;
        }
        match outcome {
            Ok(o) => html(StatusCode::OK, pages::search_page(&q, Some(&o), None, user)),
            Err(e) => html(
                StatusCode::BAD_REQUEST,
                pages::search_page(&q, None, Some(&e), user),
            ),
        }
    })
    .await
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    file: String,
    /// Where the player starts, in seconds from the channel's start (a timeline jump mark).
    t: Option<f64>,
    /// `/cast`: the piece of the cast from this moment (seconds from the channel's start).
    from: Option<f64>,
    /// `/play`: follow the live channel instead of replaying it.
    #[serde(default)]
    follow: String,
}

async fn session(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return redirect("/login");
    };
    blocking(move || {
        let (s, id) = match app.find_logged(&login, remote, "web-show", &q.id) {
            Ok(found) => found,
            Err(r) => return r,
        };
        let files = match session_record_files(&s) {
            Ok(f) => f,
            Err(e) => return internal(format!("session {id}: {e}")),
        };
        // The integrity verdict and the timeline come from /integrity and /timeline once the
        // page is up: for a long recording either takes tens of seconds.
        let summary = sessrec::summary::summarize(&s, &app.host);
        // Only a forward channel records forwarded streams: the others (a long shell's
        // gigabyte among them) are not read for one.
        let forwards = files.iter().any(|f| {
            f.channel_start()
                .and_then(|c| c.kind.as_deref())
                .is_some_and(|k| k == "forward")
        });
        let pcap = forwards && sessrec::forward_view::has_pcap(&s);
        let channels: Vec<RecordFile> = files.into_iter().filter(RecordFile::has_io).collect();
        let actions = format!(
            "{}{}",
            crate::kill::form(
                &app,
                &login,
                &id,
                summary.state == sessrec::summary::State::Live
            ),
            crate::downloads::links(&id, &channels, pcap)
        );
        html(
            StatusCode::OK,
            pages::session_page(
                &id,
                &summary,
                &channels,
                &actions,
                (&login.user, &login.csrf),
            ),
        )
    })
    .await
}

#[derive(Deserialize)]
struct TimelineQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    part: usize,
    /// The build that part 0 came from (later parts only).
    v: Option<u64>,
}

/// A part of a session's timeline as JSON ([`crate::timeline`]); each part read is logged.
async fn timeline(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return unauthorized();
    };
    blocking(move || {
        let Some(s) = app.find(&q.id) else {
            return not_found(&login);
        };
        let id = shown_id(&s);
        let wanted = match (q.part, q.v) {
            (0, _) => crate::timeline::Wanted::Current,
            (_, Some(v)) => crate::timeline::Wanted::Of(v),
            (_, None) => {
                return response(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    Body::from("a later part names the version of part 0"),
                )
            }
        };
        let args = [id.clone(), format!("part={}", q.part)];
        if let Err(r) = app.log(
            &login,
            remote,
            "web-timeline",
            &args,
            std::slice::from_ref(&id),
        ) {
            return r;
        }
        let built = match app.timelines.get(&s, &id, wanted) {
            Some(Ok(b)) => b,
            Some(Err(e)) => return internal(format!("session {id}: {e}")),
            None => {
                return response(
                    StatusCode::CONFLICT,
                    "text/plain",
                    Body::from("that timeline is no longer kept: ask for part 0 again"),
                )
            }
        };
        let Some(part) = built.part(q.part) else {
            return response(
                StatusCode::NOT_FOUND,
                "text/plain",
                Body::from("no such part"),
            );
        };
        match serde_json::to_vec(&part) {
            Ok(json) => response(StatusCode::OK, "application/json", Body::from(json)),
            Err(e) => internal(format!("session {id}: {e}")),
        }
    })
    .await
}

/// The session and the channel file a request names, both checked against the tree.
fn channel_of(app: &App, q: &SessionQuery) -> Option<(SessionRef, RecordFile)> {
    let s = app.find(&q.id)?;
    sessrec::store::classify(&q.file)?;
    let file = session_record_files(&s)
        .ok()?
        .into_iter()
        .find(|f| f.name == q.file && f.has_io())?;
    Some((s, file))
}

async fn play(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return redirect("/login");
    };
    blocking(move || {
        let Some((s, file)) = channel_of(&app, &q) else {
            return not_found(&login);
        };
        let id = shown_id(&s);
        let args = [id.clone(), file.name.clone()];
        if let Err(r) = app.log(&login, remote, "web-play", &args, std::slice::from_ref(&id)) {
            return r;
        }
        // The integrity verdict comes from /integrity once the page is up: checking a long
        // recording's chains must not hold back its first frame.
        let how = if q.follow.is_empty() {
            pages::Playback::Replay(q.t.filter(|t| t.is_finite() && *t >= 0.0))
        } else {
            pages::Playback::Follow
        };
        html(
            StatusCode::OK,
            pages::play_page(&id, &file, how, (&login.user, &login.csrf)),
        )
    })
    .await
}

/// The channel as an asciicast v2 in pieces: the header (from the file's first line), then the
/// events of at most [`PIECE_BYTES`] of record, streamed in chunks as they are read, never the
/// whole cast in memory nor the whole file first. `from` (seconds) starts the piece at that
/// moment, found by bisecting the record on its own times, with [`LEAD_BYTES`] of record before
/// it so the screen is drawn when the player seeks there. `x-sessrec-next` names where the next
/// piece starts; without it the piece runs to the end of the record. `x-sessrec-duration`, with
/// a next piece, is where the channel's last line is: the player's progress bar spans it all.
async fn cast(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return unauthorized();
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (ready_tx, ready_rx) =
        tokio::sync::oneshot::channel::<Result<(Option<f64>, Option<f64>), Response>>();
    tokio::task::spawn_blocking(move || {
        let Some((s, file)) = channel_of(&app, &q) else {
            let _ = ready_tx.send(Err(not_found(&login)));
            return;
        };
        let from_us = q
            .from
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| (t * 1e6) as u64);
        let piece = match piece_of(&file, from_us) {
            Ok(p) => p,
            Err(e) => {
                let _ = ready_tx.send(Err(internal(format!("{} {}: {e}", s.id, file.name))));
                return;
            }
        };
        let id = shown_id(&s);
        let mut args = vec![id.clone(), file.name.clone()];
        if let Some(t) = from_us {
            args.push(format!("from={:.3}", t as f64 / 1e6));
        }
        if let Err(r) = app.log(&login, remote, "web-cast", &args, std::slice::from_ref(&id)) {
            let _ = ready_tx.send(Err(r));
            return;
        }
        // The whole channel's length, for the player's progress bar, when there is more than
        // this piece.
        let duration = match piece.next_us {
            Some(_) => last_offset_us(&file).unwrap_or_else(|e| {
                eprintln!("sessrec-web: {} {}: {e}", s.id, file.name);
                None
            }),
            None => None,
        };
        let _ = ready_tx.send(Ok((
            piece.next_us.map(|t| t as f64 / 1e6),
            duration.map(|t| t as f64 / 1e6),
        )));
        stream_cast(&s, &file, &piece, &tx);
    });
    let (next, duration) = match ready_rx.await {
        Ok(Ok(times)) => times,
        Ok(Err(r)) => return r,
        Err(_) => return internal("the cast reader stopped".into()),
    };
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|c| c.map(Ok::<_, std::io::Error>))
    });
    let mut r = response(
        StatusCode::OK,
        "application/x-asciicast",
        Body::from_stream(stream),
    );
    for (name, time) in [("x-sessrec-next", next), ("x-sessrec-duration", duration)] {
        if let Some(Ok(v)) = time.map(|t| HeaderValue::from_str(&format!("{t:.6}"))) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// Where the last timed line of a channel file is (µs from its start), read from the file's
/// end; `None` for a compressed file (no reading from its end) or when its last few MiB hold
/// no timed line.
fn last_offset_us(file: &RecordFile) -> std::io::Result<Option<u64>> {
    if sessrec_core::stored::is_compressed(&file.path) {
        return Ok(None);
    }
    let len = std::fs::metadata(&file.path)?.len();
    let mut window = 16u64 << 10;
    loop {
        let mut at = len.saturating_sub(window);
        let mut last = None;
        while let Some((t, start)) = file.offset_at(at)? {
            last = Some(last.map_or(t, |l: u64| l.max(t)));
            at = start + 1;
        }
        if last.is_some() || window >= len || window >= 8 << 20 {
            return Ok(last);
        }
        window *= 4;
    }
}

/// A session's integrity verdict as text (for the player page, which asks for it after it is
/// shown).
async fn integrity(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return unauthorized();
    };
    blocking(move || {
        let (s, _) = match app.find_logged(&login, remote, "web-integrity", &q.id) {
            Ok(found) => found,
            Err(r) => return r,
        };
        let verdict = sessrec::integrity::check(&s, &app.host, None);
        response(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Body::from(format!("integrity: {}", verdict.summary())),
        )
    })
    .await
}

/// A live channel's output as server-sent events ([`crate::follow`]), for the player.
async fn follow(
    State(app): State<Arc<App>>,
    remote: crate::remote::Remote,
    headers: HeaderMap,
    Query(q): Query<SessionQuery>,
) -> Response {
    let Some((_, login)) = app.login(&headers) else {
        return unauthorized();
    };
    let Some(slot) = crate::follow::Slot::take() else {
        return response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Body::from("too many live sessions are followed at once"),
        );
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(crate::follow::MESSAGES_IN_FLIGHT);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), Response>>();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let Some((s, file)) = channel_of(&app, &q) else {
            let _ = ready_tx.send(Err(not_found(&login)));
            return;
        };
        let id = shown_id(&s);
        let args = [id.clone(), file.name.clone()];
        if let Err(r) = app.log(
            &login,
            remote,
            "web-follow",
            &args,
            std::slice::from_ref(&id),
        ) {
            let _ = ready_tx.send(Err(r));
            return;
        }
        let _ = ready_tx.send(Ok(()));
        crate::follow::follow(&file, &app.host, &tx);
    });
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(r)) => return r,
        Err(_) => return internal("the follower stopped".into()),
    }
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|c| c.map(Ok::<_, std::io::Error>))
    });
    response(
        StatusCode::OK,
        "text/event-stream",
        Body::from_stream(stream),
    )
}

/// Record bytes in one piece of a cast: a few MB of cast, parsed by the player at once.
pub const PIECE_BYTES: u64 = 2 << 20;
/// Record bytes before a piece's moment that come along to draw the screen there.
pub const LEAD_BYTES: u64 = 256 << 10;

/// Which bytes of the record a piece covers.
struct Piece {
    from: u64,
    to: u64,
    /// Where the next piece starts (µs from the channel's start), if the record goes on.
    next_us: Option<u64>,
}

fn piece_of(file: &RecordFile, from_us: Option<u64>) -> std::io::Result<Piece> {
    let from = match from_us {
        Some(t) => file.byte_at_offset(t)?.saturating_sub(LEAD_BYTES),
        None => 0,
    };
    // The piece ends before the first line at or past its size; past the last line, it runs
    // to the end (and a live file's lines still to come are the next piece's).
    Ok(match file.offset_at(from + PIECE_BYTES)? {
        Some((next_us, start)) => Piece {
            from,
            to: start,
            next_us: Some(next_us),
        },
        None => Piece {
            from,
            to: u64::MAX,
            next_us: None,
        },
    })
}

fn stream_cast(
    s: &SessionRef,
    file: &RecordFile,
    piece: &Piece,
    tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    let (cols, rows) = file.geometry();
    let mut header = serde_json::json!({
        "version": 2, "width": cols, "height": rows,
        "title": format!("sessrec {} {}", s.id, file.name.trim_end_matches(".jsonl")),
    });
    if let Some(t) = file.start_us {
        header["timestamp"] = t.div_euclid(1_000_000).into();
    }
    let mut buf = header.to_string().into_bytes();
    buf.push(b'\n');
    let result = sessrec::cast::build_cast_piece(s, file, piece.from, piece.to, |event| {
        serde_json::to_writer(&mut buf, event)?;
        buf.push(b'\n');
        if buf.len() >= CHUNK_BYTES {
            tx.blocking_send(std::mem::take(&mut buf))
                .map_err(|_| std::io::Error::other("the browser went away"))?;
        }
        Ok(())
    });
    if !buf.is_empty() {
        let _ = tx.blocking_send(buf);
    }
    if let Err(e) = result {
        eprintln!("sessrec-web: cast of {} {}: {e}", s.id, file.name);
    }
}
