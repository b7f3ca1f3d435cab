//! The demo's origin: a tiny static file server for `examples/site/`.
//!
//! Usage: `cargo run --example demo_origin -- [ROOT] [LISTEN]`
//! (defaults `examples/site` and `127.0.0.1:3000`). It refuses any path with a
//! `..` segment, serves `index.html` for directories and prints
//! `origin ready: http://ADDR` once it listens.

use std::path::{Component, Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().unwrap_or_else(|| "examples/site".into()));
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo origin: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen);
    println!("origin ready: http://{addr} serving {}", root.display());
    let app = Router::new().fallback(serve).with_state(root);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("demo origin: {e}");
    }
}

async fn serve(State(root): State<PathBuf>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    let rel = Path::new(path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) && !path.is_empty() {
        return (StatusCode::BAD_REQUEST, "bad path\n").into_response();
    }
    let mut file = root.join(rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let ct = match file.extension().and_then(|e| e.to_str()) {
                Some("css") => "text/css",
                Some("js") => "text/javascript",
                Some("json") => "application/json",
                Some("png") => "image/png",
                Some("txt") => "text/plain; charset=utf-8",
                _ => "text/html; charset=utf-8",
            };
            ([(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
