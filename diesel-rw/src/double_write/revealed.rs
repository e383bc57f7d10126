//! [`Revealed`]: what a written statement shows of its rows beyond its SQL text — its bind
//! values and the rows it returned — so that a journal can name the keys of the rows it
//! touched ([`statement_keys`](super::statement_keys)).
//!
//! diesel's query builder binds every value: the SQL text of `update(t.find(7))` is
//! `UPDATE "t" SET ... WHERE ("t"."id" = $2)`, with 7 in the binds. A double-write connection
//! keeps, with each statement it journals, the binds as diesel's debug rendering shows them
//! (integers and strings only; anything else is kept as "a value", which reveals no key), and the
//! rows of a write loaded with `RETURNING` as text. They stay in memory, in the
//! [`JournalEntry`](super::JournalEntry): never displayed, logged or written whole (`Debug`
//! shows how many there are); the [`TableJournal`](super::TableJournal) writes only the keys
//! it finds in them.

use std::fmt;

use diesel::query_builder::QueryFragment;
use diesel::row::{Field, Row};

use super::backend::DoubleWriteBackend;

/// One bind value, as far as keys go.
// No `Debug` outside tests: the values may be personal data.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub(crate) enum BindValue {
    /// `NULL` (`None`).
    Null,
    /// An integer (in its decimal text) or a string (its value).
    Text(String),
    /// An array (PostgreSQL's `= ANY($1)` of `eq_any`).
    List(Vec<BindValue>),
    /// Any other value: reveals no key.
    Other,
}

/// What a written statement shows beyond its SQL text: its bind values (as diesel renders
/// them) and the rows it returned (of a `RETURNING` load);
/// [`statement_keys`](super::statement_keys) says which keys are found in them. Empty when not
/// collected (a statement given as text, or run through the async connection).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Revealed {
    /// The bind values in placeholder order; `None`: not collected.
    pub(crate) binds: Option<Vec<BindValue>>,
    /// The rows the first side returned (`RETURNING`): the column names, then each row's
    /// values as text (`None`: NULL or not representable); `None`: no rows collected.
    pub(crate) returned: Option<Returned>,
}

/// Returned rows: the column names, then each row's values as text.
pub(crate) type Returned = (Vec<String>, Vec<Vec<Option<String>>>);

impl fmt::Debug for Revealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be personal data: counts only.
        f.debug_struct("Revealed")
            .field("binds", &self.binds.as_ref().map(Vec::len))
            .field(
                "returned_rows",
                &self.returned.as_ref().map(|(_, r)| r.len()),
            )
            .finish()
    }
}

impl Revealed {
    /// Nothing revealed.
    pub fn none() -> Revealed {
        Revealed::default()
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.binds.is_none() && self.returned.is_none()
    }

    /// The bind values of `query`, from diesel's debug rendering of it.
    pub(crate) fn of_query<DB, T>(query: &T) -> Revealed
    where
        DB: DoubleWriteBackend,
        T: QueryFragment<DB>,
    {
        let shown = diesel::debug_query::<DB, T>(query).to_string();
        let binds = shown
            .rfind(" -- binds: ")
            .and_then(|at| parse_list(&shown[at + " -- binds: ".len()..]));
        Revealed {
            binds,
            returned: None,
        }
    }

    /// Adds the rows the first side returned.
    pub(crate) fn with_rows<'a, DB, R>(mut self, rows: &[R]) -> Revealed
    where
        DB: DoubleWriteBackend,
        R: Row<'a, DB>,
    {
        let Some(first) = rows.first() else {
            self.returned = Some((Vec::new(), Vec::new()));
            return self;
        };
        let names: Option<Vec<String>> = (0..first.field_count())
            .map(|i| first.get(i).and_then(|f| f.field_name().map(str::to_owned)))
            .collect();
        let Some(names) = names else {
            return self;
        };
        let values = rows
            .iter()
            .map(|row| {
                (0..row.field_count())
                    .map(|i| row.get(i).and_then(|f| f.value().and_then(DB::value_text)))
                    .collect()
            })
            .collect();
        self.returned = Some((names, values));
        self
    }
}

/// A statement as the double-write core journals it: its SQL text, rendered when needed, and
/// what else it reveals.
pub(crate) trait Rendered {
    /// The SQL text, without bind values.
    fn sql(&self) -> String;

    /// Its bind values and returned rows, if collected.
    fn revealed(&self) -> Revealed {
        Revealed::none()
    }
}

impl<F: Fn() -> String> Rendered for F {
    fn sql(&self) -> String {
        self()
    }
}

/// A statement built with diesel's query builder: its binds are revealed.
pub(crate) struct Built<'q, DB, T> {
    pub(crate) query: &'q T,
    pub(crate) sql: &'q dyn Fn() -> String,
    pub(crate) _db: std::marker::PhantomData<DB>,
}

impl<'q, DB, T> Built<'q, DB, T> {
    /// `query`, whose SQL text `sql` renders.
    pub(crate) fn new(query: &'q T, sql: &'q dyn Fn() -> String) -> Self {
        Built {
            query,
            sql,
            _db: std::marker::PhantomData,
        }
    }
}

impl<DB, T> Rendered for Built<'_, DB, T>
where
    DB: DoubleWriteBackend,
    T: QueryFragment<DB>,
{
    fn sql(&self) -> String {
        (self.sql)()
    }

    fn revealed(&self) -> Revealed {
        Revealed::of_query::<DB, T>(self.query)
    }
}

/// A loaded write: its binds and the first side's rows.
pub(crate) struct Loaded<'q, DB, T, R> {
    pub(crate) query: &'q T,
    pub(crate) sql: &'q dyn Fn() -> String,
    pub(crate) rows: &'q [R],
    pub(crate) _db: std::marker::PhantomData<DB>,
}

impl<'a, DB, T, R> Rendered for Loaded<'_, DB, T, R>
where
    DB: DoubleWriteBackend,
    T: QueryFragment<DB>,
    R: Row<'a, DB>,
{
    fn sql(&self) -> String {
        (self.sql)()
    }

    fn revealed(&self) -> Revealed {
        Revealed::of_query::<DB, T>(self.query).with_rows::<DB, R>(self.rows)
    }
}

/// A statement rendered before it ran (the async connection renders it before its first
/// `.await`): its text and what it revealed.
pub(crate) struct Eager<'q> {
    pub(crate) sql: &'q str,
    pub(crate) revealed: &'q Revealed,
}

impl Rendered for Eager<'_> {
    fn sql(&self) -> String {
        self.sql.to_owned()
    }

    fn revealed(&self) -> Revealed {
        self.revealed.clone()
    }
}

/// Parses diesel's debug list of binds (`[7, "a", Some(3), [1, 2]]`); `None` if it is not one.
fn parse_list(text: &str) -> Option<Vec<BindValue>> {
    let mut p = Parser {
        chars: text.trim().chars().collect(),
        at: 0,
    };
    let BindValue::List(items) = p.value()? else {
        return None;
    };
    p.skip_ws();
    (p.at == p.chars.len()).then_some(items)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Option<BindValue> {
        self.skip_ws();
        match self.peek()? {
            '[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek()? == ']' {
                        self.at += 1;
                        return Some(BindValue::List(items));
                    }
                    items.push(self.value()?);
                    self.skip_ws();
                    match self.peek()? {
                        ',' => self.at += 1,
                        ']' => {}
                        _ => return None,
                    }
                }
            }
            '"' => self.string().map(BindValue::Text),
            _ => {
                // A bare token up to the next `,` `]` `)` at this level, with nested
                // brackets (a struct's Debug) skipped over.
                let start = self.at;
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    match c {
                        '(' | '[' | '{' => depth += 1,
                        ')' | ']' | '}' if depth == 0 => break,
                        ')' | ']' | '}' => depth -= 1,
                        ',' if depth == 0 => break,
                        '"' => {
                            self.string()?;
                            continue;
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
                let token: String = self.chars[start..self.at].iter().collect();
                let token = token.trim();
                Some(bare(token))
            }
        }
    }

    /// A Rust debug string literal, unescaped.
    fn string(&mut self) -> Option<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.at += 1;
            match c {
                '"' => return Some(out),
                '\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        '\\' | '"' | '\'' => e,
                        'u' => {
                            if self.peek()? != '{' {
                                return None;
                            }
                            let close = self.chars[self.at..].iter().position(|&c| c == '}')?;
                            let hex: String =
                                self.chars[self.at + 1..self.at + close].iter().collect();
                            self.at += close + 1;
                            char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                        }
                        _ => return None,
                    });
                }
                c => out.push(c),
            }
        }
    }
}

/// A bare debug token: an integer, `None`, `Some(x)`, a UUID; anything else reveals no key.
fn bare(token: &str) -> BindValue {
    if token == "None" {
        return BindValue::Null;
    }
    if let Some(inner) = token
        .strip_prefix("Some(")
        .and_then(|t| t.strip_suffix(')'))
    {
        let mut p = Parser {
            chars: inner.chars().collect(),
            at: 0,
        };
        return match p.value() {
            Some(v) => {
                p.skip_ws();
                if p.at == p.chars.len() {
                    v
                } else {
                    BindValue::Other
                }
            }
            None => BindValue::Other,
        };
    }
    if let Ok(i) = token.parse::<i128>() {
        return BindValue::Text(i.to_string());
    }
    // A UUID's Debug: 8-4-4-4-12 lowercase hex digits, as PostgreSQL prints one.
    let groups: Vec<&str> = token.split('-').collect();
    if groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
    {
        return BindValue::Text(token.to_owned());
    }
    BindValue::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> BindValue {
        BindValue::Text(s.into())
    }

    #[test]
    fn reads_diesels_debug_binds() {
        assert_eq!(
            parse_list(r#"[7, "a \"b\"\n", Some(-3), None, [1, 2], 1.5, true]"#).unwrap(),
            vec![
                t("7"),
                t("a \"b\"\n"),
                t("-3"),
                BindValue::Null,
                BindValue::List(vec![t("1"), t("2")]),
                BindValue::Other,
                BindValue::Other,
            ]
        );
        assert_eq!(parse_list("[]").unwrap(), vec![]);
        assert_eq!(
            parse_list(r#"["\u{e9}", 67e55044-10b1-426f-9247-bb680e5fe0c8, Foo { a: 1, b: "x" }]"#)
                .unwrap(),
            vec![
                t("é"),
                t("67e55044-10b1-426f-9247-bb680e5fe0c8"),
                BindValue::Other
            ]
        );
        assert_eq!(parse_list("[1, 2"), None);
        assert!(format!("{:?}", Revealed::none()).contains("binds: None"));
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod sqlite_tests {
    use super::*;
    use diesel::prelude::*;

    diesel::table! {
        t (id) {
            id -> BigInt,
            v -> Nullable<Text>,
        }
    }

    #[test]
    fn reveals_the_binds_of_dsl_statements() {
        let q = diesel::update(t::table.find(7i64)).set(t::v.eq("u"));
        let r = Revealed::of_query::<diesel::sqlite::Sqlite, _>(&q);
        assert_eq!(
            r.binds,
            Some(vec![
                BindValue::Text("u".into()),
                BindValue::Text("7".into())
            ]),
            "{}",
            diesel::debug_query::<diesel::sqlite::Sqlite, _>(&q)
        );
        let q = diesel::delete(t::table.filter(t::id.eq_any([4i64, 5])));
        let r = Revealed::of_query::<diesel::sqlite::Sqlite, _>(&q);
        assert_eq!(
            r.binds.as_ref().map(Vec::len),
            Some(2),
            "{}",
            diesel::debug_query::<diesel::sqlite::Sqlite, _>(&q)
        );
        let sql = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&q).to_string();
        let sql = &sql[..sql.rfind(" -- binds").unwrap()];
        let keys = super::super::statement_keys::written_keys_with(sql, &["id".to_owned()], &r);
        assert_eq!(keys.map(|k| k.len()), Some(2), "{sql}");
    }
}
