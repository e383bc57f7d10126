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
    /// Wraps a URL. A network URL is normalised first, so that the driver never misreads it
    /// and never echoes a part of the password in an error: its scheme is made lower-case
    /// (`POSTGRES://` is `postgres://`), and an `@`, `/`, `?` or `#` left unencoded in the
    /// password is percent-encoded (drivers decode it back).
    ///
    /// ```
    /// use diesel_rw::NodeUrl;
    /// let url = NodeUrl::new("POSTGRES://app:p@ss@db:5432/app");
    /// assert_eq!(url.expose(), "postgres://app:p%40ss@db:5432/app");
    /// assert_eq!(url.redacted(), "postgres://app:***@db:5432/app");
    /// let url = NodeUrl::new("mysql://app:pa/ss@db/app");
    /// assert_eq!(url.expose(), "mysql://app:pa%2Fss@db/app");
    /// assert_eq!(url.redacted(), "mysql://app:***@db/app");
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        let url = normalize(&url.into());
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
    if is_spec(url) {
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
///
/// The password of `scheme://user:password@host` is taken to run from the first `:` after the
/// scheme to the last `@`, so a password with an unencoded `@`, `/`, `?` or `#` is hidden whole.
/// (A URL without a password but with an `@` in its query, such as
/// `postgres://db:5432/app?application_name=a@b`, is redacted more than it needs: better than
/// less.)
fn redact_one(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let rest = if let Some(scheme_end) = scheme_end(url) {
        let (scheme, after) = url.split_at(scheme_end + 3);
        out.push_str(scheme);
        // `password=` parameters first, so that the userinfo cut below cannot split one.
        let after = &redact_password_params(after);
        match userinfo_end(after, true) {
            Some(at) => {
                let userinfo = &after[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&after[at..]);
            }
            None => out.push_str(after),
        }
        return out;
    } else {
        url
    };
    out.push_str(&redact_password_params(rest));
    out
}

/// Whether `s` holds several URLs separated by blanks (`primary=URL replica=URL`): at least two
/// of its blank-separated words are `key=scheme://...`.
fn is_spec(s: &str) -> bool {
    s.split_whitespace()
        .filter(|word| scheme_end(word).is_some_and(|end| word[..end].contains('=')))
        .nth(1)
        .is_some()
}

/// Where the `://` after a `[key=]scheme` prefix starts, if `token` is a URL (and not, say, a
/// key/value string whose quoted password holds a `://`).
fn scheme_end(token: &str) -> Option<usize> {
    let end = token.find("://")?;
    let prefix = &token[..end];
    let (key, scheme) = match prefix.rfind('=') {
        Some(eq) => (&prefix[..eq], &prefix[eq + 1..]),
        None => ("", prefix),
    };
    let key_ok = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    (key_ok && scheme_ok).then_some(end)
}

/// Where the userinfo of the URL text after `scheme://` ends (the index of its `@`); `None`
/// for no userinfo.
///
/// Drivers cut the authority at the first `/`, `?` or `#`; a password that holds one unencoded
/// leaves them a broken authority (a "port" that is no number) or an `@` in the path.
/// - For `redaction`, an authority with a `:` or an `@` has a userinfo that runs to the last
///   `@` (hiding too much rather than too little).
/// - For normalisation, only a broken authority (then the first `@` after it) or an `@` in the
///   path (the first) counts; an `@` in a query after a real port is left alone.
fn userinfo_end(after: &str, redaction: bool) -> Option<usize> {
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_end];
    if redaction {
        return after.rfind('@').filter(|_| authority.contains([':', '@']));
    }
    if let Some(at) = authority.rfind('@') {
        return Some(at);
    }
    let rest = &after[authority_end..];
    let broken_port = authority
        .split_once(':')
        .is_some_and(|(_, port)| port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()));
    let found = if broken_port {
        rest.find('@')
    } else {
        let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
        path.find('@')
    };
    found.map(|i| i + authority_end)
}

/// Normalises every network URL in `url` (a URL, or a `key=URL ...` string of several): see
/// [`NodeUrl::new`].
fn normalize(url: &str) -> String {
    if !is_spec(url) {
        let start = url.len() - url.trim_start().len();
        return format!("{}{}", &url[..start], normalize_one(&url[start..]));
    }
    let mut out = String::with_capacity(url.len() + 8);
    let mut rest = url;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push_str(&normalize_one(&rest[..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Normalises one URL (possibly behind a `key=` prefix): the scheme lower-cased, the password's
/// unencoded `@`, `/`, `?`, `#` percent-encoded. Only where the URL is otherwise misread: a
/// second `@` in the authority, or an authority cut short by a `/`, `?` or `#` of the password
/// (its "port" is then not a number) with an `@` after it.
fn normalize_one(token: &str) -> String {
    let Some(scheme_end) = scheme_end(token) else {
        return token.to_owned();
    };
    let key_end = token[..scheme_end].rfind('=').map_or(0, |i| i + 1);
    let (key, scheme) = (&token[..key_end], &token[key_end..scheme_end]);
    let after = &token[scheme_end + 3..];
    let mut out = format!("{key}{}://", scheme.to_ascii_lowercase());
    let at = userinfo_end(after, false);
    let Some(at) = at else {
        out.push_str(after);
        return out;
    };
    let (userinfo, host) = after.split_at(at);
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    out.push_str(&encode_reserved(user));
    if let Some(password) = password {
        out.push(':');
        out.push_str(&encode_reserved(password));
    }
    out.push_str(host);
    out
}

/// Percent-encodes the characters that end a URL's userinfo early (`%` is left alone: the
/// text may be encoded already).
fn encode_reserved(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '@' => out.push_str("%40"),
            '/' => out.push_str("%2F"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Redacts `password=value` in query strings (`&`-separated) and key/value strings
/// (space-separated, values possibly single-quoted, blanks allowed around `=` as libpq allows).
fn redact_password_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        let at_boundary =
            i == 0 || matches!(bytes[i - 1], b'?' | b'&' | b' ' | b';' | b'\t' | b'\n');
        let key = ["sslpassword", "password", "pass"]
            .into_iter()
            .find_map(|k| {
                let end = i + k.len();
                if !at_boundary || s.len() < end || !s[i..end].eq_ignore_ascii_case(k) {
                    return None;
                }
                // Blanks, then `=`, then blanks.
                let after_key = s[end..].len() - s[end..].trim_start_matches([' ', '\t']).len();
                let eq = end + after_key;
                (bytes.get(eq) == Some(&b'=')).then(|| {
                    let value = eq
                        + 1
                        + (s[eq + 1..].len() - s[eq + 1..].trim_start_matches([' ', '\t']).len());
                    value
                })
            });
        if let Some(value) = key {
            out.push_str(&s[i..value]);
            out.push_str("***");
            i = value;
            if bytes.get(i) == Some(&b'\'') {
                i += 1;
                while i < s.len() && bytes[i] != b'\'' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(s.len());
                // An escape may have stepped into a multi-byte character.
                while !s.is_char_boundary(i) {
                    i += 1;
                }
            } else {
                while i < s.len() && !matches!(bytes[i], b'&' | b' ' | b';' | b'\t' | b'\n' | b'#')
                {
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
    fn redacts_unusual_passwords_and_blanks_around_equals() {
        for (url, shown) in [
            ("postgres://app:pa/ss@db/app", "postgres://app:***@db/app"),
            (
                "postgres://app:pa?ss@db:5432/app",
                "postgres://app:***@db:5432/app",
            ),
            ("postgres://app:pa#ss@db/app", "postgres://app:***@db/app"),
            ("postgres://app:p@ss@db/app", "postgres://app:***@db/app"),
            (
                "host=db password = s3cret user=a",
                "host=db password = *** user=a",
            ),
            ("host=db password= 's3 cret'", "host=db password= ***"),
            ("host=db\npassword=s3cret", "host=db\npassword=***"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
            assert_eq!(NodeUrl::new(url).redacted(), shown, "{url}");
        }
    }

    #[test]
    fn normalises_what_a_driver_would_misread() {
        for (url, exposed) in [
            ("POSTGRES://app:pw@db/app", "postgres://app:pw@db/app"),
            (
                "postgres://app:pa/ss@db/app",
                "postgres://app:pa%2Fss@db/app",
            ),
            ("postgres://app:p@ss@db/app", "postgres://app:p%40ss@db/app"),
            (
                "mysql://app:a?b#c@db:3306/app",
                "mysql://app:a%3Fb%23c@db:3306/app",
            ),
            // Left alone: a port, an `@` in the query, percent-encoding already there.
            (
                "postgres://db:5432/app?application_name=a@b",
                "postgres://db:5432/app?application_name=a@b",
            ),
            (
                "postgres://app:p%40ss@db/app",
                "postgres://app:p%40ss@db/app",
            ),
            (
                "primary=POSTGRES://a:p/w@h/x replica=postgres://h2/x",
                "primary=postgres://a:p%2Fw@h/x replica=postgres://h2/x",
            ),
            ("/tmp/app.db", "/tmp/app.db"),
            ("host=db password=x", "host=db password=x"),
        ] {
            assert_eq!(NodeUrl::new(url).expose(), exposed, "{url}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// What a person reading the URL sees: every way diesel-rw shows it.
        fn shown(url: &NodeUrl, raw: &str) -> Vec<String> {
            vec![
                url.to_string(),
                format!("{url:?}"),
                url.redacted().to_owned(),
                redact(raw),
                check_network_url(url, &["postgres", "postgresql", "mysql"])
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                url.invalid("a reason").to_string(),
            ]
        }

        /// Percent-decodes the four characters `encode_reserved` encodes.
        fn decode(s: &str) -> String {
            s.replace("%40", "@")
                .replace("%2F", "/")
                .replace("%3F", "?")
                .replace("%23", "#")
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2_000, max_global_rejects: 1_000_000, ..ProptestConfig::default() })]

            #[test]
            fn no_form_of_url_shows_its_password(
                user in "[a-z]{1,8}",
                password in "[A-Za-z0-9@/?#:&=;'!~. -]{4,16}",
                host in "[a-z]{1,8}(\\.[a-z]{1,5})?",
                port in 1u16..,
                scheme in prop::sample::select(vec!["postgres", "POSTGRES", "Postgresql", "mysql", "MySQL"]),
                form in 0usize..6,
            ) {
                let plain: String = password.chars().filter(|c| !"&#; \t'".contains(*c)).collect();
                let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
                let (url, secret) = match form {
                    0 => (format!("{scheme}://{user}:{password}@{host}:{port}/app"), password.clone()),
                    1 => (format!("{scheme}://{user}:{password}@{host}/app?sslmode=require"), password.clone()),
                    2 => (format!("{scheme}://{host}:{port}/app?user={user}&password={plain}&x=1"), plain.clone()),
                    3 => (format!("host={host} user={user} password = '{quoted}' port={port}"), password.clone()),
                    4 => (format!("host={host} password={plain} user={user}"), plain.clone()),
                    // The URLs of a `key=URL ...` string hold no blanks.
                    _ => {
                        let password: String = password.chars().filter(|c| *c != ' ').collect();
                        (
                            format!("source={scheme}://{user}:{password}@{host}/a destination={scheme}://{user}:{password}@{host}x/b strict=true"),
                            password,
                        )
                    }
                };
                prop_assume!(secret.len() >= 4);
                // The secret must not stand in the rest of the URL by chance.
                prop_assume!(!url.replacen(&secret, "", 2).contains(&secret));
                prop_assume!(!format!("{user}{host}{port}{scheme}").contains(&secret));
                let node = NodeUrl::new(url.clone());
                for text in shown(&node, &url) {
                    prop_assert!(!text.contains(&secret), "{secret:?} shown in {text:?} (from {url:?})");
                }
                // The normalised URL still carries the same password for the driver.
                if form < 2 && !password.contains('%') {
                    let after = &node.expose()[node.expose().find("://").unwrap() + 3..];
                    let userinfo = &after[..after.rfind('@').unwrap()];
                    prop_assert_eq!(decode(userinfo.split_once(':').unwrap().1), password);
                    prop_assert!(node.expose().starts_with(&scheme.to_ascii_lowercase()));
                }
            }
        }
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
