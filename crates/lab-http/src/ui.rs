//! The web UI, compiled into the binary.

use http::header::{self, HeaderValue};
use http::{Method, Response};

use crate::response::{Body, empty, full};

const INDEX: &str = include_str!("../ui/index.html");
/// The page for a browser without a credential: no token, no run data.
const LOGIN_HTML: &str = include_str!("../ui/login.html");
const TOKEN_SLOT: &str = "{{LAB_TOKEN}}";
/// Where the host mounted the Lab (`""` at the root of its own origin):
/// in `<meta name="lab-prefix">` and before every asset's path.
const PREFIX_SLOT: &str = "{{LAB_PREFIX}}";

/// The static files, by name: each is `ui/NAME`, compiled in. The list is
/// the only way to a file (a request names one of these or gets a 404,
/// never a path), and the tidy test `every_ui_file_is_served` checks it
/// against `ui/` (the HTML pages are templates, not assets).
macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../ui/", $name)))),*]
    };
}

const ASSETS: &[(&str, &[u8])] = assets![
    "app.js",
    "app.css",
    "argv.js",
    "chart.js",
    "datatable.js",
    "dom.js",
    "facts.js",
    "favicon.svg",
    "histogram.js",
    "keys.js",
    "login.js",
    "markdown.js",
    "media.js",
    "page.js",
    "parcoords.js",
    "player.js",
    "store.js",
    "table.js",
    "view-compare.js",
    "view-import.js",
    "view-job.js",
    "view-jobs.js",
    "view-plot.js",
    "view-run.js",
    "view-runs.js",
];

/// The content type of an asset, by its extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The page with the session token in `<meta name="lab-token">`. The token
/// is hex, so it needs no escaping.
pub(crate) fn index_html(token: &str, prefix: &str) -> String {
    INDEX
        .replace(TOKEN_SLOT, token)
        .replace(PREFIX_SLOT, prefix)
}

/// The login shell, for a Lab mounted under `prefix`. A prefix is
/// `/`-separated segments of letters, digits, `-` and `_` (checked when the
/// Lab is mounted), so it needs no escaping.
pub(crate) fn login_html(prefix: &str) -> String {
    LOGIN_HTML.replace(PREFIX_SLOT, prefix)
}

/// An HTML page of the UI: `no-store`, the UI's CSP.
pub(crate) fn page(html: String, method: &Method) -> Response<Body> {
    let len = html.len();
    let mut response = Response::new(if method == Method::HEAD {
        empty()
    } else {
        full(html)
    });
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::response::UI_CSP),
    );
    response
}

/// A static asset, or `None` for an unknown name.
pub(crate) fn asset(name: &str, method: &Method) -> Option<Response<Body>> {
    let (name, bytes) = ASSETS.iter().find(|(n, _)| *n == name)?;
    let kind = content_type(name);
    let mut response = Response::new(if method == Method::HEAD {
        empty()
    } else {
        full(*bytes)
    });
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_has_one_token_slot_and_no_inline_code() {
        assert_eq!(super::INDEX.matches(super::TOKEN_SLOT).count(), 1);
        let lower = super::INDEX.to_lowercase();
        assert!(
            !lower.contains("<script>") && !lower.contains("<style") && !lower.contains("style=")
        );
        // No inline event handlers (` onclick=` and friends).
        for (i, _) in lower.match_indices(" on") {
            let rest = &lower[i + 3..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            assert!(
                !rest[word.len()..].starts_with('='),
                "inline handler at {i}"
            );
        }
    }
}
