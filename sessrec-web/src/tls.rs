//! TLS with rustls (ring as the crypto provider; no OpenSSL): the certificate chain and key
//! from PEM files (read again on SIGHUP, so a renewed certificate needs no restart), and a listener that hands axum connections whose handshake is done.
//! Handshakes run in their own tasks with a deadline, so a client that stalls mid-handshake
//! holds up nobody else.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// How long a client has to finish its handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait to be accepted.
const HANDSHAKES_AT_ONCE: usize = 128;

/// ring's suites (TLS 1.3/1.2 AEADs, X25519 and P-256 key exchange); rustls marks it
/// deprecated only because it lacks the hybrid post-quantum key exchange.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(tokio_rustls::rustls::crypto::ring::default_provider())
}

/// The certificate chain and key from the PEM files, checked to belong together.
fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {}: no CERTIFICATE in the file",
            files.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("TLS key {}: {e}", files.key.display()))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("TLS key {}: {e}", files.key.display()))?;
    let certified = CertifiedKey::new(certs, key);
    certified.keys_match().map_err(|e| {
        format!(
            "TLS certificate {} and key {}: {e}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(certified)
}

/// The served certificate, replaced by [`Certificates::reload`] (on SIGHUP): connections
/// after a reload get the new one, those already up keep theirs. A reload that fails keeps
/// the certificate served so far.
#[derive(Debug)]
pub struct Certificates {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the files again; on success new connections get what they hold now.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = Arc::new(certified_key(&self.files, &self.provider)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The server side of TLS from the configured PEM files: TLS 1.2 and 1.3, HTTP/1.1 by ALPN;
/// and the certificates, to reload.
pub fn server_config(files: &TlsFiles) -> Result<(Arc<ServerConfig>, Arc<Certificates>), String> {
    let provider = provider();
    let certificates = Arc::new(Certificates {
        current: RwLock::new(Arc::new(certified_key(files, &provider)?)),
        files: files.clone(),
        provider: provider.clone(),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), certificates))
}

/// Reloads the certificates on every SIGHUP, saying what came of it. Call it before the
/// console says it listens: from then on a SIGHUP reloads instead of ending the process.
pub fn reload_on_hangup(
    certificates: Arc<Certificates>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let hangups = signal(SignalKind::hangup())?;
    Ok(reload_loop(certificates, hangups))
}

async fn reload_loop(certificates: Arc<Certificates>, mut hangups: tokio::signal::unix::Signal) {
    while hangups.recv().await.is_some() {
        let c = certificates.clone();
        let done = tokio::task::spawn_blocking(move || c.reload())
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let files = certificates.files();
        match done {
            Ok(()) => eprintln!(
                "sessrec-web: TLS certificate reloaded from {} and {}",
                files.cert.display(),
                files.key.display()
            ),
            Err(e) => eprintln!(
                "sessrec-web: TLS certificate not reloaded, the one loaded before is still served: {e}"
            ),
        }
    }
}

/// Accepted connections after their handshake, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (inside the runtime).
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(16);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(HANDSHAKES_AT_ONCE));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                eprintln!("sessrec-web: accept: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => eprintln!("sessrec-web: TLS handshake with {peer}: {e}"),
                Err(_) => eprintln!("sessrec-web: TLS handshake with {peer}: timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop only ends with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Over TLS, every cookie the console sets is `Secure` (never sent back over plain HTTP), and
/// browsers are told to come back only over TLS.
pub async fn secure_cookies(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let h = r.headers_mut();
    let cookies: Vec<HeaderValue> = h
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| match v.to_str() {
            Ok(s)
                if !s
                    .split(';')
                    .any(|a| a.trim().eq_ignore_ascii_case("secure")) =>
            {
                HeaderValue::from_str(&format!("{s}; Secure")).unwrap_or_else(|_| v.clone())
            }
            _ => v.clone(),
        })
        .collect();
    h.remove(header::SET_COOKIE);
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::SET_COOKIE;

    #[tokio::test]
    async fn every_cookie_is_marked_secure_once() {
        let mut r = axum::response::Response::new(axum::body::Body::empty());
        r.headers_mut()
            .append(SET_COOKIE, "a=1; Path=/; HttpOnly".parse().unwrap());
        r.headers_mut()
            .append(SET_COOKIE, "b=2; Path=/; Secure".parse().unwrap());
        let r = secure_cookies(r).await;
        let got: Vec<&str> = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            got,
            ["a=1; Path=/; HttpOnly; Secure", "b=2; Path=/; Secure"]
        );
        assert!(r.headers().contains_key("strict-transport-security"));
    }
}
