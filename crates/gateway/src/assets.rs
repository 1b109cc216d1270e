//! The Dream page's files, embedded at build time from `web/static/**`.
//!
//! `build.rs` walks `web/static` and generates a table of
//! `(path, content type, bytes)`; `/` serves `index.html`. Lookups are exact
//! matches in that table, so no request can reach the file system.

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// An embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Path relative to `web/static` (`lib/app.js`).
    pub path: &'static str,
    /// `Content-Type` to answer with.
    pub content_type: &'static str,
    /// File contents.
    pub bytes: &'static [u8],
}

/// Finds the file for a request path (`/` and `/index.html` give `index.html`).
pub fn lookup(request_path: &str) -> Option<Asset> {
    let rel = request_path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    ASSETS.iter().find(|(path, _, _)| *path == rel).map(|&(path, content_type, bytes)| Asset {
        path,
        content_type,
        bytes,
    })
}

/// Every embedded file.
pub fn all() -> impl Iterator<Item = Asset> {
    ASSETS.iter().map(|&(path, content_type, bytes)| Asset { path, content_type, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_directory() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/static");
        for asset in all() {
            let on_disk = std::fs::read(root.join(asset.path)).expect("embedded file exists on disk");
            assert_eq!(on_disk, asset.bytes, "{}", asset.path);
            assert_eq!(lookup(&format!("/{}", asset.path)), Some(asset));
        }
        if root.join("index.html").is_file() {
            assert_eq!(lookup("/").map(|a| a.path), Some("index.html"));
            assert!(lookup("/").unwrap().content_type.starts_with("text/html"));
        }
    }

    #[test]
    fn unknown_and_traversal_paths_are_not_found() {
        assert_eq!(lookup("/../Cargo.toml"), None);
        assert_eq!(lookup("/nope.js"), None);
        assert_eq!(lookup("//etc/passwd"), None);
    }
}
