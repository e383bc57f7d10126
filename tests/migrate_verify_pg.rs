//! Verify and Repair on PostgreSQL: source 55432, destination 55434 (`scripts/db up`), tables
//! `mig2_*` in the default schema.
#![cfg(feature = "postgres")]

mod common;
#[macro_use]
#[path = "common/migrate_verify.rs"]
mod mv;
#[macro_use]
#[path = "common/migrate_journal.rs"]
mod mj;

use diesel::prelude::*;
use mv::{eq, ne, Canon, Case, Values, VerifyBed, Writer};

struct Pg;

impl VerifyBed for Pg {
    type Conn = PgConnection;
    const NAME: &'static str = "PostgreSQL";
    const BIGINT: &'static str = "BIGINT";
    const TEXT: &'static str = "TEXT";
    const DECIMAL: &'static str = "NUMERIC(12,2)";
    const TIMESTAMPTZ: &'static str = "TIMESTAMPTZ";
    const NOW: &'static str = "clock_timestamp()";
    const UNCOMPARABLE: Option<(&'static str, &'static str, Canon)> =
        Some(("INTERVAL", "'1 day'", Canon::Plain));

    fn urls(_test: &str) -> Option<(String, String)> {
        let (src, dst) = (common::pg::primary_url(), common::pg::dest_url());
        for url in [&src, &dst] {
            if let Err(e) = PgConnection::establish(url) {
                common::unavailable(common::pg::NAME, &e.to_string());
                return None;
            }
        }
        Some((src, dst))
    }

    fn connect(url: &str) -> PgConnection {
        PgConnection::establish(url).unwrap()
    }

    fn text(expr: &str) -> String {
        format!("({expr})::text")
    }

    fn double_writer(src: &str, dst: &str) -> Writer {
        double_writer!(PgConnection, src, dst, "")
    }

    fn cases(values: Values) -> Case {
        match values {
            Values::NullEmptyTrailing => Case::new(
                "VARCHAR(10)",
                vec![
                    ne("NULL", "''"),
                    ne("'a'", "'a '"),
                    ne("' a'", "'a'"),
                    eq("''", "''"),
                    eq("NULL", "NULL"),
                    eq("'x y'", "'x y'"),
                ],
            ),
            Values::FixedChar => Case::new(
                "CHAR(4)",
                vec![
                    eq("'a'", "'a   '"),
                    eq("'ab'", "'ab'"),
                    ne("'a'", "' a'"),
                    ne("NULL", "''"),
                ],
            ),
            Values::NumericScale => Case {
                source_type: "NUMERIC(12,2)",
                destination_type: "NUMERIC",
                pairs: vec![
                    eq("1.50", "1.5"),
                    eq("100", "100.000"),
                    eq("-0.00", "0"),
                    ne("1.5", "1.51"),
                    ne("10", "1"),
                    eq("'NaN'", "'NaN'"),
                ],
                source_session: "",
                destination_session: "",
            },
            Values::Float => Case::new(
                "DOUBLE PRECISION",
                vec![
                    ne("0.1::float8 + 0.2::float8", "0.3"),
                    eq("'-0'", "0"),
                    eq("'NaN'", "'NaN'"),
                    ne("'0.3333333333333333'", "'0.33333333333333337'"),
                    eq("1e308", "1e308"),
                    ne("'Infinity'", "'-Infinity'"),
                    eq("1::float8 / 3", "'0.3333333333333333'"),
                ],
            ),
            Values::Timestamps => Case {
                source_type: "TIMESTAMPTZ",
                destination_type: "TIMESTAMPTZ(3)",
                pairs: vec![
                    // The destination's session is at +05:30: its literal without an offset
                    // is that wall clock there.
                    eq("'2020-01-01 02:00:00+02'", "'2020-01-01 05:30:00'"),
                    ne("'2020-01-01 00:00:00+00'", "'2020-01-01 00:00:00'"),
                    eq("'2020-01-01 00:00:00.5+00'", "'2020-01-01 00:00:00.500+00'"),
                    ne("'2020-01-01 00:00:00.5+00'", "'2020-01-01 00:00:00.501+00'"),
                    eq("'infinity'", "'infinity'"),
                ],
                source_session: "SET TIME ZONE 'UTC'",
                destination_session: "SET TIME ZONE 'Asia/Kolkata'",
            },
            Values::WallClock => Case {
                source_type: "TIMESTAMP",
                destination_type: "TIMESTAMP(3)",
                pairs: vec![
                    eq("'2020-01-01 00:00:00'", "'2020-01-01 00:00:00.000'"),
                    ne("'2020-01-01 00:00:00'", "'2020-01-01 00:00:01'"),
                    eq("'2020-01-01 10:00:00.25'", "'2020-01-01 10:00:00.250'"),
                ],
                source_session: "SET TIME ZONE 'UTC'",
                destination_session: "SET TIME ZONE 'Asia/Kolkata'",
            },
            Values::Binary => Case {
                destination_session: "SET bytea_output = 'escape'",
                ..Case::new(
                    "BYTEA",
                    vec![
                        eq("'\\x00ff'", "'\\x00ff'"),
                        ne("'\\x00'", "'\\x0000'"),
                        ne("'\\x'", "NULL"),
                        ne("'\\x41'", "'\\x61'"),
                    ],
                )
            },
            Values::Json => Case {
                source_type: "JSON",
                destination_type: "JSONB",
                pairs: vec![
                    eq(r#"'{"b":1, "a":[1, 2]}'"#, r#"'{"a":[1,2],"b":1}'"#),
                    ne(r#"'{"a":[1,2]}'"#, r#"'{"a":[2,1]}'"#),
                    ne(r#"'{"a":"1"}'"#, r#"'{"a":1}'"#),
                    eq("'[]'", "' [ ] '"),
                    ne("'null'", "NULL"),
                ],
                source_session: "",
                destination_session: "",
            },
            Values::Unicode => Case::new(
                "TEXT",
                vec![
                    ne("chr(233)", "'e' || chr(769)"),
                    eq("'日本語'", "'日本語'"),
                    ne("'ß'", "'ss'"),
                    eq("'😀'", "'😀'"),
                    ne("'a'", "'A'"),
                ],
            ),
        }
    }
}

migrate_verify_suite!(crate::Pg);

impl mj::JournalBed for Pg {
    const READ_ONLY: &'static str = "SET default_transaction_read_only = on";
    const SESSION: &'static str = "";
    const BEGIN: &'static str = "BEGIN";
}

migrate_journal_suite!(crate::Pg);
migrate_journal_network_suite!(crate::Pg);
migrate_journal_returning_suite!(crate::Pg);

/// A partial commit of a transaction whose second COMMIT fails after the first succeeded.
mod partial_commit {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use std::sync::Arc;

    use diesel_rw::double_write::{EntryKind, TableJournal};

    use crate::mj::{journal_table, keys_since, plain_table, pool};
    use crate::mv::{key, keys, sorted, verify};

    diesel::table! {
        mig2_j_commit (id) {
            id -> BigInt,
            v -> Nullable<Text>,
        }
    }

    /// The destination has a deferred unique constraint the transaction breaks: the source
    /// commits, the destination's COMMIT fails. One partial-commit entry per statement, with
    /// its keys (from the binds); once the cause is removed, verify finds those rows, repair
    /// converges them, and the entries are done.
    #[test]
    fn journal_entries_of_a_transaction_whose_second_commit_failed() {
        let Some(mut t) = crate::mv::tables::<crate::Pg>("j_commit") else {
            return;
        };
        plain_table(&mut t, 10);
        journal_table(&mut t);
        t.dst
            .batch_execute(
                "ALTER TABLE mig2_j_commit ADD CONSTRAINT mig2_j_commit_v UNIQUE (v) \
                 DEFERRABLE INITIALLY DEFERRED",
            )
            .unwrap();
        let journal = Arc::new(TableJournal::<PgConnection>::new(t.src_url.clone()).unwrap());
        let dw = pool(&t, journal, false);
        let mut c = dw.get().unwrap();
        // Lenient: the source committed, so the call reports the transaction committed.
        c.transaction::<_, diesel::result::Error, _>(|c| {
            diesel::update(mig2_j_commit::table.find(3i64))
                .set(mig2_j_commit::v.eq("v2"))
                .execute(c)?;
            diesel::insert_into(mig2_j_commit::table)
                .values((mig2_j_commit::id.eq(11i64), mig2_j_commit::v.eq("a")))
                .execute(c)?;
            Ok(())
        })
        .unwrap();
        drop(c);
        let got = keys_since(&t, 0, EntryKind::PartialCommit);
        assert_eq!(
            got,
            vec![Some(vec!["3".to_owned()]), Some(vec!["11".to_owned()])]
        );
        // Only the destination's COMMIT failed: its transaction is gone.
        let tb = t.table.clone();
        let out = verify(&tb)
            .run_journal(&mut t.src, &mut t.dst, None)
            .unwrap();
        assert!(!out.whole_table && out.done.is_empty(), "{out:?}");
        assert_eq!(out.report.different_keys(), vec![key(3)], "{out:?}");
        assert_eq!(
            sorted(out.report.missing_on_destination_keys()),
            keys(&[11])
        );
        // The operator removes the cause, then repairs.
        t.dst
            .batch_execute("ALTER TABLE mig2_j_commit DROP CONSTRAINT mig2_j_commit_v")
            .unwrap();
        diesel_rw::migrate::repair::Repair::new(tb.as_str())
            .run(&out.report, &mut t.src, &mut t.dst)
            .unwrap();
        let out = verify(&tb)
            .run_journal(&mut t.src, &mut t.dst, None)
            .unwrap();
        assert!(out.report.is_clean(), "{out:?}");
        assert_eq!(out.done.len(), 2, "{out:?}");
    }
}

/// Verify over many batches of chunk boundaries (64 chunks a batch): differences at batch
/// edges, in the first and last chunk, rows only the follower has before the first and after
/// the last key, and a table that ends exactly at a batch's end; both directions.
mod batched {
    use diesel::connection::SimpleConnection;

    use crate::mv::{keys, sorted, verify};

    /// Chunks by key value over sparse, skewed keys (gaps growing as the cube, negative keys,
    /// a dense run at the end): the width adapts, and every difference is found.
    #[test]
    fn verify_by_key_value_over_sparse_keys() {
        let Some(mut t) = crate::mv::tables::<crate::Pg>("b_sparse") else {
            return;
        };
        let tb = t.table.clone();
        let ddl = format!("CREATE TABLE {tb} (id BIGINT PRIMARY KEY, v TEXT)");
        let fill = format!(
            "INSERT INTO {tb} SELECT g * g * g - 1000000, 'v' || g FROM generate_series(1, 300) g; \
             INSERT INTO {tb} SELECT g, 'd' || g FROM generate_series(30000000, 30002000) g"
        );
        for c in [&mut t.src, &mut t.dst] {
            c.batch_execute(&ddl).unwrap();
            c.batch_execute(&fill).unwrap();
        }
        t.dst
            .batch_execute(&format!(
                "DELETE FROM {tb} WHERE id IN (-999999, 7000000, 30001000); \
                 UPDATE {tb} SET v = 'x' WHERE id IN (26000000, 30002000); \
                 INSERT INTO {tb} VALUES (-9223372036854775808, 'min'), (9223372036854775807, 'max')"
            ))
            .unwrap();
        let r = verify(&tb)
            .chunk_rows(5)
            .leaf_rows(3)
            .run(&mut t.src, &mut t.dst)
            .unwrap();
        assert_eq!(
            sorted(r.missing_on_destination_keys()),
            sorted(keys(&[-999999, 7000000, 30001000])),
            "{r:?}"
        );
        assert_eq!(
            sorted(r.different_keys()),
            sorted(keys(&[26000000, 30002000])),
            "{r:?}"
        );
        assert_eq!(
            sorted(r.missing_on_source_keys()),
            sorted(keys(&[i64::MIN, i64::MAX])),
            "{r:?}"
        );
        assert_eq!(r.rows_compared, 300 + 2001 + 2, "{r:?}");
    }

    #[test]
    fn verify_in_batches_finds_differences_at_every_edge() {
        for (rows, test) in [(300, "b_300"), (256, "b_256")] {
            let Some(mut t) = crate::mv::tables::<crate::Pg>(test) else {
                return;
            };
            let tb = t.table.clone();
            let ddl = format!("CREATE TABLE {tb} (id BIGINT PRIMARY KEY, v TEXT)");
            let fill =
                format!("INSERT INTO {tb} SELECT g, 'v' || g FROM generate_series(1, {rows}) g");
            for c in [&mut t.src, &mut t.dst] {
                c.batch_execute(&ddl).unwrap();
                c.batch_execute(&fill).unwrap();
            }
            // Chunks of 2 rows, 64 chunks a batch: batch ends at keys 128, 256.
            t.dst
                .batch_execute(&format!(
                    "DELETE FROM {tb} WHERE id IN (1, 128, 256); \
                     UPDATE {tb} SET v = 'x' WHERE id IN (2, 129, {rows}); \
                     INSERT INTO {tb} VALUES (-5, 'below'), ({}, 'after'), ({}, 'after')",
                    rows + 1,
                    rows + 50
                ))
                .unwrap();
            let mut missing_dst: Vec<i64> = vec![1, 128];
            let mut different: Vec<i64> = vec![2, 129];
            if rows == 256 {
                missing_dst.push(256);
                different.retain(|&k| k != 256);
            } else {
                missing_dst.push(256);
                different.push(rows);
            }
            let missing_src = vec![-5, rows + 1, rows + 50];
            for auth in [
                diesel_rw::double_write::Side::Source,
                diesel_rw::double_write::Side::Destination,
            ] {
                let r = verify(&tb)
                    .chunk_rows(2)
                    .leaf_rows(2)
                    .authoritative(auth)
                    .run(&mut t.src, &mut t.dst)
                    .unwrap();
                assert_eq!(
                    sorted(r.missing_on_destination_keys()),
                    sorted(keys(&missing_dst)),
                    "{auth} {rows}: {r:?}"
                );
                assert_eq!(
                    sorted(r.missing_on_source_keys()),
                    sorted(keys(&missing_src)),
                    "{auth} {rows}: {r:?}"
                );
                assert_eq!(
                    sorted(r.different_keys()),
                    sorted(keys(&different)),
                    "{auth} {rows}: {r:?}"
                );
                assert_eq!(r.rows_compared, rows as u64 + 3, "{auth} {rows}: {r:?}");
                assert!(r.chunks > 64, "{r:?}");
            }
        }
    }
}

/// The async double write's journal entries have their keys from the binds too.
#[cfg(feature = "async")]
mod async_journal {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel_async::{AsyncPgConnection, RunQueryDsl};
    use std::sync::Arc;

    use diesel_rw::double_write::{AsyncDoubleWrite, EntryKind, Pattern, TableJournal};

    use crate::mj::{journal_table, keys_since, plain_table};

    diesel::table! {
        mig2_j_async (id) {
            id -> BigInt,
            v -> Nullable<Text>,
        }
    }

    /// DSL writes through `AsyncDoubleWrite<AsyncPgConnection>`, refused by the destination (a
    /// check constraint there only): each entry has the keys of its binds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_journal_entries_of_dsl_statements_have_their_keys() {
        let Some(mut t) = crate::mv::tables::<crate::Pg>("j_async") else {
            return;
        };
        plain_table(&mut t, 10);
        journal_table(&mut t);
        t.dst
            .batch_execute(
                "ALTER TABLE mig2_j_async ADD CONSTRAINT mig2_j_async_v CHECK (v <> 'x')",
            )
            .unwrap();
        let journal = Arc::new(TableJournal::<PgConnection>::new(t.src_url.clone()).unwrap());
        let pool = AsyncDoubleWrite::<AsyncPgConnection>::builder()
            .source(&t.src_url)
            .destination(&t.dst_url)
            .pattern(Pattern::SrcFirst)
            .journal(journal)
            .max_size(1)
            .build()
            .unwrap();
        let mut c = pool.get().await.unwrap();
        diesel::insert_into(mig2_j_async::table)
            .values(&vec![
                (mig2_j_async::id.eq(11i64), mig2_j_async::v.eq("x")),
                (mig2_j_async::id.eq(12i64), mig2_j_async::v.eq("x")),
            ])
            .execute(&mut c)
            .await
            .unwrap();
        diesel::update(mig2_j_async::table.filter(mig2_j_async::id.eq_any([3i64, 4])))
            .set(mig2_j_async::v.eq("x"))
            .execute(&mut c)
            .await
            .unwrap();
        drop(c);
        let got = keys_since(&t, 0, EntryKind::WriteFailed);
        let want = |k: &[&str]| Some(k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, vec![want(&["11", "12"]), want(&["3", "4"])]);
    }
}
