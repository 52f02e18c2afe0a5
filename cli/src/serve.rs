//! `stt-cli serve`: the browser app on this machine. Serves the page and the
//! wasm package (`browser/web`, built by `scripts/build-web`) with the
//! headers it needs — cross-origin isolation (COOP/COEP), the right MIME
//! types (`application/wasm`), revalidation, HTTP Range (the page fetches
//! Mimi's encoder half by ranges) — and, with `--model`, a model directory
//! at `/model/`, where the page looks first: the page then needs no network
//! at all. `--https` listens on every interface with a self-signed
//! certificate made on the fly, so a phone on the LAN gets a secure context
//! (microphone, Cache API).
//!
//! axum + tower-http's `ServeDir` do the HTTP (Range, conditional requests,
//! MIME types from mime_guess); axum-server + rustls (ring) the TLS; rcgen
//! the certificate.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A model directory (or a Hugging Face repo id already in the local
    /// cache) served at /model/, where the page looks first.
    #[arg(long)]
    pub model: Option<String>,
    /// Port (0: any free one; the URL is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// HTTPS with a self-signed certificate, on every interface (for other
    /// devices on the network; browsers ask to accept the certificate once).
    #[arg(long)]
    pub https: bool,
    /// The page's folder (default: this checkout's browser/web).
    #[arg(long)]
    pub web: Option<PathBuf>,
}

/// The checkout's page folder, where `scripts/build-web` puts the package.
fn default_web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../browser/web")
}

pub fn run(args: ServeArgs) -> Result<bool> {
    let web = args.web.clone().unwrap_or_else(default_web_dir);
    if !web.join("index.html").is_file() {
        bail!(
            "{}: no index.html (give the page's folder with --web)",
            web.display()
        );
    }
    if !web.join("pkg/stt_browser_bg.wasm").is_file() {
        bail!(
            "{}: no pkg/stt_browser_bg.wasm; build it first with scripts/build-web (or `just web`)",
            web.display()
        );
    }
    let model = match &args.model {
        Some(m) => Some(crate::hub::resolve(m, None, true)?),
        None => None,
    };
    let app = router(&web, model.as_deref());
    let ip = if args.https {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    let listener = TcpListener::bind(SocketAddr::new(ip, args.port))
        .with_context(|| format!("listening on port {}", args.port))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let scheme = if args.https { "https" } else { "http" };
    // The first line is the URL (tests read it).
    println!("serving {scheme}://127.0.0.1:{port}/");
    if let Some(m) = &model {
        eprintln!("model: {} at /model/", m.display());
    }
    if args.https {
        for ip in local_addresses() {
            eprintln!("on this network: https://{ip}:{port}/ (accept the self-signed certificate)");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(async move {
        let service = app.into_make_service();
        if args.https {
            let tls = tls_config().await?;
            axum_server::from_tcp_rustls(listener, tls)
                .serve(service)
                .await
        } else {
            axum_server::from_tcp(listener).serve(service).await
        }
        .context("serving")
    })?;
    Ok(true)
}

/// What the page may load and connect to: its own origin, Hugging Face's
/// model files (huggingface.co redirects downloads to *.hf.co) and
/// WebAssembly; no other host, no framing. The same policy as index.html's
/// `<meta>` (which cannot carry `frame-ancestors`, and does not reach the
/// worker: this header does). Checked equal in the tests below.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
    script-src 'self' 'wasm-unsafe-eval'; \
    connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co; \
    img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; worker-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page at `/`, the model (if any) at `/model/`, every response
/// cross-origin isolated, under the CSP, and revalidated (`no-cache`: cached, but checked
/// against Last-Modified, so a rebuilt package or model is picked up).
fn router(web: &Path, model: Option<&Path>) -> Router {
    let mut app = Router::new();
    if let Some(dir) = model {
        app = app.nest_service("/model", ServeDir::new(dir));
    }
    app.fallback_service(ServeDir::new(web))
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("cross-origin-embedder-policy"),
            HeaderValue::from_static("require-corp"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
}

/// A self-signed certificate for localhost and this machine's addresses.
async fn tls_config() -> Result<axum_server::tls_rustls::RustlsConfig> {
    // One process-wide crypto provider (ring, already in the build for ureq).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    names.extend(local_addresses().iter().map(|ip| ip.to_string()));
    let cert = rcgen::generate_simple_self_signed(names).context("making a certificate")?;
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem.into_bytes(), key_pem.into_bytes())
        .await
        .context("setting up TLS")
}

/// This machine's LAN address: the source address of a route to the
/// internet (no packet is sent: UDP connect only picks the route).
fn local_addresses() -> Vec<IpAddr> {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| vec![a.ip()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// index.html's `<meta>` policy is the header's, less `frame-ancestors`
    /// (ignored in a `<meta>`): a static host gives the page the same limits.
    #[test]
    fn meta_policy_equals_the_header() {
        let html = include_str!("../../browser/web/index.html");
        let tag = r#"<meta http-equiv="Content-Security-Policy" content=""#;
        let start = html.find(tag).expect("index.html has a CSP meta tag") + tag.len();
        let meta = &html[start..start + html[start..].find('"').expect("closing quote")];
        let header = CONTENT_SECURITY_POLICY.replace("; frame-ancestors 'none'", "");
        assert_eq!(meta, header);
    }
}
