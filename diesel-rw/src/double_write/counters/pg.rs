//! PostgreSQL's generated-key counters: sequences (`SERIAL`, `IDENTITY` and free-standing ones),
//! read from `pg_sequences` with the table column that owns each (`pg_depend`), set with
//! `setval`.

use diesel::connection::{Connection, LoadConnection};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::{KeyCounter, KeyCounterBackend};

#[derive(QueryableByName)]
struct SequenceRow {
    #[diesel(sql_type = Text)]
    sequence: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_value: Option<i64>,
    #[diesel(sql_type = Bool)]
    descending: bool,
    #[diesel(sql_type = Nullable<Text>)]
    owner_table: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    owner_column: Option<String>,
}

impl From<SequenceRow> for KeyCounter {
    fn from(row: SequenceRow) -> Self {
        KeyCounter {
            table: row.owner_table,
            column: row.owner_column,
            sequence: Some(row.sequence),
            value: row.last_value,
            descending: row.descending,
        }
    }
}

/// Every sequence of the database outside the system schemas, schema-qualified and quoted, with
/// its last value (`NULL` before its first use, or without the privilege to read it), its
/// direction, and the column that owns it: `SERIAL` and `OWNED BY` are an automatic (`a`)
/// dependency of the sequence on the column, `IDENTITY` an internal (`i`) one.
const SEQUENCES: &str = "\
SELECT format('%I.%I', s.schemaname, s.sequencename) AS sequence, s.last_value, \
       s.increment_by < 0 AS descending, \
       CASE WHEN t.oid IS NOT NULL THEN format('%I.%I', tn.nspname, t.relname) END AS owner_table, \
       a.attname::text AS owner_column \
FROM pg_sequences s \
JOIN pg_namespace sn ON sn.nspname = s.schemaname \
JOIN pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename \
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid \
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') \
LEFT JOIN pg_class t ON t.oid = d.refobjid \
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace \
LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid \
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema') \
ORDER BY 1";

/// Sets a sequence (`$1`, as named in [`SEQUENCES`]) so that its next value follows `$2`.
const SET: &str = "SELECT setval($1::regclass, $2, true)";

impl KeyCounterBackend for Pg {
    fn read_key_counters<C>(conn: &mut C) -> QueryResult<Vec<KeyCounter>>
    where
        C: LoadConnection + Connection<Backend = Self>,
    {
        let rows: Vec<SequenceRow> = diesel::sql_query(SEQUENCES).load(conn)?;
        Ok(rows.into_iter().map(KeyCounter::from).collect())
    }

    fn set_key_counter<C>(conn: &mut C, counter: &KeyCounter, value: i64) -> QueryResult<()>
    where
        C: LoadConnection + Connection<Backend = Self>,
    {
        diesel::sql_query(SET)
            .bind::<Text, _>(counter.name())
            .bind::<BigInt, _>(value)
            .execute(conn)
            .map(drop)
    }
}

#[cfg(feature = "async")]
impl super::AsyncKeyCounters for diesel_async::AsyncPgConnection {
    async fn read_key_counters(&mut self) -> QueryResult<Vec<KeyCounter>> {
        let rows: Vec<SequenceRow> =
            diesel_async::RunQueryDsl::load(diesel::sql_query(SEQUENCES), self).await?;
        Ok(rows.into_iter().map(KeyCounter::from).collect())
    }

    async fn set_key_counter(&mut self, counter: &KeyCounter, value: i64) -> QueryResult<()> {
        let query = diesel::sql_query(SET)
            .bind::<Text, _>(counter.name().to_owned())
            .bind::<BigInt, _>(value);
        diesel_async::RunQueryDsl::execute(query, self)
            .await
            .map(drop)
    }
}
