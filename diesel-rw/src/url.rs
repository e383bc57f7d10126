//! Connection URLs that never show their password.
//!
//! A [`NodeUrl`] keeps the URL for connecting and shows only its redacted form in `Debug` and
//! `Display`: the password of `scheme://user:password@host` and any `password=` parameter
//! become `***`.

use std::fmt;

use crate::error::Error;

/// A database URL whose `Debug` and `Display` hide the password.
///
/// ```
/// use diesel_rw::NodeUrl;
/// let url = NodeUrl::new("postgres://app:s3cret@db:5432/app");
/// assert_eq!(url.to_string(), "postgres://app:***@db:5432/app");
/// assert!(!format!("{url:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct NodeUrl {
    url: String,
    redacted: String,
}

impl NodeUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let redacted = redact(&url);
        NodeUrl { url, redacted }
    }

    /// The URL with its password, for connecting. Never log this.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The error for this URL with this reason.
    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidUrl {
            url: self.redacted.clone(),
            reason: reason.into(),
        }
    }
}

impl fmt::Debug for NodeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NodeUrl").field(&self.redacted).finish()
    }
}

impl fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Replaces the password of a URL (userinfo and `password=` parameters) with `***`.
///
/// Also handles libpq key/value strings (`host=db password=x`).
pub fn redact(url: &str) -> String {
    // Several URLs in one string (`primary=URL replica=URL`, `source=URL destination=URL`):
    // redact each one.
    if url.matches("://").count() > 1 {
        let mut out = String::with_capacity(url.len());
        let mut rest = url;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push_str(&redact_one(&rest[..end]));
            rest = &rest[end..];
        }
        out.push_str(rest);
        return out;
    }
    redact_one(url)
}

/// Redacts one URL (possibly behind a `key=` prefix) or one key/value string.
fn redact_one(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let rest = if let Some(scheme_end) = url.find("://") {
        let (scheme, after) = url.split_at(scheme_end + 3);
        out.push_str(scheme);
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, tail) = after.split_at(authority_end);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        tail
    } else {
        url
    };
    out.push_str(&redact_password_params(rest));
    out
}

/// Redacts `password=value` in query strings (`&`-separated) and key/value strings
/// (space-separated, values possibly single-quoted).
fn redact_password_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let at_boundary = i == 0 || matches!(bytes[i - 1], b'?' | b'&' | b' ' | b';' | b'\t');
        let key = ["password=", "sslpassword=", "pass="]
            .into_iter()
            .find(|k| {
                at_boundary && s[i..].len() >= k.len() && s[i..i + k.len()].eq_ignore_ascii_case(k)
            });
        if let Some(key) = key {
            out.push_str(&s[i..i + key.len()]);
            out.push_str("***");
            i += key.len();
            if bytes.get(i) == Some(&b'\'') {
                i += 1;
                while i < s.len() && bytes[i] != b'\'' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(s.len());
            } else {
                while i < s.len() && !matches!(bytes[i], b'&' | b' ' | b';' | b'\t' | b'#') {
                    i += 1;
                }
            }
        } else {
            let ch = s[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Checks a `scheme://[user[:password]@]host[:port][,host[:port]...][/path]` URL: the scheme is
/// one of `schemes` and every port is a number from 1 to 65535.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn check_network_url(url: &NodeUrl, schemes: &[&str]) -> Result<(), Error> {
    let raw = url.expose();
    if raw.trim().is_empty() {
        return Err(url.invalid("the URL is empty"));
    }
    let Some(scheme_end) = raw.find("://") else {
        return Err(url.invalid(format!(
            "expected a URL starting with {}",
            schemes
                .iter()
                .map(|s| format!("`{s}://`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    };
    let scheme = &raw[..scheme_end];
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(url.invalid(format!(
            "unsupported scheme `{scheme}`, expected {}",
            schemes
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    let after = &raw[scheme_end + 3..];
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    for host in hosts.split(',') {
        let port = if let Some(rest) = host.strip_prefix('[') {
            rest.split_once(']')
                .ok_or_else(|| url.invalid(format!("unclosed `[` in host `{host}`")))?
                .1
                .strip_prefix(':')
        } else {
            host.split_once(':').map(|(_, p)| p)
        };
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => {}
                _ => {
                    return Err(
                        url.invalid(format!("port `{port}` is not a number from 1 to 65535"))
                    )
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("mysql://app@db/app"), "mysql://app@db/app");
        assert_eq!(redact("mysql://db/app"), "mysql://db/app");
        assert_eq!(
            redact("postgres://a:p@ss@db/x"),
            "postgres://a:***@db/x",
            "last @ ends the userinfo"
        );
    }

    #[test]
    fn redacts_every_url_of_a_spec() {
        assert_eq!(
            redact("source=postgres://a:p1@h1/x destination=postgres://b:p2@h2/y strict=true"),
            "source=postgres://a:***@h1/x destination=postgres://b:***@h2/y strict=true"
        );
        assert_eq!(
            redact("primary=mysql://a:p1@h1/x  replica=mysql://a:p2@h2/x"),
            "primary=mysql://a:***@h1/x  replica=mysql://a:***@h2/x"
        );
    }

    #[test]
    fn redacts_password_parameters() {
        assert_eq!(
            redact("postgres://db/app?user=a&password=s3cret&sslmode=require"),
            "postgres://db/app?user=a&password=***&sslmode=require"
        );
        assert_eq!(
            redact("host=db password='se cret' user=a"),
            "host=db password=*** user=a"
        );
        assert_eq!(redact("host=db PASSWORD=x"), "host=db PASSWORD=***");
        assert_eq!(redact("/tmp/app.db"), "/tmp/app.db");
    }

    #[test]
    fn checks_scheme_and_port() {
        let ok = NodeUrl::new("postgres://u:pw@127.0.0.1:55432,127.0.0.2:5/db");
        assert!(check_network_url(&ok, &["postgres", "postgresql"]).is_ok());
        let bad = NodeUrl::new("postgres://u:s3cret@127.0.0.1:notaport/db");
        let err = check_network_url(&bad, &["postgres"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("notaport"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = check_network_url(&NodeUrl::new("http://x"), &["mysql"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported scheme `http`"), "{err}");
        assert!(check_network_url(&NodeUrl::new(""), &["mysql"]).is_err());
        assert!(check_network_url(&NodeUrl::new("[::1]:5/x"), &["mysql"]).is_err());
    }
}
