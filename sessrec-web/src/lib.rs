//! `sessrec-web`: a read-only web console for auditors over the record tree — login through
//! PAM and a unix group, the session list, a session's timeline and integrity, and a player fed
//! by a streamed asciicast. Records are read through the `sessrec` CLI's library, so the
//! console shows what `sessrec list`, `show` and `export` show.

pub mod access;
pub mod auth;
pub mod config;
pub mod follow;
pub mod listing;
pub mod pages;
pub mod search;
pub mod server;
pub mod sys;

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sessrec-web: cannot start the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(app.settings.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sessrec-web: cannot listen on {}: {e}", app.settings.listen);
                return 1;
            }
        };
        match listener.local_addr() {
            Ok(a) => eprintln!("sessrec-web: listening on http://{a}/"),
            Err(e) => eprintln!("sessrec-web: listening ({e})"),
        }
        let service =
            server::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
        match axum::serve(listener, service).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("sessrec-web: {e}");
                1
            }
        }
    })
}
