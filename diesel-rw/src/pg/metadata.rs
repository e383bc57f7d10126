//! The type metadata lookup of custom PostgreSQL types (`HasSqlType::metadata`,
//! [`PgMetadataLookup`]) on the routing connection.
//!
//! Statements with custom types need no help: the node connection that runs a statement looks
//! its types up itself. This is for code that asks the connection directly, such as
//! `<Pg as HasSqlType<MyEnum>>::metadata(&mut conn)`. The lookup is a read of `pg_type`: it
//! runs where a read is routed (a replica by default; in a transaction, its node; the
//! primary when sticky after a write, such as the `CREATE TYPE` itself), on that node
//! connection, whose cache keeps the answer.

use std::borrow::Cow;

use diesel::pg::{
    FailedToLookupTypeError, PgConnection, PgMetadataCacheKey, PgMetadataLookup, PgTypeMetadata,
};

use crate::classify::StatementKind;
use crate::sync::RwConnection;

/// A failed lookup of `type_name` (what diesel returns when the type is not found).
pub(crate) fn failed(type_name: &str, schema: Option<&str>) -> PgTypeMetadata {
    let key = PgMetadataCacheKey::new(
        schema.map(|s| Cow::Owned(s.to_owned())),
        Cow::Owned(type_name.to_owned()),
    );
    PgTypeMetadata::from_result(Err(FailedToLookupTypeError::new(key)))
}

impl PgMetadataLookup for RwConnection<PgConnection> {
    fn lookup_type(&mut self, type_name: &str, schema: Option<&str>) -> PgTypeMetadata {
        match self.route(StatementKind::Read, || {
            format!("<type metadata lookup of {type_name}>")
        }) {
            Ok(node) => self.node_conn(node).lookup_type(type_name, schema),
            Err(error) => {
                tracing::debug!(target: "diesel_rw", %error, type_name, "type lookup not routed");
                failed(type_name, schema)
            }
        }
    }

    fn as_any<'a>(&mut self) -> &mut (dyn std::any::Any + 'a)
    where
        Self: 'a,
    {
        self
    }
}
