//! What a write statement's SQL text reveals of the rows it touched: the table it writes and,
//! when the statement spells them out, the primary keys of its rows. The durable journal
//! ([`TableJournal`](super::TableJournal)) records them so that an incremental verify can check
//! those rows only.
//!
//! Only what is certain is extracted; anything else leaves the keys unknown (the journal entry
//! then names the table only, and the verify covers the whole table or the "changed at"
//! window):
//!
//! - the table: the one table of `INSERT [IGNORE] INTO t`, `UPDATE t`, `DELETE FROM t`,
//!   `REPLACE INTO t` (quoted or not, `schema.t`), in a text that holds one statement;
//! - the keys of an `INSERT INTO t (cols) VALUES (...), (...)` whose key columns are literals
//!   in every row (numbers or strings), without `ON CONFLICT ... DO UPDATE` /
//!   `ON DUPLICATE KEY UPDATE` (which may change another row) and not a `REPLACE`;
//! - the keys of an `UPDATE` or `DELETE` whose `WHERE` clause holds every key column to
//!   literals (`id = 7`, `id IN (1, 2)`, `(tenant = 1 AND id = 2) OR (tenant = 1 AND id = 3)`),
//!   without `FROM`/`USING`/`JOIN` (other tables) and for an `UPDATE` not setting a key column.
//!
//! A value may be a literal in the text or a bind: diesel's query builder binds every value
//! (`insert_into(t).values(..)`, `update(t.find(7))`, `delete(t.filter(id.eq_any([..])))`), and
//! a double-write connection keeps the binds with each entry it journals
//! ([`Revealed`]): a placeholder bound to an integer or a string counts as that literal, and
//! PostgreSQL's `col = ANY($1)` (diesel's `eq_any`) with an array of them as an `IN` list.
//!
//! A write with `RETURNING` of every key column (loaded: `get_result`, `get_results`) names
//! its rows exactly by the rows it returned, generated keys and upserts included (PostgreSQL
//! and SQLite; diesel's MySQL backend has no `RETURNING`).
//!
//! Not extracted: binds of other types (floats, dates, bytes, custom types), the `RETURNING`
//! rows of the async double-write connection (its entries have the binds), keys written as
//! expressions (`now()`, `nextval(...)`, casts), generated keys without `RETURNING` (an
//! `INSERT` without the key column), `INSERT ... SELECT`, and statements under `WITH`.

use super::revealed::{BindValue, Revealed};
use crate::migrate::Key;

/// At most this many keys are extracted from one statement; a statement naming more is
/// journaled with its table only.
const MAX_KEYS: usize = 10_000;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// An identifier or keyword: its text (unquoted), and whether it was quoted.
    Ident(String, bool),
    /// A string literal's value.
    Str(String),
    /// A number literal, as written.
    Num(String),
    /// A placeholder (`$1`, `?`), with its index in the binds (0-based).
    Param(usize),
    /// A bound array of key texts (the bind of PostgreSQL's `= ANY($1)`).
    List(Vec<String>),
    /// Any other character (`(`, `,`, `=`, `;`, ...).
    Punct(char),
}

impl Tok {
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident(s, false) if s.eq_ignore_ascii_case(kw))
    }

    fn is(&self, c: char) -> bool {
        matches!(self, Tok::Punct(p) if *p == c)
    }

    /// A literal's key text: an integer as the server prints it, a string's value.
    fn literal(&self) -> Option<String> {
        match self {
            Tok::Str(s) => Some(s.clone()),
            Tok::Num(n) => match n.parse::<i128>() {
                Ok(i) => Some(i.to_string()),
                Err(_) => Some(n.clone()),
            },
            _ => None,
        }
    }
}

/// The tokens of `sql`, or `None` if it does not tokenize (an unterminated quote).
fn tokens(sql: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut questions = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' || c == '`' {
            let mut text = String::new();
            i += 1;
            loop {
                let ch = *chars.get(i)?;
                if ch == c {
                    if chars.get(i + 1) == Some(&c) {
                        text.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if ch == '\\' && c == '\'' {
                    // MySQL escapes in strings (PostgreSQL's standard strings have none): a
                    // string with a backslash is not taken as a key.
                    return None;
                }
                text.push(ch);
                i += 1;
            }
            out.push(if c == '\'' {
                Tok::Str(text)
            } else {
                Tok::Ident(text, true)
            });
        } else if c.is_ascii_digit()
            || (c == '-'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !matches!(
                    out.last(),
                    Some(Tok::Ident(..) | Tok::Num(_) | Tok::Str(_) | Tok::Param(_))
                        | Some(Tok::Punct(')'))
                ))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c == '$' && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
            i += 1;
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let n: String = chars[start..i].iter().collect();
            out.push(Tok::Param(n.parse::<usize>().ok()?.checked_sub(1)?));
        } else if c == '?' {
            out.push(Tok::Param(questions));
            questions += 1;
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect(), false));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    // One statement: a trailing `;` is allowed, another statement after it is not.
    if let Some(semi) = out.iter().position(|t| t.is(';')) {
        if semi + 1 != out.len() {
            return None;
        }
        out.pop();
    }
    Some(out)
}

/// The tokens of `sql` with each placeholder whose bind `revealed` holds replaced by its value:
/// an integer or string by a string literal, `NULL` by the keyword, an array of those by a
/// [`Tok::List`]; any other value stays a placeholder (it reveals no key).
fn bound_tokens(sql: &str, revealed: &Revealed) -> Option<Vec<Tok>> {
    let mut toks = tokens(sql)?;
    let Some(binds) = &revealed.binds else {
        return Some(toks);
    };
    for t in &mut toks {
        let Tok::Param(i) = *t else { continue };
        match binds.get(i) {
            Some(BindValue::Text(v)) => *t = Tok::Str(v.clone()),
            Some(BindValue::Null) => *t = Tok::Ident("NULL".into(), false),
            Some(BindValue::List(items)) => {
                let texts: Option<Vec<String>> = items
                    .iter()
                    .map(|v| match v {
                        BindValue::Text(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                if let Some(texts) = texts {
                    *t = Tok::List(texts);
                }
            }
            _ => {}
        }
    }
    Some(toks)
}

/// The table a statement writes, as it names it (unquoted; `schema.table`), and where its name
/// ends in `toks`.
fn table_of(toks: &[Tok]) -> Option<(String, usize)> {
    let mut i = 0;
    let first = toks.first()?;
    if first.is_kw("insert") || first.is_kw("replace") {
        i += 1;
        while toks.get(i).is_some_and(|t| {
            t.is_kw("ignore")
                || t.is_kw("low_priority")
                || t.is_kw("delayed")
                || t.is_kw("high_priority")
        }) {
            i += 1;
        }
        if !toks.get(i)?.is_kw("into") {
            return None;
        }
        i += 1;
    } else if first.is_kw("update") {
        i += 1;
        while toks
            .get(i)
            .is_some_and(|t| t.is_kw("only") || t.is_kw("ignore") || t.is_kw("low_priority"))
        {
            i += 1;
        }
    } else if first.is_kw("delete") {
        i += 1;
        while toks
            .get(i)
            .is_some_and(|t| t.is_kw("low_priority") || t.is_kw("quick") || t.is_kw("ignore"))
        {
            i += 1;
        }
        if !toks.get(i)?.is_kw("from") {
            return None;
        }
        i += 1;
        if toks.get(i).is_some_and(|t| t.is_kw("only")) {
            i += 1;
        }
    } else {
        return None;
    }
    let Tok::Ident(mut name, _) = toks.get(i)?.clone() else {
        return None;
    };
    i += 1;
    if toks.get(i).is_some_and(|t| t.is('.')) {
        let Tok::Ident(part, _) = toks.get(i + 1)?.clone() else {
            return None;
        };
        name = format!("{name}.{part}");
        i += 2;
    }
    Some((name, i))
}

/// The table `sql` writes, if it is one statement writing one table that diesel-rw can tell.
pub fn written_table(sql: &str) -> Option<String> {
    let toks = tokens(sql)?;
    let (name, end) = table_of(&toks)?;
    // `UPDATE a, b` / `UPDATE a JOIN b` / `UPDATE a ... FROM b` / `DELETE FROM a USING b`:
    // several tables (a subquery's `FROM`, inside parentheses, is not).
    let mut depth = 0usize;
    let mut multi = false;
    if !toks[0].is_kw("insert") && !toks[0].is_kw("replace") {
        for (j, t) in toks[end..].iter().enumerate() {
            if t.is('(') {
                depth += 1;
            } else if t.is(')') {
                depth = depth.saturating_sub(1);
            } else if depth == 0
                && (t.is_kw("join") || t.is_kw("using") || t.is_kw("from") || (t.is(',') && j == 0))
            {
                multi = true;
            }
        }
    }
    (!multi).then_some(name)
}

/// The keys of the rows `sql` writes, in `key` column order, if the statement spells them out
/// as literals (see the [module docs](self)).
pub fn written_keys(sql: &str, key: &[String]) -> Option<Vec<Key>> {
    written_keys_with(sql, key, &Revealed::none())
}

/// The keys of the rows `sql` writes, in `key` column order, from its literals, the bind values
/// and the rows it returned that `revealed` holds (see the [module docs](self)).
pub fn written_keys_with(sql: &str, key: &[String], revealed: &Revealed) -> Option<Vec<Key>> {
    if key.is_empty() {
        return None;
    }
    if let Some(keys) = returned_keys(sql, key, revealed) {
        return Some(keys);
    }
    let toks = bound_tokens(sql, revealed)?;
    let (name, end) = table_of(&toks)?;
    written_table(sql)?;
    let short = name.rsplit('.').next().unwrap_or(&name).to_owned();
    let rest = &toks[end..];
    let keys = if toks[0].is_kw("insert") {
        insert_keys(rest, key)?
    } else if toks[0].is_kw("replace") {
        return None;
    } else {
        // An alias: `UPDATE t AS x` / `UPDATE t x`.
        let (alias, rest) = match rest {
            [a, Tok::Ident(x, _), tail @ ..] if a.is_kw("as") => (Some(x.clone()), tail),
            [Tok::Ident(x, q), tail @ ..]
                if *q || !(rest[0].is_kw("set") || rest[0].is_kw("where")) =>
            {
                (Some(x.clone()), tail)
            }
            _ => (None, rest),
        };
        let names = [Some(short), alias];
        let where_at = rest.iter().position(|t| t.is_kw("where"))?;
        if toks[0].is_kw("update") && sets_key(&rest[..where_at], key) {
            return None;
        }
        let clause = &rest[where_at + 1..];
        let end = clause
            .iter()
            .position(|t| {
                t.is_kw("returning") || t.is_kw("order") || t.is_kw("limit") || t.is_kw("for")
            })
            .unwrap_or(clause.len());
        let mut p = Cond {
            toks: &clause[..end],
            at: 0,
            names: &names,
        };
        let constraint = p.or()?;
        if p.at != p.toks.len() {
            return None;
        }
        product(&constraint, key)?
    };
    (keys.len() <= MAX_KEYS).then_some(keys)
}

/// The keys of the rows a write with `RETURNING` of every key column returned: exactly the rows
/// it wrote (inserted, updated or deleted), generated keys included.
fn returned_keys(sql: &str, key: &[String], revealed: &Revealed) -> Option<Vec<Key>> {
    let (names, rows) = revealed.returned.as_ref()?;
    let toks = tokens(sql)?;
    written_table(sql)?;
    if !toks.iter().any(|t| t.is_kw("returning")) {
        return None;
    }
    if rows.is_empty() {
        // It wrote no row (on the side that answered).
        return Some(Vec::new());
    }
    let positions: Vec<usize> = key
        .iter()
        .map(|k| names.iter().position(|n| n.eq_ignore_ascii_case(k)))
        .collect::<Option<_>>()?;
    let mut keys: Vec<Key> = rows
        .iter()
        .map(|row| {
            positions
                .iter()
                .map(|&p| row.get(p).cloned().flatten())
                .collect::<Option<Vec<String>>>()
                .map(Key::new)
        })
        .collect::<Option<_>>()?;
    keys.sort();
    keys.dedup();
    (keys.len() <= MAX_KEYS).then_some(keys)
}

/// Whether the `SET` list (the tokens before `WHERE`) assigns a key column.
fn sets_key(toks: &[Tok], key: &[String]) -> bool {
    toks.windows(2).any(|w| match (&w[0], &w[1]) {
        (Tok::Ident(c, _), eq) if eq.is('=') => key.iter().any(|k| k.eq_ignore_ascii_case(c)),
        _ => false,
    })
}

/// The keys of `INSERT INTO t (cols) VALUES (...), ...` (`toks`: after the table name).
fn insert_keys(toks: &[Tok], key: &[String]) -> Option<Vec<Key>> {
    if toks
        .iter()
        .any(|t| t.is_kw("select") || t.is_kw("duplicate"))
    {
        return None;
    }
    if let Some(on) = toks.iter().position(|t| t.is_kw("conflict")) {
        if toks[on..].iter().any(|t| t.is_kw("update")) {
            return None;
        }
    }
    if !toks.first()?.is('(') {
        return None;
    }
    let close = toks.iter().position(|t| t.is(')'))?;
    let columns: Vec<String> = toks[1..close]
        .iter()
        .filter_map(|t| match t {
            Tok::Ident(c, _) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let positions: Vec<usize> = key
        .iter()
        .map(|k| columns.iter().position(|c| c.eq_ignore_ascii_case(k)))
        .collect::<Option<_>>()?;
    let mut i = close + 1;
    if !toks.get(i)?.is_kw("values") {
        return None;
    }
    i += 1;
    let mut keys = Vec::new();
    loop {
        if !toks.get(i)?.is('(') {
            return None;
        }
        i += 1;
        // One row: a literal or anything else per value, split at the commas of this level.
        let mut values: Vec<Option<String>> = Vec::new();
        let mut current: Vec<&Tok> = Vec::new();
        let mut depth = 0;
        loop {
            let t = toks.get(i)?;
            i += 1;
            if depth == 0 && (t.is(',') || t.is(')')) {
                values.push(match current.as_slice() {
                    [one] => one.literal(),
                    _ => None,
                });
                current.clear();
                if t.is(')') {
                    break;
                }
                continue;
            }
            if t.is('(') {
                depth += 1;
            } else if t.is(')') {
                depth -= 1;
            }
            current.push(t);
        }
        if values.len() != columns.len() {
            return None;
        }
        let k = positions
            .iter()
            .map(|&p| values[p].clone())
            .collect::<Option<Vec<_>>>()?;
        keys.push(Key::new(k));
        if keys.len() > MAX_KEYS {
            return None;
        }
        match toks.get(i) {
            Some(t) if t.is(',') => i += 1,
            _ => break,
        }
    }
    Some(keys)
}

/// Values each column is held to by a condition (a column absent: not held).
type Constraint = Vec<(String, Vec<String>)>;

/// A recursive-descent reading of a `WHERE` condition that finds `col = literal` and
/// `col IN (literals)` under `AND` and `OR`; anything else constrains nothing.
struct Cond<'a> {
    toks: &'a [Tok],
    at: usize,
    /// The names a qualified column may be qualified with (the table, its alias).
    names: &'a [Option<String>],
}

impl Cond<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn or(&mut self) -> Option<Constraint> {
        let mut left = self.and()?;
        while self.peek().is_some_and(|t| t.is_kw("or")) {
            self.at += 1;
            let right = self.and()?;
            // A row meets one side or the other: a column held on both sides is held to
            // either side's values.
            left = left
                .into_iter()
                .filter_map(|(c, mut vs)| {
                    let (_, other) = right.iter().find(|(r, _)| r.eq_ignore_ascii_case(&c))?;
                    vs.extend(other.iter().cloned());
                    vs.sort();
                    vs.dedup();
                    Some((c, vs))
                })
                .collect();
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Constraint> {
        let mut all = self.factor()?;
        while self.peek().is_some_and(|t| t.is_kw("and")) {
            self.at += 1;
            for (c, vs) in self.factor()? {
                match all.iter_mut().find(|(a, _)| a.eq_ignore_ascii_case(&c)) {
                    Some((_, have)) => have.retain(|v| vs.contains(v)),
                    None => all.push((c, vs)),
                }
            }
        }
        Some(all)
    }

    fn factor(&mut self) -> Option<Constraint> {
        if self.peek()?.is('(')
            && !self
                .toks
                .get(self.at + 1)
                .is_some_and(|t| t.is_kw("select") || t.is_kw("with"))
        {
            let start = self.at;
            self.at += 1;
            if let Some(inner) = self.or() {
                if self.peek().is_some_and(|t| t.is(')')) {
                    self.at += 1;
                    if self.at_boundary() {
                        return Some(inner);
                    }
                }
            }
            // Not a parenthesized condition (`(a, b) = (1, 2)`, `(x + 1) = 2`): skipped.
            self.at = start;
        }
        let start = self.at;
        self.skip_factor()?;
        Some(self.simple(&self.toks[start..self.at]).unwrap_or_default())
    }

    /// Whether the next token ends a factor.
    fn at_boundary(&self) -> bool {
        match self.peek() {
            None => true,
            Some(t) => t.is_kw("and") || t.is_kw("or") || t.is(')'),
        }
    }

    /// Moves past one factor: to the next `AND`/`OR`/`)` at this depth.
    fn skip_factor(&mut self) -> Option<()> {
        let mut depth = 0usize;
        let start = self.at;
        while let Some(t) = self.peek() {
            if depth == 0 && (t.is_kw("and") || t.is_kw("or") || t.is(')')) {
                break;
            }
            if t.is('(') {
                depth += 1;
            } else if t.is(')') {
                depth -= 1;
            }
            self.at += 1;
        }
        (depth == 0 && self.at > start).then_some(())
    }

    /// `col = lit`, `lit = col` or `col IN (lit, ...)`, as the whole of a factor.
    fn simple(&self, toks: &[Tok]) -> Option<Constraint> {
        if let [lit, eq, ..] = toks {
            if eq.is('=') && lit.literal().is_some() {
                let (column, []) = self.column(&toks[2..])? else {
                    return None;
                };
                return Some(vec![(column, vec![lit.literal()?])]);
            }
        }
        let (column, rest) = self.column(toks)?;
        match rest {
            [eq, lit] if eq.is('=') => Some(vec![(column, vec![lit.literal()?])]),
            // PostgreSQL's `eq_any`: `col = ANY($1)` with an array bound.
            [eq, any, open, Tok::List(values), close]
                if eq.is('=') && any.is_kw("any") && open.is('(') && close.is(')') =>
            {
                Some(vec![(column, values.clone())])
            }
            [kw, open, list @ .., close] if kw.is_kw("in") && open.is('(') && close.is(')') => {
                let mut values = Vec::new();
                for (j, t) in list.iter().enumerate() {
                    if j % 2 == 1 {
                        if !t.is(',') {
                            return None;
                        }
                    } else {
                        values.push(t.literal()?);
                    }
                }
                Some(vec![(column, values)])
            }
            _ => None,
        }
    }

    /// A column reference at the start of `toks` (`c`, `t.c` with `t` this table or its
    /// alias), and the tokens after it.
    fn column<'t>(&self, toks: &'t [Tok]) -> Option<(String, &'t [Tok])> {
        match toks {
            [Tok::Ident(q, _), dot, Tok::Ident(c, _), rest @ ..] if dot.is('.') => {
                let ours = self.names.iter().flatten().any(|n| n == q);
                ours.then(|| (c.clone(), rest))
            }
            [Tok::Ident(c, quoted), rest @ ..]
                if *quoted || !matches!(c.to_ascii_lowercase().as_str(), "not" | "exists") =>
            {
                Some((c.clone(), rest))
            }
            _ => None,
        }
    }
}

/// Every key the constraint allows, if it holds every key column.
fn product(constraint: &Constraint, key: &[String]) -> Option<Vec<Key>> {
    let mut keys: Vec<Vec<String>> = vec![Vec::new()];
    for k in key {
        let (_, values) = constraint.iter().find(|(c, _)| c.eq_ignore_ascii_case(k))?;
        if keys.len().saturating_mul(values.len()) > MAX_KEYS {
            return None;
        }
        keys = keys
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
    }
    let mut keys: Vec<Key> = keys.into_iter().map(Key::new).collect();
    keys.sort();
    keys.dedup();
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(sql: &str, key: &[&str]) -> Option<Vec<String>> {
        let key: Vec<String> = key.iter().map(|s| s.to_string()).collect();
        written_keys(sql, &key).map(|keys| keys.iter().map(|k| k.to_string()).collect())
    }

    fn kb(sql: &str, key: &[&str], binds: Vec<BindValue>) -> Option<Vec<String>> {
        let key: Vec<String> = key.iter().map(|s| s.to_string()).collect();
        let revealed = Revealed {
            binds: Some(binds),
            returned: None,
        };
        written_keys_with(sql, &key, &revealed)
            .map(|keys| keys.iter().map(|k| k.to_string()).collect())
    }

    fn v(s: &str) -> BindValue {
        BindValue::Text(s.into())
    }

    #[test]
    fn finds_bound_keys() {
        let id = &["id"];
        assert_eq!(
            kb(
                r#"INSERT INTO "t" ("id", "v") VALUES ($1, $2), ($3, $4)"#,
                id,
                vec![v("7"), v("a"), v("8"), BindValue::Other]
            ),
            Some(vec!["7".into(), "8".into()])
        );
        assert_eq!(
            kb(
                "INSERT INTO `t` (`v`, `id`) VALUES (?, ?)",
                id,
                vec![BindValue::Other, v("9")]
            ),
            Some(vec!["9".into()])
        );
        assert_eq!(
            kb(
                r#"UPDATE "t" SET "v" = $1 WHERE ("t"."id" = $2)"#,
                id,
                vec![v("x"), v("7")]
            ),
            Some(vec!["7".into()])
        );
        assert_eq!(
            kb(
                r#"DELETE FROM "t" WHERE ("t"."id" = ANY($1))"#,
                id,
                vec![BindValue::List(vec![v("3"), v("1")])]
            ),
            Some(vec!["1".into(), "3".into()])
        );
        assert_eq!(
            kb(
                "DELETE FROM `t` WHERE (`t`.`id` IN (?, ?))",
                id,
                vec![v("4"), v("5")]
            ),
            Some(vec!["4".into(), "5".into()])
        );
        // A bind that reveals nothing, a NULL, a list with another value: no keys.
        assert_eq!(
            kb(
                r#"UPDATE "t" SET "v" = $1 WHERE ("t"."id" = $2)"#,
                id,
                vec![v("x"), BindValue::Other]
            ),
            None
        );
        assert_eq!(
            kb("DELETE FROM t WHERE id = ?", id, vec![BindValue::Null]),
            None
        );
        assert_eq!(
            kb(
                r#"DELETE FROM "t" WHERE ("t"."id" = ANY($1))"#,
                id,
                vec![BindValue::List(vec![v("3"), BindValue::Other])]
            ),
            None
        );
        // A `?` inside a string is not a placeholder.
        assert_eq!(
            kb("UPDATE t SET v = '?' WHERE id = ?", id, vec![v("6")]),
            Some(vec!["6".into()])
        );
    }

    #[test]
    fn finds_returned_keys() {
        let key = vec!["id".to_owned()];
        let returned = |rows: Vec<Vec<Option<String>>>| Revealed {
            binds: Some(vec![v("a")]),
            returned: Some((vec!["id".into(), "v".into()], rows)),
        };
        let sql = r#"INSERT INTO "t" ("v") VALUES ($1) RETURNING "t"."id", "t"."v""#;
        let got = written_keys_with(
            sql,
            &key,
            &returned(vec![
                vec![Some("41".into()), None],
                vec![Some("40".into()), None],
            ]),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![Key::new(vec!["40".into()]), Key::new(vec!["41".into()])]
        );
        assert_eq!(
            written_keys_with(sql, &key, &returned(vec![])),
            Some(vec![])
        );
        // A key not returned (NULL, or not among the columns): not from the rows.
        assert_eq!(
            written_keys_with(sql, &key, &returned(vec![vec![None, None]])),
            None
        );
        let other = Revealed {
            binds: None,
            returned: Some((vec!["v".into()], vec![vec![Some("x".into())]])),
        };
        assert_eq!(written_keys_with(sql, &key, &other), None);
    }

    #[test]
    fn finds_the_written_table() {
        assert_eq!(
            written_table(r#"INSERT INTO "t" ("a") VALUES ($1)"#).as_deref(),
            Some("t")
        );
        assert_eq!(
            written_table("update `db`.`t` set a = 1").as_deref(),
            Some("db.t")
        );
        assert_eq!(
            written_table("DELETE FROM t WHERE id = 1;").as_deref(),
            Some("t")
        );
        assert_eq!(
            written_table("INSERT IGNORE INTO t VALUES (1)").as_deref(),
            Some("t")
        );
        assert_eq!(written_table("UPDATE a, b SET a.x = b.x"), None);
        assert_eq!(written_table("UPDATE a SET x = b.x FROM b"), None);
        assert_eq!(
            written_table("DELETE FROM a USING b WHERE a.id = b.id"),
            None
        );
        assert_eq!(
            written_table("INSERT INTO a VALUES (1); DELETE FROM b"),
            None
        );
        assert_eq!(written_table("WITH x AS (SELECT 1) DELETE FROM a"), None);
        assert_eq!(written_table("SELECT 1"), None);
    }

    #[test]
    fn finds_literal_keys_and_nothing_uncertain() {
        let id = &["id"];
        assert_eq!(
            k("INSERT INTO t (id, v) VALUES (7, 'x'), (-8, 'it''s')", id),
            Some(vec!["-8".into(), "7".into()].into_iter().rev().collect())
        );
        assert_eq!(
            k("INSERT INTO t (v, id) VALUES ('x', 007)", id),
            Some(vec!["7".into()])
        );
        assert_eq!(
            k(r#"INSERT INTO "t" ("id", "v") VALUES ($1, $2)"#, id),
            None
        );
        assert_eq!(k("INSERT INTO t (v) VALUES ('x')", id), None);
        assert_eq!(k("INSERT INTO t VALUES (1, 'x')", id), None);
        assert_eq!(
            k(
                "INSERT INTO t (id, v) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET v = 'y'",
                id
            ),
            None
        );
        assert_eq!(
            k(
                "INSERT INTO t (id, v) VALUES (1, 'x') ON CONFLICT DO NOTHING",
                id
            ),
            Some(vec!["1".into()])
        );
        assert_eq!(
            k(
                "INSERT INTO t (id, v) VALUES (1, 'x') ON DUPLICATE KEY UPDATE v = 'y'",
                id
            ),
            None
        );
        assert_eq!(k("INSERT INTO t (id, v) SELECT id, v FROM u", id), None);
        assert_eq!(k("REPLACE INTO t (id, v) VALUES (1, 'x')", id), None);
        assert_eq!(
            k("INSERT INTO t (id, v) VALUES (nextval('s'), 'x')", id),
            None
        );
        assert_eq!(
            k("INSERT INTO t (id, v) VALUES (1, lower('X'))", id),
            Some(vec!["1".into()])
        );
        assert_eq!(k("INSERT INTO t (id, v) VALUES ('a\\'b', 'x')", id), None);

        assert_eq!(
            k("UPDATE t SET v = 'y' WHERE id = 5", id),
            Some(vec!["5".into()])
        );
        assert_eq!(
            k(r#"UPDATE "t" SET "v" = $1 WHERE ("t"."id" = 5)"#, id),
            Some(vec!["5".into()])
        );
        assert_eq!(
            k(r#"UPDATE "t" SET "v" = $1 WHERE ("t"."id" = $2)"#, id),
            None
        );
        assert_eq!(k("UPDATE t SET id = 6 WHERE id = 5", id), None);
        assert_eq!(k("UPDATE t SET v = 1 WHERE id = 5 OR v = 2", id), None);
        assert_eq!(
            k("UPDATE t SET v = 1 WHERE id = 5 AND v > 2", id),
            Some(vec!["5".into()])
        );
        assert_eq!(k("UPDATE t SET v = 1 WHERE NOT id = 5", id), None);
        assert_eq!(k("UPDATE t SET v = 1 WHERE id > 5", id), None);
        assert_eq!(k("UPDATE t SET v = 1 WHERE other.id = 5", id), None);
        assert_eq!(
            k("UPDATE t x SET v = 1 WHERE x.id = 5", id),
            Some(vec!["5".into()])
        );
        assert_eq!(
            k("DELETE FROM t WHERE id IN (3, 1, 2)", id),
            Some(vec!["1".into(), "2".into(), "3".into()])
        );
        assert_eq!(k("DELETE FROM t WHERE id IN (SELECT id FROM u)", id), None);
        assert_eq!(
            k("DELETE FROM t WHERE id = 1 OR id = 2 RETURNING id", id),
            Some(vec!["1".into(), "2".into()])
        );
        assert_eq!(k("DELETE FROM t WHERE id BETWEEN 1 AND 5", id), None);
        assert_eq!(k("DELETE FROM t WHERE (a, id) = (1, 2)", id), None);
        assert_eq!(k("DELETE FROM t WHERE 4 = id", id), Some(vec!["4".into()]));
        assert_eq!(k("DELETE FROM t", id), None);
        assert_eq!(
            k(
                "DELETE FROM t WHERE (tenant = 1 AND id = 2) OR (tenant = 1 AND id = 3)",
                &["tenant", "id"]
            ),
            Some(vec!["(1, 2)".into(), "(1, 3)".into()])
        );
        assert_eq!(k("DELETE FROM t WHERE tenant = 1", &["tenant", "id"]), None);
        assert_eq!(
            k("DELETE FROM t WHERE code = 'a''b'", &["code"]),
            Some(vec!["a'b".into()])
        );
    }
}
