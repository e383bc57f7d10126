//! The connection string of [`DoubleWriteConnection::establish`](super::DoubleWriteConnection).

use super::context::DoubleWriteContext;
use super::pattern::Pattern;
use super::switch::PatternSwitch;
use crate::backend::RwBackend;
use crate::error::Error;
use crate::url::{redact, NodeUrl};

const KEYS: [&str; 5] = ["source=", "destination=", "pattern=", "strict=", "shared="];

/// Parses a connection string into the context of a new connection:
///
/// - a plain URL: that database as the source, no destination (reads and writes go to it alone,
///   as under `src_only`);
/// - `source=URL destination=URL [pattern=NAME] [strict=true|false]`, whitespace-separated: a
///   pair with its own switch (at `pattern`, default `src_only`), journal and metrics;
/// - `shared=NAME`: the context registered under `NAME`.
pub(crate) fn context_from_spec<DB: RwBackend>(spec: &str) -> Result<DoubleWriteContext, Error> {
    let entries: Vec<&str> = spec.split_whitespace().collect();
    let keyed = |entry: &&str| KEYS.iter().any(|k| entry.starts_with(k));
    if !entries.iter().any(keyed) {
        // A plain URL (it may contain spaces, as libpq key/value strings do).
        let url = NodeUrl::new(spec.trim());
        DB::check_url(&url)?;
        return Ok(DoubleWriteContext::standalone(
            url,
            None,
            PatternSwitch::default(),
            false,
        ));
    }
    let (mut source, mut destination, mut pattern, mut strict, mut shared) =
        (None, None, None, None, None);
    for entry in entries {
        let (key, value) = entry.split_once('=').ok_or_else(|| unknown_entry(entry))?;
        let slot = match key {
            "source" => &mut source,
            "destination" => &mut destination,
            "pattern" => &mut pattern,
            "strict" => &mut strict,
            "shared" => &mut shared,
            _ => return Err(unknown_entry(entry)),
        };
        if slot.replace(value).is_some() {
            return Err(Error::Config(format!(
                "the double-write connection string names `{key}=` more than once"
            )));
        }
    }
    if let Some(name) = shared {
        if source.is_some() || destination.is_some() || pattern.is_some() || strict.is_some() {
            return Err(Error::Config(
                "`shared=NAME` takes every setting from the registered context: remove the other entries of the connection string".into(),
            ));
        }
        return DoubleWriteContext::registered(name).ok_or_else(|| {
            Error::Config(format!(
                "no double-write context is registered as `{name}`: call DoubleWriteBuilder::register(\"{name}\") before opening connections with `shared={name}`"
            ))
        });
    }
    let source = NodeUrl::new(source.ok_or_else(|| {
        Error::Config(
            "the double-write connection string has no `source=URL` (write `source=URL destination=URL`)"
                .into(),
        )
    })?);
    DB::check_url(&source)?;
    let destination = destination.map(NodeUrl::new);
    if let Some(destination) = &destination {
        DB::check_url(destination)?;
        if destination.expose() == source.expose() {
            return Err(same_database());
        }
    }
    let pattern = pattern.map_or(Ok(Pattern::SrcOnly), str::parse)?;
    if destination.is_none() && pattern != Pattern::SrcOnly {
        return Err(Error::Config(format!(
            "pattern `{pattern}` needs a destination: add `destination=URL` to the connection string"
        )));
    }
    let strict = match strict {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::Config(format!(
                "`strict={other}` in the double-write connection string: write `strict=true` or `strict=false`"
            )))
        }
    };
    Ok(DoubleWriteContext::standalone(
        source,
        destination,
        PatternSwitch::new(pattern),
        strict,
    ))
}

/// Checks `url` if it is a double-write connection string (`source=URL destination=URL ...` or
/// `shared=NAME`): `None` for anything else. Lets a pool of
/// [`DoubleWriteConnection`](super::DoubleWriteConnection)s (an
/// [`RwPool`](crate::RwPool) whose primary double-writes) validate it when it is built.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) fn check_connection_string<DB: RwBackend>(url: &NodeUrl) -> Option<Result<(), Error>> {
    is_connection_string(url).then(|| context_from_spec::<DB>(url.expose()).map(|_| ()))
}

/// Whether `url` is a double-write connection string (`source=URL destination=URL ...` or
/// `shared=NAME`) rather than one database's URL.
pub(crate) fn is_connection_string(url: &NodeUrl) -> bool {
    url.expose()
        .split_whitespace()
        .any(|entry| KEYS.iter().any(|k| entry.starts_with(k)))
}

/// The error for an [`RwPool`](crate::RwPool) whose primary double-writes and that has
/// replicas: those replicas are the source's, and reads would go to them in every pattern.
pub(crate) fn replicas_of_a_double_write() -> Error {
    Error::Config(
        "an RwPool whose primary is a double write (`source=... destination=...` or `shared=NAME`) cannot have replicas: they would serve reads from the source in every pattern, also under DstFirst and DstOnly when the destination has authority. Give each side its own cluster instead: DoubleWrite::<RwConnection<C>>::builder().source_cluster(RwPool of the source's primary and replicas).destination_cluster(RwPool of the destination's primary and replicas) (AsyncDoubleWrite::<AsyncRwConnection<C>> for diesel-async)".into(),
    )
}

fn unknown_entry(entry: &str) -> Error {
    Error::Config(format!(
        "`{}` in the double-write connection string is none of `source=URL`, `destination=URL`, `pattern=NAME`, `strict=true|false`, `shared=NAME`",
        redact(entry)
    ))
}

pub(crate) fn same_database() -> Error {
    Error::Config(
        "the source and the destination are the same URL: every write would apply twice to one database; give the destination its own URL".into(),
    )
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::double_write::Side;
    use diesel::sqlite::Sqlite;

    #[test]
    fn plain_url_is_a_source_alone() {
        let ctx = context_from_spec::<Sqlite>("/tmp/a.db").unwrap();
        assert_eq!(ctx.node(Side::Source), Some("/tmp/a.db"));
        assert_eq!(ctx.node(Side::Destination), None);
        assert_eq!(ctx.switch().get(), Pattern::SrcOnly);
    }

    #[test]
    fn keyed_spec() {
        let ctx = context_from_spec::<Sqlite>(
            "source=/tmp/a.db destination=/tmp/b.db pattern=dst_first strict=true",
        )
        .unwrap();
        assert_eq!(ctx.node(Side::Destination), Some("/tmp/b.db"));
        assert_eq!(ctx.switch().get(), Pattern::DstFirst);
        assert!(ctx.is_strict());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |spec: &str| context_from_spec::<Sqlite>(spec).unwrap_err().to_string();
        assert!(err("source=/a destination=/b pattern=both")
            .contains("unknown double-write pattern `both`"));
        assert!(err("source=/a source=/b").contains("more than once"));
        assert!(err("source=/a replica=/b").contains("`replica=/b`"));
        assert!(err("destination=/b").contains("no `source=URL`"));
        assert!(err("source=/a destination=/a").contains("same URL"));
        assert!(err("source=/a pattern=src_first").contains("needs a destination"));
        assert!(err("source=/a destination=/b strict=yes").contains("strict=true"));
        assert!(err("shared=nobody-registered-this").contains("no double-write context"));
        assert!(err("shared=x source=/a").contains("remove the other entries"));
    }
}
