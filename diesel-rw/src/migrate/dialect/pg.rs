//! PostgreSQL: the catalog (`pg_catalog`) and the connection.

use super::Dialect;

super::impl_migrate_connection!(diesel::PgConnection, Dialect::Postgres, |c, f| {
    diesel::Connection::transaction(c, f)
});

/// The columns of the table `name` (resolved like the server does: `to_regclass`, so an
/// unqualified name goes through the `search_path`) with their primary-key position.
pub(super) fn catalog_sql(name: &str) -> (String, Vec<String>) {
    let sql = "SELECT json_build_object(\
        'schema', n.nspname, 'table', c.relname, 'name', a.attname, \
        'type', format_type(a.atttypid, a.atttypmod), 'base', COALESCE(bt.typname, t.typname), \
        'nullable', NOT a.attnotnull, 'generated', a.attgenerated <> '', \
        'scale', CASE WHEN COALESCE(bt.typname, t.typname) = 'numeric' AND a.atttypmod >= 4 \
                 THEN (a.atttypmod - 4) & 65535 END, \
        'pk', (SELECT k.ord FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord) \
               WHERE i.indrelid = c.oid AND i.indisprimary AND k.attnum = a.attnum))::text AS value \
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
      JOIN pg_type t ON t.oid = a.atttypid \
      LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
      WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p') ORDER BY a.attnum";
    (sql.to_owned(), vec![name.to_owned()])
}
