//! `stt-cli serve`: the headers the page needs, Range requests, the model
//! directory at /model/, and a clear error without the wasm package.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `stt-cli serve`, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stt-cli serve");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the URL");
    let url = line
        .trim()
        .strip_prefix("serving ")
        .unwrap_or_else(|| panic!("no URL: {line:?}"))
        .to_string();
    Server { child, url }
}

/// A page folder with an index and a (fake) wasm package, and a model
/// folder with a 1000-byte file.
fn site(name: &str) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let d = common::scratch(name);
    let web = d.join("web");
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>stt-web</title>",
    )
    .unwrap();
    std::fs::write(web.join("pkg/stt_browser_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let model = d.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(model.join("mimi.safetensors"), &bytes).unwrap();
    (web, model, bytes)
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn serves_the_page_isolated_with_wasm_and_ranges() {
    let (web, model, bytes) = site("serve");
    let s = serve(&["--web", arg(&web), "--model", arg(&model)]);

    let page = ureq::get(&s.url).call().expect("GET /");
    assert_eq!(page.status(), 200);
    assert!(
        page.content_type().starts_with("text/html"),
        "{}",
        page.content_type()
    );
    assert_eq!(
        page.header("cross-origin-opener-policy"),
        Some("same-origin")
    );
    assert_eq!(
        page.header("cross-origin-embedder-policy"),
        Some("require-corp")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));

    let wasm = ureq::get(&format!("{}pkg/stt_browser_bg.wasm", s.url))
        .call()
        .unwrap();
    assert_eq!(wasm.content_type(), "application/wasm");

    let part = ureq::get(&format!("{}model/mimi.safetensors", s.url))
        .set("Range", "bytes=10-19")
        .call()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/1000"));
    let mut body = vec![];
    part.into_reader().read_to_end(&mut body).unwrap();
    assert_eq!(body, bytes[10..20]);

    match ureq::get(&format!("{}model/missing.gguf", s.url)).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("a missing file: {:?}", other.map(|r| r.status())),
    }
}

#[test]
fn without_the_wasm_package_it_says_how_to_build_it() {
    let (web, _, _) = site("serve_no_pkg");
    std::fs::remove_dir_all(web.join("pkg")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stt-cli"))
        .args(["serve", "--web", arg(&web), "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/build-web"), "{err}");
}

#[test]
fn https_serves_tls_with_its_own_certificate() {
    let (web, _, _) = site("serve_https");
    let s = serve(&["--web", arg(&web), "--https"]);
    assert!(s.url.starts_with("https://"), "{}", s.url);
    // The certificate is self-signed, so a verifying client must refuse it:
    // what answers is TLS, not plain HTTP.
    match ureq::get(&s.url).call() {
        Err(ureq::Error::Transport(t)) => {
            let msg = t.to_string();
            assert!(msg.to_lowercase().contains("certificate"), "{msg}");
        }
        other => panic!(
            "expected a certificate error, got {:?}",
            other.map(|r| r.status())
        ),
    }
}
