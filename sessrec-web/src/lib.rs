//! `sessrec-web`: a read-only web console for auditors over the record tree — login through
//! PAM and a unix group, the session list, a session's timeline and integrity, and a player fed
//! by a streamed asciicast. Records are read through the `sessrec` CLI's library, so the
//! console shows what `sessrec list`, `show` and `export` show.

pub mod access;
pub mod auth;
pub mod config;
pub mod downloads;
pub mod follow;
pub mod kill;
pub mod listing;
pub mod pages;
pub mod proxy_auth;
pub mod refresh;
pub mod remote;
pub mod search;
pub mod server;
pub mod sys;
pub mod timeline;
pub mod tls;

/// Runs the console until it is killed; returns the exit code.
pub fn run(argv: Vec<String>) -> i32 {
    let settings = match config::Settings::parse(&argv) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sessrec-web: {e}");
            return 2;
        }
    };
    let app = match server::App::new(settings) {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("sessrec-web: {e}");
            return 1;
        }
    };
    sys::limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sessrec-web: cannot start the runtime: {e}");
            return 1;
        }
    };
    let (tls, certificates) = match app.settings.tls_files.as_ref().map(tls::server_config) {
        Some(Ok((config, certificates))) => (Some(config), Some(certificates)),
        Some(Err(e)) => {
            eprintln!("sessrec-web: {e}");
            return 1;
        }
        None => (None, None),
    };
    runtime.block_on(async move {
        if let Some(certificates) = certificates {
            match tls::reload_on_hangup(certificates) {
                Ok(reloads) => {
                    tokio::spawn(reloads);
                }
                Err(e) => {
                    eprintln!("sessrec-web: cannot catch SIGHUP to reload the certificate: {e}");
                    return 1;
                }
            }
        }
        let listener = match tokio::net::TcpListener::bind(app.settings.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sessrec-web: cannot listen on {}: {e}", app.settings.listen);
                return 1;
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        match listener.local_addr() {
            Ok(a) => eprintln!("sessrec-web: listening on {scheme}://{a}/"),
            Err(e) => eprintln!("sessrec-web: listening ({e})"),
        }
        let proxy = app.settings.proxy_login.clone();
        let mut router = server::router(app.clone()).merge(
            axum::Router::new()
                .route("/kill", axum::routing::post(kill::submit))
                .route("/download", axum::routing::get(downloads::download))
                .with_state(app.clone()),
        );
        if let Some(proxy) = proxy {
            let state = (app, std::sync::Arc::new(proxy), Default::default());
            router = router.layer(axum::middleware::from_fn_with_state(
                state,
                proxy_auth::middleware,
            ));
        }
        if tls.is_some() {
            router = router.layer(axum::middleware::map_response(tls::secure_cookies));
        }
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = match tls {
            Some(config) => match tls::TlsListener::new(listener, config) {
                // `tap_io` only for axum's peer-address extraction, which it offers for
                // any tapped listener whose address is a SocketAddr.
                Ok(l) => {
                    use axum::serve::ListenerExt;
                    axum::serve(l.tap_io(|_| {}), service).await
                }
                Err(e) => Err(e),
            },
            None => axum::serve(listener, service).await,
        };
        match served {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("sessrec-web: {e}");
                1
            }
        }
    })
}
