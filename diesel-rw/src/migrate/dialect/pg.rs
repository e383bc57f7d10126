//! PostgreSQL: the catalog (`pg_catalog`) and the connection.

use super::Dialect;

super::impl_migrate_connection!(
    diesel::PgConnection,
    Dialect::Postgres,
    |c, f| diesel::Connection::transaction(c, f),
    fn execute_text_array(&mut self, sql: &str, values: &[String]) -> crate::Result<usize> {
        use diesel::sql_types::{Array, Text};
        Ok(diesel::RunQueryDsl::execute(
            diesel::sql_query(sql).bind::<Array<Text>, _>(values),
            self,
        )?)
    },
    fn listen(&mut self, channel: &str) -> crate::Result<bool> {
        diesel::connection::SimpleConnection::batch_execute(
            self,
            &format!("LISTEN {}", Dialect::Postgres.quote(channel)),
        )?;
        Ok(true)
    },
    fn notified(&mut self) -> crate::Result<bool> {
        let mut any = false;
        for n in self.notifications_iter() {
            n?;
            any = true;
        }
        Ok(any)
    }
);

/// The fields of a record in PostgreSQL's text form (`(1,"a b",,"x""y")`): `None` for NULL
/// (an empty unquoted field), the text otherwise.
pub(crate) fn record_fields(record: &str) -> Option<Vec<Option<String>>> {
    let inner = record.strip_prefix('(')?.strip_suffix(')')?;
    let mut fields = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        let mut field = String::new();
        let mut quoted = false;
        let mut any = false;
        while let Some(&ch) = chars.peek() {
            match ch {
                ',' if !quoted => break,
                '"' => {
                    chars.next();
                    any = true;
                    if quoted && chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = !quoted;
                    }
                }
                '\\' => {
                    chars.next();
                    field.push(chars.next()?);
                    any = true;
                }
                _ => {
                    chars.next();
                    field.push(ch);
                    any = true;
                }
            }
        }
        fields.push(any.then_some(field));
        if chars.next().is_none() {
            return Some(fields);
        }
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn record_fields_reads_quotes_escapes_and_nulls() {
        let f = super::record_fields(r#"(1,"a b",,"x""y","c\\d",é)"#).unwrap();
        assert_eq!(
            f,
            [
                Some("1".into()),
                Some("a b".into()),
                None,
                Some("x\"y".into()),
                Some("c\\d".into()),
                Some("é".into())
            ]
        );
        assert_eq!(
            super::record_fields(r#"("")"#).unwrap(),
            [Some(String::new())]
        );
    }
}
