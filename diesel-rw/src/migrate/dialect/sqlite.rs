//! SQLite: the catalog (`pragma_table_info`) and the connection.

use super::Dialect;

super::impl_migrate_connection!(diesel::SqliteConnection, Dialect::Sqlite, |c, f| {
    c.immediate_transaction(f)
});

/// The columns of the table `name` (`schema.table`, or `table` in `main`) with their
/// primary-key position.
pub(super) fn catalog_sql(name: &str) -> (String, Vec<String>) {
    let (schema, table) = match name.split_once('.') {
        Some((s, t)) => (s, t),
        None => ("main", name),
    };
    let sql = "SELECT json_object('schema', ?, 'table', ?, 'name', name, 'type', type, \
                 'base', type, 'nullable', \"notnull\" = 0 AND pk = 0, 'generated', 0, \
                 'pk', CASE WHEN pk > 0 THEN pk END) AS value \
               FROM pragma_table_info(?, ?) ORDER BY cid";
    let binds = [schema, table, table, schema]
        .into_iter()
        .map(str::to_owned)
        .collect();
    (sql.to_owned(), binds)
}
