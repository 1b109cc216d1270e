//! Embeds `web/static/**` into the binary: generates `$OUT_DIR/assets.rs` with
//! a table of `(path, content type, include_bytes!(..))`. A missing or empty
//! directory still builds (with an empty table).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web");
    let root = web.join("static");
    println!("cargo:rerun-if-changed=build.rs");
    // Cargo scans a watched directory recursively; if static/ does not exist
    // yet, watch web/ so that creating it triggers a rebuild.
    if root.is_dir() {
        println!("cargo:rerun-if-changed={}", root.display());
    } else {
        println!("cargo:rerun-if-changed={}", web.display());
    }

    let mut files = Vec::new();
    if root.is_dir() {
        collect(&root, &root, &mut files);
    }
    files.sort();

    let mut out = String::from(
        "/// Embedded web files: (path relative to web/static, content type, bytes).\n\
         pub static ASSETS: &[(&str, &str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        let _ =
            writeln!(out, "    ({rel:?}, {:?}, include_bytes!({:?})),", content_type(rel), abs.display().to_string());
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    fs::write(dest, out).expect("write assets.rs");
}

/// Regular files under `dir`, as (`a/b.js`, absolute path). Hidden files and
/// symlinks are skipped.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        if kind.is_dir() {
            collect(root, &path, out);
        } else if kind.is_file() {
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let abs = fs::canonicalize(&path).unwrap_or(path);
            out.push((rel.join("/"), abs));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}
