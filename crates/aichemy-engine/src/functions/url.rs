//! Trino's URL functions: the parts of a URL (`url_extract_*`), read as Java's `URI` reads
//! them (a text that is not a valid URI gives NULL), and `url_encode`/`url_decode` as
//! HTML forms encode values.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{invalid_argument, scalar_result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Protocol,
    Host,
    Port,
    Path,
    Query,
    Fragment,
    Parameter,
    Encode,
    Decode,
}

impl Part {
    const ALL: [Part; 9] = [
        Part::Protocol,
        Part::Host,
        Part::Port,
        Part::Path,
        Part::Query,
        Part::Fragment,
        Part::Parameter,
        Part::Encode,
        Part::Decode,
    ];

    fn name(self) -> &'static str {
        match self {
            Part::Protocol => "url_extract_protocol",
            Part::Host => "url_extract_host",
            Part::Port => "url_extract_port",
            Part::Path => "url_extract_path",
            Part::Query => "url_extract_query",
            Part::Fragment => "url_extract_fragment",
            Part::Parameter => "url_extract_parameter",
            Part::Encode => "url_encode",
            Part::Decode => "url_decode",
        }
    }
}

/// Registers every URL function.
pub fn register(ctx: &SessionContext) {
    for part in Part::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(UrlFunction::new(part)));
    }
}

/// The components of a URI (RFC 3986), each as written (still percent-encoded).
#[derive(Debug, Default, PartialEq)]
struct Uri<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<i64>,
    path: Option<&'a str>,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// Characters a URI never holds as they are (Java's `URI` refuses them).
fn forbidden(c: char) -> bool {
    c.is_ascii_control()
        || matches!(
            c,
            ' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}'
        )
}

fn parse(text: &str) -> Option<Uri<'_>> {
    if text.is_empty() || text.chars().any(forbidden) || !escapes_are_valid(text) {
        return None;
    }
    let mut uri = Uri::default();
    let (rest, fragment) = match text.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (text, None),
    };
    uri.fragment = fragment;
    let mut rest = rest;
    if let Some(colon) = rest.find(':') {
        let scheme = &rest[..colon];
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if is_scheme && !scheme.contains(['/', '?']) {
            uri.scheme = Some(scheme);
            rest = &rest[colon + 1..];
            // An opaque URI (`mailto:a@b`) has no path, host or query.
            if !rest.starts_with('/') {
                return Some(uri);
            }
        } else if scheme.is_empty() {
            return None;
        }
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    uri.query = query;
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let authority = &after[..end];
            let server = authority.rsplit_once('@').map_or(authority, |(_, s)| s);
            let (host, port) = match server.strip_prefix('[') {
                // An IPv6 address: `[…]`, then maybe `:port`.
                Some(inside) => {
                    let close = inside.find(']')? + 2;
                    let after = &server[close..];
                    if !(after.is_empty() || after.starts_with(':')) {
                        return None;
                    }
                    (&server[..close], after.strip_prefix(':'))
                }
                None => match server.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (server, None),
                },
            };
            match port {
                Some("") | None => {}
                Some(port) => uri.port = Some(port.parse().ok()?),
            }
            if !host.is_empty() {
                uri.host = Some(host);
            }
            &after[end..]
        }
        None => rest,
    };
    uri.path = Some(path);
    Some(uri)
}

fn escapes_are_valid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// `%XX` sequences decoded as UTF-8 (and, for form values, `+` as a space); `None` when an
/// escape is malformed or the bytes are not UTF-8.
fn decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// As an HTML form encodes a value: letters, digits and `.-*_` kept, a space as `+`, every
/// other byte of the UTF-8 text as `%XX`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The value of the first `name=value` pair of a query string, as written.
fn parameter<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let mut parts = pair.splitn(2, '=');
        (parts.next() == Some(name)).then(|| parts.next().unwrap_or(""))
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct UrlFunction {
    part: Part,
    signature: Signature,
}

impl UrlFunction {
    fn new(part: Part) -> Self {
        let arity = if part == Part::Parameter { 2 } else { 1 };
        Self {
            part,
            signature: Signature::exact(vec![DataType::Utf8; arity], Volatility::Immutable),
        }
    }

    fn text(&self, url: &str, name: Option<&str>) -> Result<Option<String>> {
        let decoded = |part: Option<&str>| part.and_then(|p| decode(p, false));
        Ok(match self.part {
            Part::Encode => Some(encode(url)),
            Part::Decode => Some(decode(url, true).ok_or_else(|| {
                invalid_argument(format!(
                    "URLDecoder: Illegal hex characters in escape (%) pattern: {url}"
                ))
            })?),
            part => {
                let Some(uri) = parse(url) else {
                    return Ok(None);
                };
                match part {
                    Part::Protocol => uri.scheme.map(str::to_string),
                    Part::Host => uri.host.map(str::to_string),
                    Part::Path => decoded(uri.path),
                    Part::Query => decoded(uri.query),
                    Part::Fragment => decoded(uri.fragment),
                    Part::Parameter => uri
                        .query
                        .and_then(|q| parameter(q, name.unwrap_or_default()))
                        .map(str::to_string),
                    _ => None,
                }
            }
        })
    }
}

impl ScalarUDFImpl for UrlFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.part.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.part == Part::Port {
            DataType::Int64
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?
            .iter()
            .map(|a| cast(a, &DataType::Utf8))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let urls = arrays[0].as_string::<i32>();
        let result: ArrayRef = if self.part == Part::Port {
            Arc::new(
                urls.iter()
                    .map(|url| url.and_then(parse).and_then(|uri| uri.port))
                    .collect::<Int64Array>(),
            )
        } else {
            let names = arrays.get(1).map(|a| a.as_string::<i32>());
            let mut out = Vec::with_capacity(urls.len());
            for (i, url) in urls.iter().enumerate() {
                let name = names.map(|n| (!n.is_null(i)).then(|| n.value(i)));
                out.push(match (url, name) {
                    (None, _) | (_, Some(None)) => None,
                    (Some(url), name) => self.text(url, name.flatten())?,
                });
            }
            Arc::new(StringArray::from(out))
        };
        scalar_result(&args.args, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_java_reads_them() {
        let uri = parse("https://user@example.com:8080/a%20b/c?x=1&y=%41#frag").unwrap();
        assert_eq!(uri.scheme, Some("https"));
        assert_eq!(uri.host, Some("example.com"));
        assert_eq!(uri.port, Some(8080));
        assert_eq!(uri.path, Some("/a%20b/c"));
        assert_eq!(uri.query, Some("x=1&y=%41"));
        assert_eq!(uri.fragment, Some("frag"));
        assert_eq!(parse("ftp://path/file").unwrap().host, Some("path"));
        assert_eq!(parse("http://[::1]:80/").unwrap().host, Some("[::1]"));
        assert_eq!(parse("http://x/a b"), None);
        assert_eq!(parse("http://x:port/"), None);
        assert_eq!(parse("mailto:a@b").unwrap().path, None);
        assert_eq!(parameter("a=1&b=2&b=3&c", "b"), Some("2"));
        assert_eq!(parameter("a=1&c", "c"), Some(""));
        assert_eq!(parameter("a=1", "z"), None);
        assert_eq!(encode("a b/ü*"), "a+b%2F%C3%BC*");
        assert_eq!(decode("a+b%2F%C3%BC", true).as_deref(), Some("a b/ü"));
        assert_eq!(decode("%zz", true), None);
    }
}
