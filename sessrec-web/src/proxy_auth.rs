//! Login by a trusted reverse proxy (an SSO gateway in front of the console): on a connection
//! from one of the configured proxy addresses, the configured header names the logged-in user.
//! From any other address the header is ignored (removed), so a browser cannot name itself.
//! The user must still be a member of the auditors group, checked through the system's groups
//! again at least every [`RECHECK`].
//!
//! A proxied user gets a server-side session like a PAM login, and the request goes on with
//! that session's cookie in place of whatever cookies it carried: the pages, their CSRF tokens
//! and the access log work as for any login.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{ProxyLogin, MAX_PROXY_USER};
use crate::server::App;

/// How long a group check of a proxied user holds.
pub const RECHECK: Duration = Duration::from_secs(60);

/// Proxied users' sessions: user name to (session cookie, when membership was last checked).
#[derive(Default)]
pub struct ProxySessions {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

/// The header's user name, when it is a plausible one: printable ASCII or UTF-8 without
/// control characters or spaces, at most [`MAX_PROXY_USER`] bytes.
fn user_name(value: &HeaderValue) -> Option<String> {
    let v = std::str::from_utf8(value.as_bytes()).ok()?.trim();
    let ok = !v.is_empty()
        && v.len() <= MAX_PROXY_USER
        && !v.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then(|| v.to_string())
}

fn refused(message: &str) -> Response {
    let mut r = Response::new(axum::body::Body::from(crate::pages::message_page(
        "Refused", message, None,
    )));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The middleware: honours the header from the trusted proxies, strips it from anyone else.
pub async fn middleware(
    State((app, proxy, sessions)): State<(Arc<App>, Arc<ProxyLogin>, Arc<ProxySessions>)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let named = request.headers().get(&proxy.header).cloned();
    if !proxy.trusted.contains(&peer.ip()) {
        if named.is_some() {
            request.headers_mut().remove(&proxy.header);
        }
        return next.run(request).await;
    }
    // From a trusted proxy, the client it forwarded for goes into the access lines and login
    // limits (with the proxy's own address beside it).
    let client = crate::remote::forwarded_client(request.headers(), &proxy.trusted);
    if let Some(client) = client {
        request
            .extensions_mut()
            .insert(crate::remote::ForwardedClient(client));
    }
    let from = crate::remote::Remote { peer, client };
    let Some(value) = named else {
        // The proxy may also pass plain PAM logins through.
        return next.run(request).await;
    };
    let Some(user) = user_name(&value) else {
        eprintln!(
            "sessrec-web: proxy {peer} sent an unusable {} header",
            proxy.header
        );
        return refused("The proxy's user header is not a user name.");
    };
    let cookie = match session_of(&app, &sessions, &user).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "sessrec-web: proxied login of {} from {from} refused: {e}",
                sessrec::escape::escape_control(&user)
            );
            return refused("Login refused.");
        }
    };
    let headers = request.headers_mut();
    headers.remove(header::COOKIE);
    if let Ok(v) = HeaderValue::from_str(&format!("{}={cookie}", crate::server::SESSION_COOKIE)) {
        headers.insert(header::COOKIE, v);
    }
    next.run(request).await
}

/// The proxied user's live session, started (after a group check) when there is none or the
/// last check is older than [`RECHECK`].
async fn session_of(
    app: &Arc<App>,
    sessions: &ProxySessions,
    user: &str,
) -> Result<String, String> {
    {
        let map = sessions.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cookie, checked)) = map.get(user) {
            if checked.elapsed() < RECHECK && app.sessions.get(cookie).is_some() {
                return Ok(cookie.clone());
            }
        }
    }
    let (name, group) = (user.to_string(), app.settings.group.clone());
    let checked = tokio::task::spawn_blocking(move || crate::auth::member_of(&name, &group))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let mut map = sessions.map.lock().unwrap_or_else(|e| e.into_inner());
    match checked {
        Ok(uid) => {
            let still = map
                .get(user)
                .map(|(c, _)| c.clone())
                .filter(|c| app.sessions.get(c).is_some());
            let cookie = still.unwrap_or_else(|| {
                eprintln!(
                    "sessrec-web: {} logged in through the proxy",
                    sessrec::escape::escape_control(user)
                );
                app.sessions.start(user.to_string(), uid)
            });
            map.insert(user.to_string(), (cookie.clone(), Instant::now()));
            Ok(cookie)
        }
        Err(e) => {
            if let Some((cookie, _)) = map.remove(user) {
                app.sessions.end(&cookie);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_user_names_pass() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(user_name(&v("alice")).as_deref(), Some("alice"));
        assert_eq!(user_name(&v("  alice ")).as_deref(), Some("alice"));
        assert_eq!(user_name(&v("")), None);
        assert_eq!(user_name(&v("a b")), None);
        assert_eq!(user_name(&v(&"x".repeat(MAX_PROXY_USER + 1))), None);
        assert_eq!(
            user_name(&HeaderValue::from_bytes(b"\xff\xfe").unwrap()),
            None
        );
    }
}
