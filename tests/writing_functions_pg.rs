//! The application's functions that write, learned from PostgreSQL's catalog (primary 55432, hot
//! standby 55433): a `VOLATILE` PL/pgSQL function that inserts runs on the primary, a `STABLE`
//! one on the standby (tests/common/writing_functions.rs).
#![cfg(feature = "postgres")]

#[macro_use]
mod common;
#[path = "common/writing_functions.rs"]
#[macro_use]
mod writing_functions;

/// This suite's objects, made by the test user (it owns the test database's `public`).
mod ddl {
    use diesel::prelude::*;

    /// The server's own word that it is the primary.
    pub const IS_PRIMARY: &str = "NOT pg_is_in_recovery()";
    /// `wf_named` with its schema, as the builder names it.
    pub const QUALIFIED_NAMED: &str = "public.wf_named";

    pub fn admin() -> PgConnection {
        PgConnection::establish(&super::common::pg::primary_url()).unwrap()
    }

    /// The double write's destination (55434).
    pub fn destination() -> String {
        super::common::pg::dest_url()
    }

    pub fn destination_admin() -> PgConnection {
        PgConnection::establish(&destination()).unwrap()
    }

    fn writer(name: &str) -> String {
        format!(
            "CREATE OR REPLACE FUNCTION {name}(t text) RETURNS int LANGUAGE plpgsql VOLATILE AS \
             $$ BEGIN INSERT INTO wf_log (tag, node) VALUES (t, inet_server_port()::text); \
             RETURN 1; END $$"
        )
    }

    pub fn create() -> Vec<String> {
        vec![
            "CREATE TABLE IF NOT EXISTS wf_log (id serial PRIMARY KEY, tag text NOT NULL, \
             node text NOT NULL)"
                .into(),
            writer("wf_write"),
            writer("wf_named"),
            "CREATE OR REPLACE FUNCTION wf_read(i int) RETURNS int LANGUAGE sql STABLE AS \
             $$ SELECT i + 1 $$"
                .into(),
        ]
    }

    pub fn create_late() -> Vec<String> {
        vec![writer("wf_late")]
    }

    pub fn drop_late() {
        use diesel::connection::SimpleConnection;
        admin()
            .batch_execute("DROP FUNCTION IF EXISTS wf_late(text)")
            .unwrap();
    }
}

writing_functions_suite!(pg);

/// diesel's setup migration's `diesel_manage_updated_at` creates a trigger: always a write.
#[test]
fn diesel_manage_updated_at_is_a_write() {
    use diesel_rw::{classify_sql_with, SqlDialect, StatementKind, WritingFunctions};
    for sql in [
        "SELECT diesel_manage_updated_at('users')",
        "SELECT public.diesel_manage_updated_at('users'::regclass)",
    ] {
        assert_eq!(
            classify_sql_with(sql, SqlDialect::Postgres, &WritingFunctions::default()),
            StatementKind::Write
        );
        assert_eq!(diesel_rw::classify_sql(sql), StatementKind::Write);
    }
}
