//! MySQL/MariaDB: the catalog (`information_schema`) and the connection.

use super::Dialect;

super::impl_migrate_connection!(diesel::MysqlConnection, Dialect::Mysql, |c, f| {
    diesel::Connection::transaction(c, f)
});

/// The columns of the table `name` (`db.table`, or `table` in the connection's database) with
/// their primary-key position; a `LONGTEXT` with a `json_valid` check is MariaDB's `JSON`.
pub(super) fn catalog_sql(name: &str) -> (String, Vec<String>) {
    let (schema, table) = match name.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, name),
    };
    let schema_sql = if schema.is_some() { "?" } else { "DATABASE()" };
    let sql = format!(
        "SELECT JSON_OBJECT('schema', c.TABLE_SCHEMA, 'table', c.TABLE_NAME, 'name', c.COLUMN_NAME, \
           'type', c.COLUMN_TYPE, 'base', c.DATA_TYPE, 'nullable', c.IS_NULLABLE = 'YES', \
           'generated', c.EXTRA LIKE '%GENERATED%' OR c.EXTRA LIKE '%PERSISTENT%', \
           'scale', c.NUMERIC_SCALE, \
           'pk', (SELECT s.SEQ_IN_INDEX FROM information_schema.STATISTICS s \
                  WHERE s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME \
                  AND s.INDEX_NAME = 'PRIMARY' AND s.COLUMN_NAME = c.COLUMN_NAME), \
           'json', EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k \
                  WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME \
                  AND k.CHECK_CLAUSE = CONCAT('json_valid(`', c.COLUMN_NAME, '`)'))) AS value \
         FROM information_schema.COLUMNS c \
         WHERE c.TABLE_SCHEMA = {schema_sql} AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION"
    );
    let binds = schema
        .into_iter()
        .chain([table])
        .map(str::to_owned)
        .collect();
    (sql, binds)
}
