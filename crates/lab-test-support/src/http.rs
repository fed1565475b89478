//! A small blocking HTTP/1.1 client over raw TCP, for tests, probes and
//! benchmarks: it sends exactly the bytes it is told to and hides nothing
//! the server did; responses are parsed with `httparse`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// One response.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Status code (0 when the connection closed without a response).
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding removed).
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header by that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// `"error"."code"` of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// One line for evidence tables.
    pub fn summary(&self) -> String {
        let code = self.code();
        if code.is_empty() {
            format!("{}", self.status)
        } else {
            format!("{} {code}", self.status)
        }
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Request target.
    pub path: String,
    /// Headers; `Host: 127.0.0.1:PORT` is added unless one is given.
    pub headers: Vec<(String, String)>,
    /// Body; `Content-Length` is added when non-empty.
    pub body: Vec<u8>,
    /// Sent without the credential remembered for the port.
    pub anonymous: bool,
}

/// The credential headers remembered per port (a signed-in Lab): added to
/// every request to that port that carries no `Cookie` or `Authorization`
/// of its own and is not [`Request::anonymous`].
type Remembered = (u16, Vec<(String, String)>);
static CREDENTIALS: std::sync::Mutex<Vec<Remembered>> = std::sync::Mutex::new(Vec::new());

/// Remembers `name: value` as the credential for `port`.
pub fn remember(port: u16, name: &str, value: &str) {
    remember_all(port, &[(name, value)]);
}

/// Remembers these headers together as the credential for `port`.
pub fn remember_all(port: u16, headers: &[(&str, &str)]) {
    let mut all = CREDENTIALS.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(p, _)| *p != port);
    all.push((
        port,
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    ));
}

/// The remembered credential for `port` as header lines (`""` if none),
/// for clients that write their own request heads.
pub fn credential_line(port: u16) -> String {
    remembered(port)
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

fn remembered(port: u16) -> Vec<(String, String)> {
    CREDENTIALS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(p, _)| *p == port)
        .map(|(_, headers)| headers.clone())
        .unwrap_or_default()
}

/// A page binding as the UI makes one: 32 base64url characters from the
/// OS RNG (through a fresh std hasher's random keys).
pub fn new_binding() -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    while out.len() < 32 {
        let mut n = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        for _ in 0..10 {
            out.push(char::from(ALPHABET[(n & 63) as usize]));
            n >>= 6;
        }
    }
    out.truncate(32);
    out
}

/// Signs in with the access key the way a browser does (`POST
/// /api/session` with a new page binding) and remembers the session
/// cookie and the binding (`X-Lab-Binding`) for `port`. Returns the
/// cookie and the binding, or `None` when the server gave no cookie.
pub fn sign_in(port: u16, key: &str) -> Option<(String, String)> {
    let binding = new_binding();
    let reply = Request::new("POST", "/api/session")
        .anonymous()
        .json(&format!(
            "{{\"key\": \"{key}\", \"binding\": \"{binding}\"}}"
        ))
        .send(port)
        .ok()?;
    let cookie = reply.header("set-cookie")?.split(';').next()?.to_owned();
    (reply.status == 204).then(|| {
        remember_all(port, &[("Cookie", &cookie), ("X-Lab-Binding", &binding)]);
        (cookie, binding)
    })
}

/// The key in a login line `lab: open http://…/#key=KEY`.
pub fn key_of(login_line: &str) -> Option<String> {
    let (_, key) = login_line.trim().split_once("#key=")?;
    (!key.is_empty()).then(|| key.to_owned())
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            anonymous: false,
        }
    }

    /// Without the remembered credential.
    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets a body with its content type.
    pub fn body(mut self, content_type: &str, body: &[u8]) -> Self {
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body.to_vec();
        self
    }

    /// Sets a JSON body.
    pub fn json(self, body: &str) -> Self {
        self.body("application/json", body.as_bytes())
    }

    /// Sends to `ip:port` and reads one response (`Connection: close`).
    pub fn send_to(&self, ip: IpAddr, port: u16) -> std::io::Result<Reply> {
        let addr = SocketAddr::new(ip, port);
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
        }
        let credentialed = self.headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("cookie") || n.eq_ignore_ascii_case("authorization")
        });
        if !self.anonymous && !credentialed {
            for (name, value) in remembered(port) {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        // The server may answer and close before reading everything.
        let _ = stream.write_all(&bytes);
        // Until the server closes, or the response is whole (a server such
        // as chromedriver may keep the connection open regardless).
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            if complete(&raw, self.method == "HEAD") {
                break;
            }
        }
        Ok(parse(&raw, self.method == "HEAD"))
    }

    /// Sends to `127.0.0.1:port`.
    pub fn send(&self, port: u16) -> std::io::Result<Reply> {
        self.send_to(IpAddr::from([127, 0, 0, 1]), port)
    }
}

/// Whether `raw` holds a whole response: its head, and then the body its
/// `Content-Length` says or a chunked body's last chunk (a body without
/// either ends when the server closes).
fn complete(raw: &[u8], head_only: bool) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = response.parse(raw) else {
        return false;
    };
    if head_only || matches!(response.code, Some(204 | 304)) {
        return true;
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return raw.len() >= head_len + len;
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        // Walk the chunks: whole once the zero-size chunk and its CRLF are in.
        let mut data = &raw[head_len..];
        while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
            let Some(size) = std::str::from_utf8(&data[..end]).ok().and_then(|s| {
                usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok()
            }) else {
                return false;
            };
            if size == 0 {
                return data[end + 2..].starts_with(b"\r\n");
            }
            let next = end + 2 + size + 2;
            if data.len() < next {
                return false;
            }
            data = &data[next..];
        }
        return false;
    }
    false
}

/// Parses one response with `httparse` (a head it cannot parse is status 0).
fn parse(raw: &[u8], head_only: bool) -> Reply {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = response.parse(raw) else {
        return Reply::default();
    };
    let status = response.code.unwrap_or(0);
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    let mut body = raw[head_len..].to_vec();
    if head_only {
        body.clear();
    } else if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || data.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[(end + 4 + size).min(data.len())..];
    }
    out
}
