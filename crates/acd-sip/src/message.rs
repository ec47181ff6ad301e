//! The project's own SIP message type (RFC 3261 §7) and its parser.
//!
//! # Why not rsip here
//! rsip 0.4 rejects compact header names (`v:`, `f:`, `i:` …, RFC 3261 §7.3.3),
//! fails on folded header lines (§7.3.1) and drops `;du=` parameters from
//! Record-Route URIs. Normalising the text before rsip would still leave the
//! Record-Route loss, and every header we do not look at would be re-serialised by
//! rsip rather than kept as sent. So this layer **replaces rsip**: headers are stored
//! as an ordered list of `(canonical name, verbatim value)` strings, and the few
//! headers the transaction/dialog layers need (Via, CSeq, From/To tags, Contact …)
//! are parsed lazily by small borrowed helpers in this module. Unknown headers and
//! URI parameters round-trip byte for byte (apart from folding, which is unfolded to
//! a single space, and Content-Length, which is always recomputed).
//!
//! Nothing in this module panics on network input: every access is bounds-checked
//! and every malformed case becomes a [`ParseError`] naming the line or header.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Largest header section accepted, to bound memory per message (UDP datagrams are
/// below 64 KiB anyway; this protects TCP framing from a peer that never sends CRLFCRLF).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest body accepted over a stream transport.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A SIP method (RFC 3261 §7.1 plus the common extensions).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    /// Any other extension method token, kept as sent (methods are case-sensitive, §7.1).
    Other(String),
}

impl Method {
    /// Parses a method token. Method names are case-sensitive (§7.1), so `invite` is
    /// an extension method, not INVITE.
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(s) => s,
            known => known.label(),
        }
    }

    /// The method as a metrics label: every extension method a peer invents
    /// is `OTHER`, so a hostile peer cannot grow the number of series.
    pub fn label(&self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Other(_) => "OTHER",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was wrong with a message that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message is not valid UTF-8 at line {line}")]
    NotUtf8 { line: usize },
    #[error("malformed start line: {0:?}")]
    BadStartLine(String),
    #[error("unsupported SIP version {0:?}")]
    BadVersion(String),
    #[error("malformed header on line {line}: {text:?}")]
    BadHeaderLine { line: usize, text: String },
    #[error("folded continuation line {line} with no header before it")]
    OrphanContinuation { line: usize },
    #[error("no empty line ending the header section")]
    MissingHeaderEnd,
    #[error("header section larger than {MAX_HEADER_BYTES} bytes")]
    HeadersTooLarge,
    #[error("invalid Content-Length {0:?}")]
    BadContentLength(String),
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    #[error("body shorter than Content-Length: declared {declared}, got {actual}")]
    BodyTooShort { declared: usize, actual: usize },
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("message larger than {limit} bytes")]
    MessageTooLarge { limit: usize },
}

// ---------------------------------------------------------------------------
// Header names
// ---------------------------------------------------------------------------

/// Compact forms (RFC 3261 §7.3.3 and the extension RFCs that define them).
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Long names whose canonical spelling we restore so that `to_bytes` output looks
/// conventional (header names are case-insensitive, §7.3.1).
const WELL_KNOWN: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Route",
    "Record-Route",
    "Expires",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "User-Agent",
    "Server",
    "WWW-Authenticate",
    "Authorization",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Event",
    "Subscription-State",
    "Refer-To",
    "Referred-By",
    "Session-Expires",
    "Min-SE",
    "Min-Expires",
    "RSeq",
    "RAck",
    "Timestamp",
    "Retry-After",
    "Accept",
    "Subject",
    "Allow-Events",
    "Content-Encoding",
];

/// Canonical long form of a header name: expands compact forms and fixes the case
/// of well-known names; other names are kept as sent.
pub fn canonical_name(name: &str) -> String {
    canonical(name).to_string()
}

/// [`canonical_name`] without the allocation: header look-ups run it for every
/// access (dozens per call), so they compare against the borrowed form.
fn canonical(name: &str) -> &str {
    if name.len() == 1 {
        for (short, long) in COMPACT {
            if short.eq_ignore_ascii_case(name) {
                return long;
            }
        }
    }
    for known in WELL_KNOWN {
        if known.eq_ignore_ascii_case(name) {
            return known;
        }
    }
    name
}

/// Headers whose value may be a comma-separated list of entries (§7.3.1) and that
/// the layers above need one entry at a time.
fn is_list_header(name: &str) -> bool {
    ["Via", "Route", "Record-Route", "Contact"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Splits a header value on top-level commas, ignoring commas inside `<...>` and
/// quoted strings (display names may contain commas). Empty entries are dropped.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    split_list_raw(value).into_iter().filter(|s| !s.is_empty())
}

/// [`split_list`] keeping empty entries (`a,,b` yields an empty middle entry), so
/// validation can refuse them (RFC 4475 §3.1.2.1).
pub fn split_list_raw(value: &str) -> Vec<&str> {
    split_unquoted(value, b',', true)
}

/// Splits on `sep` outside quoted strings (and, when `angle` is set, outside `<...>`),
/// trimming each part.
fn split_unquoted(value: &str, sep: u8, angle: bool) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth_angle = false;
    let mut in_quote = false;
    let mut escaped = false;
    let mut start = 0;
    // Bytes, not chars: every delimiter is ASCII, so a match is always at a
    // char boundary, and UTF-8 continuation bytes never equal one (this runs
    // over every Via, Contact and Route value).
    for (i, b) in value.bytes().enumerate() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
            continue;
        }
        match b {
            b'"' => in_quote = true,
            b'<' if angle => depth_angle = true,
            b'>' if angle => depth_angle = false,
            c if c == sep && !depth_angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts
}

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

/// Ordered header list. Names are canonical long forms; values are verbatim
/// (leading/trailing whitespace trimmed, folded lines joined with one space).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// First value of `name` (case-insensitive; compact forms accepted).
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = canonical(name);
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order. For Via, Route, Record-Route and Contact each
    /// comma-separated entry is yielded separately (commas inside `<>`/quotes kept).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        let split = is_list_header(&name);
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .flat_map(move |(_, v)| {
                let items: Vec<&'a str> = if split {
                    split_list(v).collect()
                } else {
                    vec![v.as_str()]
                };
                items
            })
    }

    /// Appends a header (after any existing ones of the same name).
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.entries.push((canonical_name(name), value.into()));
    }

    /// Replaces all headers `name` with one value, at the position of the first one
    /// (or at the end if there was none).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let canon = canonical(name);
        let pos = self
            .entries
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(canon));
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(canon));
        let entry = (canon.to_string(), value.into());
        match pos {
            Some(p) => self.entries.insert(p.min(self.entries.len()), entry),
            None => self.entries.push(entry),
        }
    }

    /// Removes all headers `name`.
    pub fn remove(&mut self, name: &str) {
        let canon = canonical(name);
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(canon));
    }

    /// Replaces the topmost Via entry (first entry of the first Via header), keeping
    /// the other entries of that header.
    pub fn set_top_via(&mut self, via: &Via) {
        let Some((_, value)) = self.entries.iter_mut().find(|(n, _)| n == "Via") else {
            return;
        };
        let mut entries: Vec<String> = split_list(value).map(str::to_string).collect();
        match entries.first_mut() {
            Some(first) => *first = via.to_value(),
            None => return,
        }
        *value = entries.join(", ");
    }

    /// Inserts a header before all others (used for pushing a Via, §16.6 step 8).
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        self.entries.insert(0, (canonical_name(name), value.into()));
    }

    /// All `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    // -- typed helpers ------------------------------------------------------

    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID").filter(|v| !v.is_empty())
    }

    /// CSeq number and method (§20.16).
    pub fn cseq(&self) -> Option<(u32, Method)> {
        let v = self.get("CSeq")?;
        let mut it = v.split_whitespace();
        let num = it.next()?.parse::<u32>().ok()?;
        let method = it.next()?;
        if it.next().is_some() {
            return None;
        }
        Some((num, Method::from_token(method)))
    }

    pub fn from_tag(&self) -> Option<&str> {
        NameAddr::parse(self.get("From")?)?.tag()
    }

    pub fn to_tag(&self) -> Option<&str> {
        NameAddr::parse(self.get("To")?)?.tag()
    }

    /// The topmost Via entry (first entry of the first Via header).
    pub fn top_via(&self) -> Option<Via> {
        Via::parse(self.get_all("Via").next()?)
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.get("Max-Forwards")?.trim().parse().ok()
    }

    /// URI of the first Contact entry (`*` is returned as `*`).
    pub fn contact_uri(&self) -> Option<&str> {
        let first = self.get_all("Contact").next()?;
        if first == "*" {
            return Some("*");
        }
        Some(NameAddr::parse(first)?.uri)
    }

    pub fn expires(&self) -> Option<u32> {
        self.get("Expires")?.trim().parse().ok()
    }

    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type")
    }

    fn write_to(&self, out: &mut Vec<u8>, body_len: usize) {
        let mut wrote_len = false;
        for (n, v) in &self.entries {
            if n == "Content-Length" {
                if wrote_len {
                    continue;
                }
                wrote_len = true;
                out.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
                continue;
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_len {
            out.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
        }
    }
}

/// Typed header helpers shared by requests and responses.
macro_rules! header_helpers {
    ($t:ty) => {
        impl $t {
            pub fn call_id(&self) -> Option<&str> {
                self.headers.call_id()
            }
            pub fn cseq(&self) -> Option<(u32, Method)> {
                self.headers.cseq()
            }
            pub fn from_tag(&self) -> Option<&str> {
                self.headers.from_tag()
            }
            pub fn to_tag(&self) -> Option<&str> {
                self.headers.to_tag()
            }
            pub fn top_via(&self) -> Option<Via> {
                self.headers.top_via()
            }
            pub fn max_forwards(&self) -> Option<u32> {
                self.headers.max_forwards()
            }
            pub fn contact_uri(&self) -> Option<&str> {
                self.headers.contact_uri()
            }
            pub fn expires(&self) -> Option<u32> {
                self.headers.expires()
            }
            pub fn content_type(&self) -> Option<&str> {
                self.headers.content_type()
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    Request(Request),
    Response(Response),
}

header_helpers!(Request);
header_helpers!(Response);

impl Request {
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Request {
            method,
            uri: uri.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Stamps `received`/`rport` on the top Via from the source address
    /// ([`Via::stamp_source`]). Returns whether the Via changed.
    pub fn stamp_source(&mut self, source: SocketAddr) -> bool {
        let Some(mut via) = self.top_via() else {
            return false;
        };
        if !via.stamp_source(source) {
            return false;
        }
        self.headers.set_top_via(&via);
        true
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        self.headers.write_to(&mut out, self.body.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

impl Response {
    /// A response to `req` per RFC 3261 §8.2.6: all Via (in order), From, To, Call-ID
    /// and CSeq copied; Content-Length 0.
    pub fn for_request(req: &Request, status: u16, reason: &str) -> Response {
        let mut headers = Headers::new();
        for (n, v) in req.headers.iter() {
            if n == "Via" {
                headers.push("Via", v);
            }
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = req.headers.get(name) {
                headers.push(name, v);
            }
        }
        headers.push("Content-Length", "0");
        Response {
            status,
            reason: reason.to_string(),
            headers,
            body: Vec::new(),
        }
    }

    /// Adds `;tag=` to To if it has none (§8.2.6.2).
    pub fn with_to_tag(mut self, tag: &str) -> Response {
        if self.headers.to_tag().is_none() {
            if let Some(to) = self.headers.get("To") {
                let v = format!("{};tag={tag}", without_tag_params(to));
                self.headers.set("To", v);
            }
        }
        self
    }

    pub fn is_provisional(&self) -> bool {
        (100..200).contains(&self.status)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        self.headers.write_to(&mut out, self.body.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

impl Message {
    /// Serialises with a freshly computed Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

pub(crate) enum StartLine {
    Request(Method, String),
    Response(u16, String),
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::BadStartLine(truncate(line, 80));
    if let Some(rest) = strip_prefix_ci(line, "SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2)
        let (version, rest) = rest.split_once(' ').ok_or_else(bad)?;
        if version != "2.0" {
            return Err(ParseError::BadVersion(truncate(
                &format!("SIP/{version}"),
                40,
            )));
        }
        let (code, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let status: u16 = code.parse().map_err(|_| bad())?;
        if !(100..700).contains(&status) {
            return Err(bad());
        }
        return Ok(StartLine::Response(status, reason.to_string()));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (§7.1)
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if method.is_empty() || !method.chars().all(is_token_char) || uri.is_empty() {
        return Err(bad());
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::BadVersion(truncate(version, 40)));
    }
    Ok(StartLine::Request(
        Method::from_token(method),
        uri.to_string(),
    ))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Finds the end of the header section: returns (index of first body byte).
/// Accepts CRLFCRLF and, leniently, LFLF.
fn find_header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            // next line empty?
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Parses the start line and headers (everything before the empty line).
pub(crate) fn parse_head(head: &[u8]) -> Result<(StartLine, Headers), ParseError> {
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate();
    let start = loop {
        match lines.next() {
            None => return Err(ParseError::Empty),
            Some((_, [])) => continue, // tolerate leading CRLF (§7.5)
            Some((n, l)) => {
                let s = std::str::from_utf8(l).map_err(|_| ParseError::NotUtf8 { line: n + 1 })?;
                break parse_start_line(s)?;
            }
        }
    };
    let mut headers = Headers::new();
    for (n, raw) in lines {
        if raw.is_empty() {
            break;
        }
        let line = std::str::from_utf8(raw).map_err(|_| ParseError::NotUtf8 { line: n + 1 })?;
        if line.starts_with([' ', '\t']) {
            // Folded continuation (§7.3.1): replace the line break with one space.
            let Some(last) = headers.entries.last_mut() else {
                return Err(ParseError::OrphanContinuation { line: n + 1 });
            };
            let cont = line.trim();
            if !cont.is_empty() {
                if !last.1.is_empty() {
                    last.1.push(' ');
                }
                last.1.push_str(cont);
            }
            continue;
        }
        let bad = || ParseError::BadHeaderLine {
            line: n + 1,
            text: truncate(line, 80),
        };
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(bad());
        }
        headers
            .entries
            .push((canonical_name(name), value.trim().to_string()));
    }
    Ok((start, headers))
}

/// The body length, refusing negative or non-numeric values and repeated headers
/// that disagree: with two lengths the framing is ambiguous (RFC 4475 §3.3.9).
pub(crate) fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let mut found = None;
    for v in headers.get_all("Content-Length") {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadContentLength(truncate(v, 40)));
        }
        let len = v
            .parse::<usize>()
            .map_err(|_| ParseError::BadContentLength(truncate(v, 40)))?;
        match found {
            Some(prev) if prev != len => return Err(ParseError::ConflictingContentLength),
            _ => found = Some(len),
        }
    }
    Ok(found)
}

pub(crate) fn build(start: StartLine, headers: Headers, body: Vec<u8>) -> Message {
    match start {
        StartLine::Request(method, uri) => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        StartLine::Response(status, reason) => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    }
}

/// Parses one datagram (UDP). Per §18.3 a body longer than Content-Length is
/// truncated, a shorter one is an error; without Content-Length the body is the rest
/// of the datagram.
pub fn parse(datagram: &[u8]) -> Result<Message, ParseError> {
    let skip = datagram
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(datagram.len());
    let datagram = &datagram[skip..];
    if datagram.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    let (head, rest) = match find_header_end(datagram) {
        Some(end) => (&datagram[..end], &datagram[end..]),
        None => {
            // Tolerate a datagram that ends right after the last header line.
            if datagram.ends_with(b"\n") {
                (datagram, &[][..])
            } else {
                return Err(ParseError::MissingHeaderEnd);
            }
        }
    };
    if head.len() > MAX_HEADER_BYTES {
        return Err(ParseError::HeadersTooLarge);
    }
    let (start, headers) = parse_head(head)?;
    let body = match content_length(&headers)? {
        Some(len) => match rest.get(..len) {
            Some(b) => b.to_vec(),
            None => {
                return Err(ParseError::BodyTooShort {
                    declared: len,
                    actual: rest.len(),
                })
            }
        },
        None => rest.to_vec(),
    };
    Ok(build(start, headers, body))
}

/// Frames one message from a stream buffer (TCP, §18.3: Content-Length is mandatory
/// on streams; a missing one is taken as 0). Leading CRLFs (keep-alives, RFC 5626
/// §3.5.1) are skipped and counted as consumed. Returns `Ok(None)` when more bytes
/// are needed.
pub fn parse_stream(buf: &[u8]) -> Result<Option<(Message, usize)>, ParseError> {
    let skip = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(buf.len());
    let data = &buf[skip..];
    if data.is_empty() {
        return Ok(None);
    }
    let Some(head_end) = find_header_end(data) else {
        if data.len() > MAX_HEADER_BYTES {
            return Err(ParseError::HeadersTooLarge);
        }
        return Ok(None);
    };
    if head_end > MAX_HEADER_BYTES {
        return Err(ParseError::HeadersTooLarge);
    }
    let (start, headers) = parse_head(&data[..head_end])?;
    let len = content_length(&headers)?.unwrap_or(0);
    if len > MAX_BODY_BYTES {
        return Err(ParseError::BodyTooLarge);
    }
    let Some(body) = data.get(head_end..head_end + len) else {
        return Ok(None);
    };
    Ok(Some((
        build(start, headers, body.to_vec()),
        skip + head_end + len,
    )))
}

// ---------------------------------------------------------------------------
// Via
// ---------------------------------------------------------------------------

/// Branch prefix of RFC 3261 transaction ids (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via entry (§20.42, RFC 3581 for `rport`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, `WS` … (upper-cased).
    pub transport: String,
    pub sent_by_host: String,
    pub sent_by_port: Option<u16>,
    pub branch: Option<String>,
    pub received: Option<String>,
    /// `None`: absent; `Some(None)`: `;rport` without value; `Some(Some(p))`: filled in.
    pub rport: Option<Option<u16>>,
    /// All parameters in order, including the ones above.
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses one Via entry such as `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport`.
    /// LWS is allowed around `/`, `:`, `;` and `=` (SLASH, COLON, SEMI, EQUAL are
    /// SWS-padded in RFC 3261 §25.1; RFC 4475 §3.1.1.1 has `SIP  /   2.0 /UDP`).
    /// Empty parameters (`;;`) and non-token names are refused (RFC 4475 §3.1.2.1).
    pub fn parse(value: &str) -> Option<Via> {
        let mut parts = value.trim().splitn(3, '/');
        let name = parts.next()?.trim();
        let ver = parts.next()?.trim();
        let rest = parts.next()?.trim_start();
        let gap = rest.find([' ', '\t'])?;
        let transport = &rest[..gap];
        let rest = rest[gap..].trim_start();
        if !name.eq_ignore_ascii_case("SIP")
            || ver != "2.0"
            || transport.is_empty()
            || !transport.chars().all(is_token_char)
        {
            return None;
        }
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let sent_by = sent_by
            .split(':')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(":");
        if sent_by
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '"')
        {
            return None;
        }
        let (host, port) = split_host_port(&sent_by)?;
        if !host.starts_with('[')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        {
            return None;
        }
        let mut via = Via {
            transport: transport.to_ascii_uppercase(),
            sent_by_host: host.to_string(),
            sent_by_port: port,
            branch: None,
            received: None,
            rport: None,
            params: Vec::new(),
        };
        for param in params
            .map(|p| split_unquoted(p, b';', false))
            .unwrap_or_default()
        {
            let (k, v) = match param.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (param, None),
            };
            if k.is_empty() || !k.chars().all(is_token_char) || v == Some("") {
                return None;
            }
            if k.eq_ignore_ascii_case("branch") {
                via.branch = v.map(str::to_string);
            } else if k.eq_ignore_ascii_case("received") {
                via.received = v.map(str::to_string);
            } else if k.eq_ignore_ascii_case("rport") {
                via.rport = Some(match v {
                    None => None,
                    Some(p) => Some(p.parse().ok()?),
                });
            }
            via.params.push((k.to_string(), v.map(str::to_string)));
        }
        Some(via)
    }

    /// True when the branch carries the RFC 3261 magic cookie and something after
    /// it (§8.1.1.7). Otherwise the request is matched the RFC 2543 way (§17.2.3);
    /// a bare `z9hG4bK` counts as no branch (RFC 4475 §3.2.1).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .as_deref()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// `host[:port]` as it appeared (IPv6 hosts keep their brackets), lower-cased
    /// for comparison (§17.2.3 compares sent-by).
    pub fn sent_by(&self) -> String {
        match self.sent_by_port {
            Some(p) => format!("{}:{}", self.sent_by_host, p).to_ascii_lowercase(),
            None => self.sent_by_host.to_ascii_lowercase(),
        }
    }

    /// Re-serialises (used when the edge fills in `received`/`rport`, RFC 3581 §4).
    pub fn to_value(&self) -> String {
        let mut s = format!("SIP/2.0/{} {}", self.transport, self.sent_by_host);
        if let Some(p) = self.sent_by_port {
            s.push_str(&format!(":{p}"));
        }
        for (k, v) in &self.params {
            s.push(';');
            s.push_str(k);
            if let Some(v) = v {
                s.push('=');
                s.push_str(v);
            }
        }
        s
    }

    /// Sets `received` and fills `rport` if the client asked for it (RFC 3581 §4).
    pub fn set_received(&mut self, ip: &str, port: u16) {
        self.received = Some(ip.to_string());
        self.params
            .retain(|(k, _)| !k.eq_ignore_ascii_case("received"));
        self.params.push(("received".into(), Some(ip.to_string())));
        if self.rport.is_some() {
            self.rport = Some(Some(port));
            for (k, v) in self.params.iter_mut() {
                if k.eq_ignore_ascii_case("rport") {
                    *v = Some(port.to_string());
                }
            }
        }
    }

    /// Stamps where the request really came from (§18.2.1, RFC 3581 §4): `received`
    /// when the sent-by host differs from the source IP or the client asked for
    /// `rport`, and the source port into `rport`. Returns whether anything changed.
    pub fn stamp_source(&mut self, source: SocketAddr) -> bool {
        let ip = source.ip().to_string();
        let host = self
            .sent_by_host
            .trim_start_matches('[')
            .trim_end_matches(']');
        let differs = host.parse::<IpAddr>().ok() != Some(source.ip());
        if !differs && self.rport.is_none() {
            return false;
        }
        self.set_received(&ip, source.port());
        true
    }
}

/// Splits `host[:port]`, handling `[v6]:port`. Returns None on an empty host or a
/// non-numeric port.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if s.starts_with('[') {
        let close = s.find(']')?;
        let host = &s[..=close];
        let rest = &s[close + 1..];
        if rest.is_empty() {
            return Some((host, None));
        }
        let port = rest.strip_prefix(':')?.parse().ok()?;
        return Some((host, Some(port)));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

// ---------------------------------------------------------------------------
// URIs and name-addr
// ---------------------------------------------------------------------------

/// Borrowed view of `scheme:user@host:port;params?headers` (§19.1.1). Only what the
/// layers above need; parameters are kept verbatim in `params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: &'a str,
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<u16>,
    /// Everything after the first `;` up to `?` (without the leading `;`).
    pub params: &'a str,
    /// Escaped headers after `?` (not allowed in a Request-URI, §19.1.1 table 1).
    pub headers: Option<&'a str>,
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (§25.1).
pub fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

impl<'a> Uri<'a> {
    pub fn parse(uri: &'a str) -> Option<Uri<'a>> {
        let uri = uri.trim();
        let (scheme, rest) = uri.split_once(':')?;
        if !is_scheme(scheme) {
            return None;
        }
        // '@' may not appear unescaped in parameters or headers, so the last one ends
        // the userinfo, which itself may hold ';' '?' ',' (RFC 4475 §3.1.1.2, §3.1.1.9).
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (hostpart, None),
        };
        let user = userinfo.map(|u| u.split(':').next().unwrap_or(u));
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i + 1..]),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hostport)?;
        Some(Uri {
            scheme,
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// URI parameter: `None` absent, `Some(None)` flag (`;lr`), `Some(Some(v))`.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        find_param(self.params, name)
    }
}

fn find_param<'a>(params: &'a str, name: &str) -> Option<Option<&'a str>> {
    for p in params.split(';') {
        let p = p.trim();
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p, None),
        };
        if k.eq_ignore_ascii_case(name) {
            return Some(v);
        }
    }
    None
}

/// User part of a SIP URI (`sip:alice@host` → `alice`).
pub fn uri_user(uri: &str) -> Option<&str> {
    Uri::parse(uri)?.user.filter(|u| !u.is_empty())
}

/// Host part of a SIP URI (IPv6 with brackets).
pub fn uri_host(uri: &str) -> Option<&str> {
    Some(Uri::parse(uri)?.host)
}

/// Explicit port of a SIP URI.
pub fn uri_port(uri: &str) -> Option<u16> {
    Uri::parse(uri)?.port
}

/// `name-addr` / `addr-spec` with header parameters (§20.10, §20.20, §20.39):
/// `"Display" <sip:uri;uri-params>;tag=x` or `sip:uri;tag=x` (in the latter form
/// everything after `;` is a header parameter, §20.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name, unquoted but escapes not processed.
    pub display: Option<&'a str>,
    pub uri: &'a str,
    /// Header parameters after the address, without the leading `;`.
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    pub fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        let v = value.trim();
        if let Some(lt) = find_unquoted(v, '<') {
            let gt = lt + v[lt..].find('>')?;
            let display = v[..lt].trim();
            let display = display
                .strip_prefix('"')
                .and_then(|d| d.strip_suffix('"'))
                .unwrap_or(display);
            let uri = v[lt + 1..gt].trim();
            let params = v[gt + 1..].trim().trim_start_matches(';');
            if uri.is_empty() {
                return None;
            }
            return Some(NameAddr {
                display: (!display.is_empty()).then_some(display),
                uri,
                params,
            });
        }
        if v.starts_with('"') {
            return None;
        }
        let (uri, params) = match v.find(';') {
            Some(i) => (v[..i].trim(), v[i + 1..].trim()),
            None => (v, ""),
        };
        if uri.is_empty() {
            return None;
        }
        Some(NameAddr {
            display: None,
            uri,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        find_param(self.params, name)
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten().filter(|t| !t.is_empty())
    }
}

/// `value` (a To/From header) without its `tag` header parameters. Used when the To
/// has no usable tag: a valueless `;tag` or `;tag=` (malformed, but it parses) would
/// otherwise come first and shadow the tag we append, so the peer reads our
/// response as untagged (found by the `sip_parse` fuzz target).
fn without_tag_params(value: &str) -> String {
    let value = value.trim();
    let Some(addr) = NameAddr::parse(value) else {
        return value.to_string();
    };
    // `params` is a suffix of the trimmed value (see NameAddr::parse).
    let head = value[..value.len() - addr.params.len()].trim_end_matches([';', ' ', '\t']);
    let mut out = head.to_string();
    for p in addr
        .params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let key = p.split_once('=').map_or(p, |(k, _)| k).trim();
        if !key.eq_ignore_ascii_case("tag") {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
        } else if c == '"' {
            in_quote = true;
        } else if c == target {
            return Some(i);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Request validation (§8.2) and salvaging a 400
// ---------------------------------------------------------------------------

/// Why a syntactically parsed request cannot be processed; maps to a SIP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    #[error("more than one {0} header")]
    RepeatedHeader(&'static str),
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch { method: String, cseq: String },
    #[error("Max-Forwards is 0")]
    TooManyHops,
    #[error("unsupported URI scheme {0:?}")]
    UnsupportedUriScheme(String),
    #[error("malformed Request-URI")]
    BadRequestUri,
    #[error("Request-URI carries headers")]
    RequestUriHeaders,
    #[error("REGISTER To is not a SIP or SIPS URI")]
    RegisterToNotSip,
}

impl RequestError {
    /// SIP status code to answer with (§8.2.1, §8.2.2, §16.3).
    pub fn status(&self) -> u16 {
        match self {
            RequestError::TooManyHops => 483,
            RequestError::UnsupportedUriScheme(_) => 416,
            _ => 400,
        }
    }

    /// Reason phrase naming the problem (goes on the status line).
    pub fn reason(&self) -> String {
        match self {
            RequestError::TooManyHops => "Too Many Hops".into(),
            RequestError::UnsupportedUriScheme(_) => "Unsupported URI Scheme".into(),
            other => sanitize_reason(&format!("Bad Request ({other})")),
        }
    }

    /// Short label for metrics (`reason` label of refusal counters).
    pub fn label(&self) -> &'static str {
        match self {
            RequestError::MissingHeader(_) => "missing_header",
            RequestError::BadHeader(_) => "bad_header",
            RequestError::RepeatedHeader(_) => "repeated_header",
            RequestError::CSeqMethodMismatch { .. } => "cseq_method_mismatch",
            RequestError::TooManyHops => "too_many_hops",
            RequestError::UnsupportedUriScheme(_) => "unsupported_uri_scheme",
            RequestError::BadRequestUri => "bad_request_uri",
            RequestError::RequestUriHeaders => "request_uri_headers",
            RequestError::RegisterToNotSip => "register_to_not_sip",
        }
    }
}

/// Headers that may appear once only (§20: no `#` list form); a second copy makes
/// the request ambiguous, so it is refused (RFC 4475 §3.3.8, §3.3.9).
pub const SINGLE_VALUE_HEADERS: &[&str] = &[
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Expires",
];

fn is_sip_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")
}

/// Checks a request beyond the grammar the parser enforces, so the edge can answer
/// with a status that names the problem (§8.2, RFC 4475): Request-URI scheme (416)
/// and form (400, no headers in it), repeated single-value headers, every Via entry,
/// From/To/Contact address syntax, Call-ID, CSeq (number below 2^31, method equal
/// to the request's), Max-Forwards, Content-Length.
///
/// A top Via without an RFC 3261 branch is accepted: the transaction layer matches
/// such requests the RFC 2543 way (§17.2.3). Max-Forwards 0 gives 483 except for
/// REGISTER and OPTIONS, which this endpoint answers itself (§11.1 allows probing a
/// UAS with Max-Forwards 0; RFC 4475 §3.3.11).
pub fn validate_request(req: &Request) -> Result<(), RequestError> {
    validate_request_uri(&req.uri)?;
    for name in SINGLE_VALUE_HEADERS {
        if req
            .headers
            .entries
            .iter()
            .filter(|(n, _)| n == name)
            .count()
            > 1
        {
            return Err(RequestError::RepeatedHeader(name));
        }
    }
    validate_vias(req)?;
    for name in ["From", "To"] {
        let v = req
            .headers
            .get(name)
            .ok_or(RequestError::MissingHeader(name))?;
        if !name_addr_ok(v) {
            return Err(RequestError::BadHeader(name));
        }
    }
    if req.headers.get("Call-ID").is_none() {
        return Err(RequestError::MissingHeader("Call-ID"));
    }
    if req
        .headers
        .call_id()
        .is_none_or(|c| c.contains(char::is_whitespace))
    {
        return Err(RequestError::BadHeader("Call-ID"));
    }
    validate_cseq(req)?;
    validate_contacts(req)?;
    if req.method == Method::Register {
        // §10.2: the address-of-record in To is a SIP or SIPS URI (RFC 4475 §3.3.4).
        let to = req.headers.get("To").and_then(NameAddr::parse);
        if !to.is_some_and(|n| n.uri.split_once(':').is_some_and(|(s, _)| is_sip_scheme(s))) {
            return Err(RequestError::RegisterToNotSip);
        }
    }
    if let Some(v) = req.headers.get("Max-Forwards") {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RequestError::BadHeader("Max-Forwards"));
        }
        // An overlarge value is only out of range, not zero (RFC 4475 §3.1.2.4).
        let zero = v.bytes().all(|b| b == b'0');
        if zero && !matches!(req.method, Method::Register | Method::Options) {
            return Err(RequestError::TooManyHops);
        }
    }
    if let Some(cl) = req.headers.get("Content-Length") {
        if cl.trim().parse::<usize>().is_err() {
            return Err(RequestError::BadHeader("Content-Length"));
        }
    }
    Ok(())
}

/// Request-URI: a well-formed scheme (else 400, RFC 4475 §3.1.2.7), SIP or SIPS
/// (else 416, §3.3.2/§3.3.3), parseable, and without `?headers` (§19.1.1, RFC 4475
/// §3.1.2.11: refusing is allowed, and safer than forwarding them).
fn validate_request_uri(uri: &str) -> Result<(), RequestError> {
    let scheme = uri.split_once(':').map(|(s, _)| s).unwrap_or("");
    if !is_scheme(scheme) {
        return Err(RequestError::BadRequestUri);
    }
    if !is_sip_scheme(scheme) {
        return Err(RequestError::UnsupportedUriScheme(truncate(scheme, 20)));
    }
    let parsed = Uri::parse(uri).ok_or(RequestError::BadRequestUri)?;
    if parsed.headers.is_some() {
        return Err(RequestError::RequestUriHeaders);
    }
    Ok(())
}

/// Every entry of every Via header must parse; empty entries (`a,,b`) are refused.
fn validate_vias(req: &Request) -> Result<(), RequestError> {
    let mut any = false;
    for (_, value) in req.headers.entries.iter().filter(|(n, _)| n == "Via") {
        for entry in split_list_raw(value) {
            if Via::parse(entry).is_none() {
                return Err(RequestError::BadHeader("Via"));
            }
            any = true;
        }
    }
    if any {
        Ok(())
    } else {
        Err(RequestError::MissingHeader("Via"))
    }
}

fn validate_cseq(req: &Request) -> Result<(), RequestError> {
    if req.headers.get("CSeq").is_none() {
        return Err(RequestError::MissingHeader("CSeq"));
    }
    let (num, method) = req.headers.cseq().ok_or(RequestError::BadHeader("CSeq"))?;
    // §8.1.1.5: the sequence number is below 2^31.
    if num >= 1 << 31 {
        return Err(RequestError::BadHeader("CSeq"));
    }
    // §17.1.1.3 / §9.1: ACK and CANCEL carry their own method in CSeq too.
    if method != req.method {
        return Err(RequestError::CSeqMethodMismatch {
            method: req.method.to_string(),
            cseq: method.to_string(),
        });
    }
    Ok(())
}

/// Contact entries: `*` (REGISTER only, §10.2.2) or a valid address.
fn validate_contacts(req: &Request) -> Result<(), RequestError> {
    for (_, value) in req.headers.entries.iter().filter(|(n, _)| n == "Contact") {
        for entry in split_list_raw(value) {
            let star = entry == "*" && req.method == Method::Register;
            if !star && !name_addr_ok(entry) {
                return Err(RequestError::BadHeader("Contact"));
            }
        }
    }
    Ok(())
}

/// Strict check of a From/To/Contact value (§20.10, §25.1), beyond what
/// [`NameAddr::parse`] tolerates:
/// * a display name is a quoted string or tokens (RFC 4475 §3.1.2.6, §3.1.2.15);
/// * no LWS inside `<...>` (LAQUOT/RAQUOT, RFC 4475 §3.1.2.14);
/// * an addr-spec outside `<>` holds no `?` or `,` (RFC 4475 §3.1.2.13);
/// * header parameters are non-empty with token names (RFC 4475 §3.1.2.1).
pub fn name_addr_ok(value: &str) -> bool {
    let v = value.trim();
    let (uri, params) = if let Some(lt) = find_unquoted(v, '<') {
        let Some(gt) = v[lt..].find('>').map(|i| lt + i) else {
            return false;
        };
        if !display_name_ok(v[..lt].trim()) {
            return false;
        }
        let uri = &v[lt + 1..gt];
        if uri.chars().any(char::is_whitespace) {
            return false;
        }
        let rest = v[gt + 1..].trim_start();
        match rest.strip_prefix(';') {
            Some(p) => (uri, Some(p)),
            None if rest.is_empty() => (uri, None),
            None => return false,
        }
    } else {
        if v.contains('"') {
            return false;
        }
        let (uri, params) = match v.split_once(';') {
            Some((u, p)) => (u.trim(), Some(p)),
            None => (v, None),
        };
        if uri.contains(['?', ',']) || uri.chars().any(char::is_whitespace) {
            return false;
        }
        (uri, params)
    };
    let scheme_ok = uri
        .split_once(':')
        .is_some_and(|(s, r)| is_scheme(s) && !r.is_empty());
    scheme_ok && params.is_none_or(params_ok)
}

/// `display-name = *(token LWS) / quoted-string` (§25.1).
fn display_name_ok(d: &str) -> bool {
    let Some(inner) = d.strip_prefix('"') else {
        return d.split_whitespace().all(|w| w.chars().all(is_token_char));
    };
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            // The closing quote must end the display name.
            return i + 1 == inner.len();
        }
    }
    false
}

/// `*( SEMI generic-param )` after the leading `;`: no empty parameter, token names,
/// a value after every `=`.
fn params_ok(params: &str) -> bool {
    split_unquoted(params, b';', false).into_iter().all(|p| {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p, None),
        };
        !k.is_empty() && k.chars().all(is_token_char) && v != Some("")
    })
}

/// The option tags of `Require` that are not in `supported` (case-insensitive,
/// §19.2), in order.
fn unsupported_tags<'a>(req: &'a Request, supported: &[&str]) -> Vec<&'a str> {
    req.headers
        .entries
        .iter()
        .filter(|(n, _)| n == "Require")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect()
}

/// §8.2.2.3: a UAS answers a request whose `Require` lists an option tag it does not
/// support with 420 Bad Extension and an `Unsupported` header listing those tags.
/// `Proxy-Require` is for proxies and is ignored here, as a UAS must (§20.29;
/// RFC 4475 §3.3.5: the 420 lists Require *or* Proxy-Require tags "depending on the
/// role"). Require in ACK and CANCEL is ignored (§8.2.2.3 last paragraph).
///
/// `100rel` (RFC 3262) is refused like any other tag unless it is in `supported`.
pub fn check_require(req: &Request, supported: &[&str]) -> Option<Response> {
    if matches!(req.method, Method::Ack | Method::Cancel) {
        return None;
    }
    let missing = unsupported_tags(req, supported);
    if missing.is_empty() {
        return None;
    }
    let mut resp = stateless_response(req, 420, "Bad Extension");
    resp.headers.push("Unsupported", missing.join(", "));
    Some(resp)
}

/// `type/subtype` of a media type, lower-cased, without parameters.
fn media_type(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether an `Accept` range (`*/*`, `type/*`, `type/subtype`) admits `mime`.
fn range_admits(range: &str, mime: &str) -> bool {
    let range = media_type(range);
    match range.strip_suffix("/*") {
        Some("*") => true,
        Some(kind) => mime.split('/').next() == Some(kind),
        None => range == mime,
    }
}

/// Body checks of an INVITE against the media types this UAS understands
/// (`accept`, e.g. `["application/sdp"]`):
/// * a body of another Content-Type → 415 with `Accept` (§8.2.3, RFC 4475 §3.3.6);
/// * an `Accept` header admitting none of them, so no answer could carry SDP →
///   406 Not Acceptable (§21.4.7, RFC 4475 §3.3.15, which says not 400).
///
/// Other methods are left to the TU (it may refuse the method itself with 405).
pub fn check_media(req: &Request, accept: &[&str]) -> Option<Response> {
    if req.method != Method::Invite {
        return None;
    }
    if !req.body.is_empty() {
        let ct = media_type(req.headers.get("Content-Type").unwrap_or(""));
        if !accept.iter().any(|a| a.eq_ignore_ascii_case(&ct)) {
            let mut resp = stateless_response(req, 415, "Unsupported Media Type");
            resp.headers.push("Accept", accept.join(", "));
            return Some(resp);
        }
    }
    let ranges: Vec<&str> = req
        .headers
        .get_all("Accept")
        .flat_map(|v| v.split(','))
        .collect();
    let admitted = ranges.iter().all(|r| r.trim().is_empty())
        || ranges
            .iter()
            .any(|r| accept.iter().any(|a| range_admits(r, a)));
    if !admitted {
        let mut resp = stateless_response(req, 406, "Not Acceptable");
        resp.headers.push("Accept", accept.join(", "));
        return Some(resp);
    }
    None
}

/// What a UAS understands, for [`screen_request`].
#[derive(Clone, Copy, Debug)]
pub struct UasPolicy<'a> {
    /// Option tags accepted in `Require` (e.g. none; `100rel` only once PRACK works).
    pub supported: &'a [&'a str],
    /// Body types understood in INVITE (e.g. `application/sdp`).
    pub accept: &'a [&'a str],
}

/// Why [`screen_request`] refused a request: the ready response and a metrics label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub response: Response,
    pub reason: &'static str,
}

/// All message-level checks a UAS makes before the TU sees a request, in RFC order:
/// [`validate_request`] (400/416/483), then [`check_require`] (420), then
/// [`check_media`] (415/406). The response is meant to be sent statelessly; its To
/// tag is derived from the request, so a retransmission gets the same answer.
/// ACK is never answered (§17.1.1.3): an invalid ACK yields a refusal whose
/// response should be dropped, see [`Refusal`] / `req.method`.
pub fn screen_request(req: &Request, policy: &UasPolicy<'_>) -> Result<(), Refusal> {
    if let Err(e) = validate_request(req) {
        return Err(Refusal {
            response: stateless_response(req, e.status(), &e.reason()),
            reason: e.label(),
        });
    }
    if let Some(response) = check_require(req, policy.supported) {
        return Err(Refusal {
            response,
            reason: "bad_extension",
        });
    }
    if let Some(response) = check_media(req, policy.accept) {
        let reason = if response.status == 415 {
            "unsupported_media_type"
        } else {
            "not_acceptable"
        };
        return Err(Refusal { response, reason });
    }
    Ok(())
}

/// A final response built without a transaction: copies Via/From/To/Call-ID/CSeq
/// and adds a To tag derived from the request (§8.2.6.2) so that retransmissions of
/// the request are answered identically.
pub fn stateless_response(req: &Request, status: u16, reason: &str) -> Response {
    let resp = Response::for_request(req, status, reason);
    let seed = format!(
        "{}|{}|{}",
        req.call_id().unwrap_or(""),
        req.from_tag().unwrap_or(""),
        req.top_via().and_then(|v| v.branch).unwrap_or_default()
    );
    resp.with_to_tag(&format!("{:016x}", fnv1a(seed.as_bytes())))
}

fn sanitize_reason(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(&cleaned, 120)
}

/// Tiny FNV-1a, used to derive a deterministic To tag for stateless 400s.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl ParseError {
    /// Status for a request that failed to parse: 505 for another SIP version
    /// (§21.5.7, RFC 4475 §3.1.2.16), 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadVersion(_) => 505,
            _ => 400,
        }
    }

    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::NotUtf8 { .. } => "not_utf8",
            ParseError::BadStartLine(_) => "bad_start_line",
            ParseError::BadVersion(_) => "bad_version",
            ParseError::BadHeaderLine { .. } => "bad_header_line",
            ParseError::OrphanContinuation { .. } => "orphan_continuation",
            ParseError::MissingHeaderEnd => "missing_header_end",
            ParseError::HeadersTooLarge => "headers_too_large",
            ParseError::BadContentLength(_) => "bad_content_length",
            ParseError::ConflictingContentLength => "conflicting_content_length",
            ParseError::BodyTooShort { .. } => "body_too_short",
            ParseError::BodyTooLarge => "body_too_large",
            ParseError::MessageTooLarge { .. } => "message_too_large",
        }
    }
}

/// Header lines of a raw message, folded lines joined (§7.3.1), as `(name, value)`.
/// Lines that are not `name: value` are skipped: this reads what it can.
fn salvage_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((canonical_name(name.trim()), value.trim().to_string()));
        }
    }
    out
}

/// Builds a ready-to-send error response for a request that failed [`parse`] or
/// [`validate_request`]: `505 Version Not Supported` when the request line names
/// another SIP version (RFC 4475 §3.1.2.16), otherwise `400 Bad Request`. Headers
/// are read line by line (folding joined), so a response can be formed from a
/// message the parser refused (RFC 4475 §3.1.2: "respond with 400" wherever it can).
///
/// A response is formed whenever the first line looks like a request (method token
/// first, `SIP/x.y` last) and at least one Via can be read: the client matches on
/// Via and CSeq, and From/To/Call-ID/CSeq are copied when present (RFC 4475 §3.3.1
/// asks for a 400 even without From, To and Call-ID). Returns `None` for responses,
/// for ACK (never answered, §17.1.1.3) and when no Via is found; the edge then drops
/// the datagram. A To tag derived from the Call-ID is added when absent (§8.2.6.2),
/// so repeated answers to the same request carry the same tag.
pub fn salvage_for_400(datagram: &[u8]) -> Option<Vec<u8>> {
    let problem = match parse(datagram) {
        Err(e) => e.to_string(),
        Ok(Message::Request(req)) => match validate_request(&req) {
            Err(e) => e.to_string(),
            Ok(()) => "malformed request".to_string(),
        },
        Ok(Message::Response(_)) => return None,
    };
    bad_request_for(datagram, &problem)
}

/// Like [`salvage_for_400`], with the problem already known (stream framing
/// errors: the head alone would parse, the problem is the message's size).
pub fn bad_request_for(datagram: &[u8], problem: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(datagram);
    let mut lines = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| l.is_empty());
    let first = lines.next()?;
    let parts: Vec<&str> = first.split_whitespace().collect();
    let (method, version) = match parts.as_slice() {
        [m, _, .., v] => (*m, *v),
        _ => return None,
    };
    // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT (§25.1)
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let version_ok = strip_prefix_ci(version, "SIP/")
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| digits(major) && digits(minor));
    if !method.chars().all(is_token_char) || !version_ok || method == "ACK" {
        return None;
    }
    let status = if version.eq_ignore_ascii_case("SIP/2.0") {
        400
    } else {
        505
    };
    let salvaged = salvage_headers(lines);
    let usable = |v: &str| !v.is_empty() && !v.chars().any(|c| c.is_control() && c != '\t');
    let mut headers = Headers::new();
    for (n, v) in &salvaged {
        if n == "Via" && usable(v) {
            headers.push("Via", v.as_str());
        }
    }
    if headers.is_empty() {
        return None;
    }
    let first_of = |name: &str| {
        salvaged
            .iter()
            .find(|(n, v)| n == name && usable(v))
            .map(|(_, v)| v.clone())
    };
    let call_id = first_of("Call-ID");
    if let Some(from) = first_of("From") {
        headers.push("From", from);
    }
    if let Some(mut to) = first_of("To") {
        if NameAddr::parse(&to).and_then(|n| n.tag()).is_none() {
            let seed = call_id.as_deref().unwrap_or(&to);
            to = format!("{to};tag={:016x}", fnv1a(seed.as_bytes()));
        }
        headers.push("To", to);
    }
    if let Some(c) = call_id {
        headers.push("Call-ID", c);
    }
    if let Some(c) = first_of("CSeq") {
        headers.push("CSeq", c);
    }
    headers.push("Content-Length", "0");
    let reason = match status {
        505 => "Version Not Supported".to_string(),
        _ => sanitize_reason(&format!("Bad Request ({problem})")),
    };
    let resp = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    Some(resp.to_bytes())
}

#[cfg(test)]
mod tests;
