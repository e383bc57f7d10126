//! The classifier's oracle: a corpus of statements (tests/corpus/*.sql), each run by the servers
//! in a read-only setting and labelled by what they answer, compared with
//! [`diesel_rw::classify_sql_in`]. No statement the classifier calls a read may be refused by a
//! server as a write; the false writes (classified write, accepted read-only) are counted and
//! printed as a confusion table. The corpus's calls of the application's own functions that
//! write ([unseen]) are asserted with the functions the test learned from the server's catalog
//! ([`diesel_rw::classify_sql_with`]), as a pool classifies them.

use std::fmt::Write as _;

use diesel_rw::{classify_sql_in, classify_sql_with, SqlDialect, StatementKind, WritingFunctions};

/// A corpus file, its object names given the run's own prefix.
pub struct Corpus {
    /// Run read-write on the primary before the corpus.
    pub setup: Vec<String>,
    /// Run read-write on the primary by its admin user, after `setup` (`{db}` is the database).
    pub setup_admin: Vec<String>,
    /// Run afterwards.
    pub teardown: Vec<String>,
    /// The corpus: every statement, and each one with comments around it.
    pub statements: Vec<String>,
    /// How many distinct statements there are before the comment variants.
    pub distinct: usize,
    /// Calls of the application's own writing functions: asserted with the learned catalog.
    pub unseen: Vec<String>,
}

/// Reads `tests/corpus/<file>`, replacing `orc_` in every statement with `prefix`. Each corpus
/// statement also appears with a block comment before it, `line_comment` on a line before it,
/// and a block comment after it.
pub fn load(file: &str, prefix: &str, line_comment: &str) -> Corpus {
    let path = format!("{}/tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut sections: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("// [")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            current = name.to_owned();
            continue;
        }
        if line.starts_with("//") || line.trim().is_empty() {
            continue;
        }
        let entries = sections.entry(current.clone()).or_default();
        match line.strip_prefix("  ") {
            Some(rest) if !entries.is_empty() => {
                let last = entries.last_mut().unwrap();
                last.push('\n');
                last.push_str(rest);
            }
            _ => entries.push(line.to_owned()),
        }
    }
    let mut take = |name: &str| -> Vec<String> {
        sections
            .remove(name)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.replace("orc_", prefix))
            .collect()
    };
    let setup = take("setup");
    let setup_admin = take("setup-admin");
    let teardown = take("teardown");
    let mut base = take("statements");
    let forms = take("explain-forms");
    let explained = take("explained");
    let unseen = take("unseen");
    for form in &forms {
        for statement in &explained {
            base.push(form.replace("{}", statement));
        }
    }
    let distinct = base.len();
    let mut statements = Vec::with_capacity(distinct * 4);
    for s in &base {
        statements.push(s.clone());
        statements.push(format!("/* corpus */ {s}"));
        statements.push(format!("{line_comment}\n{s}"));
        statements.push(format!("{s} /* end */"));
    }
    Corpus {
        setup,
        setup_admin,
        teardown,
        statements,
        distinct,
        unseen,
    }
}

/// What a server answered to a statement run read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran.
    Accepted,
    /// Refused as a write (PostgreSQL 25006 or "during recovery"; MariaDB 1792 or 1290).
    Refused(String),
    /// Failed for another reason (syntax, missing object, permission, ...).
    Other(String),
}

/// A server setting in which statements are run read-only, and labelled.
pub trait Judge {
    /// For the table: where and how it runs statements.
    fn name(&self) -> String;
    /// Runs `sql` read-only (and undoes whatever it did), and says what the server answered.
    fn judge(&mut self, sql: &str) -> Outcome;
}

/// One statement's classification and verdicts.
struct Row {
    sql: String,
    /// Without the catalog (`classify_sql_in`).
    kind: StatementKind,
    /// With the functions learned from the catalog (`classify_sql_with`).
    learned: StatementKind,
    outcomes: Vec<Outcome>,
}

impl Row {
    fn refused(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Refused(_)))
    }

    fn other(&self) -> Option<&str> {
        if self.refused() {
            return None;
        }
        self.outcomes.iter().find_map(|o| match o {
            Outcome::Other(m) => Some(m.as_str()),
            _ => None,
        })
    }
}

/// Checks that each judge refuses a plain write and accepts a plain read (`write` and `read`),
/// so that the labels mean something.
pub fn check_judges(judges: &mut [Box<dyn Judge>], write: &str, read: &str) {
    for judge in judges.iter_mut() {
        let name = judge.name();
        match judge.judge(write) {
            Outcome::Refused(_) => {}
            other => panic!("{name} does not refuse {write:?}: {other:?}"),
        }
        assert_eq!(
            judge.judge(read),
            Outcome::Accepted,
            "{name} does not accept {read:?}"
        );
    }
}

/// Runs the corpus through every judge and the classifier, prints the confusion table, and
/// asserts that no statement classified as a read is refused by any judge, and that few
/// statements fail for other reasons (the corpus must run).
pub fn run(
    backend: &str,
    dialect: SqlDialect,
    corpus: &Corpus,
    judges: &mut [Box<dyn Judge>],
    functions: &WritingFunctions,
) {
    let judge_all = |judges: &mut [Box<dyn Judge>], sql: &String| Row {
        sql: sql.clone(),
        kind: classify_sql_in(sql, dialect),
        learned: classify_sql_with(sql, dialect, functions),
        outcomes: judges.iter_mut().map(|j| j.judge(sql)).collect(),
    };
    let rows: Vec<Row> = corpus
        .statements
        .iter()
        .map(|sql| judge_all(judges, sql))
        .collect();
    let unseen: Vec<Row> = corpus
        .unseen
        .iter()
        .map(|sql| judge_all(judges, sql))
        .collect();

    let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
    let (w, r) = (StatementKind::Write, StatementKind::Read);
    let refused_w = count(&|x| x.refused() && x.kind == w);
    let refused_r = count(&|x| x.refused() && x.kind == r);
    let accepted = |x: &Row| x.outcomes.iter().all(|o| *o == Outcome::Accepted);
    let accepted_w = count(&|x| accepted(x) && x.kind == w);
    let accepted_r = count(&|x| accepted(x) && x.kind == r);
    let other_w = count(&|x| x.other().is_some() && x.kind == w);
    let other_r = count(&|x| x.other().is_some() && x.kind == r);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "ORACLE {backend} ({dialect:?}): {} statements ({} distinct, each also with comments \
         around it); judges: {}",
        rows.len(),
        corpus.distinct,
        judges
            .iter()
            .map(|j| j.name())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        out,
        "  {:<34}{:>18}{:>18}",
        "", "classified write", "classified read"
    );
    let _ = writeln!(
        out,
        "  {:<34}{refused_w:>18}{refused_r:>18}",
        "refused by a server as a write"
    );
    let _ = writeln!(
        out,
        "  {:<34}{accepted_w:>18}{accepted_r:>18}",
        "accepted read-only by every server"
    );
    let _ = writeln!(
        out,
        "  {:<34}{other_w:>18}{other_r:>18}",
        "failed otherwise (syntax, ...)"
    );
    let _ = writeln!(
        out,
        "  false writes (classified write, accepted read-only): {accepted_w}; \
         classified reads refused: {refused_r}"
    );
    for (i, name) in judges.iter().map(|j| j.name()).enumerate() {
        let refused = rows
            .iter()
            .filter(|x| matches!(x.outcomes[i], Outcome::Refused(_)))
            .count();
        let _ = writeln!(out, "  refused by {name}: {refused}");
    }
    let _ = writeln!(out, "  false writes (distinct statements, first lines):");
    let mut seen = std::collections::BTreeSet::new();
    for x in rows.iter().filter(|x| accepted(x) && x.kind == w) {
        let first = x
            .sql
            .lines()
            .find(|l| !l.starts_with("/* corpus */") && !l.starts_with("--") && !l.starts_with('#'))
            .unwrap_or(&x.sql);
        let first = first
            .trim_start_matches("/* corpus */ ")
            .trim_end_matches(" /* end */");
        if seen.insert(first.to_owned()) {
            let _ = writeln!(out, "    {first}");
        }
    }
    let _ = writeln!(out, "  failed otherwise:");
    for x in rows.iter().filter(|x| x.other().is_some()) {
        let _ = writeln!(out, "    {:?}: {}", x.sql, x.other().unwrap_or_default());
    }
    let _ = writeln!(
        out,
        "  with the {} functions learned from the catalog: false writes {}, classified reads \
         refused {}",
        functions.names().len(),
        count(&|x| accepted(x) && x.learned == w),
        count(&|x| x.refused() && x.learned == r),
    );
    let _ = writeln!(
        out,
        "  the application's own writing functions (a write with the catalog learned; without \
         it, route them with /* diesel_rw:primary */):"
    );
    for x in &unseen {
        let _ = writeln!(
            out,
            "    {:?}: classified {:?} without the catalog, {:?} with it, {}",
            x.sql,
            x.kind,
            x.learned,
            if x.refused() {
                "refused"
            } else if x.other().is_some() {
                "failed otherwise"
            } else {
                "accepted"
            }
        );
    }
    let misclassified: Vec<String> = rows
        .iter()
        .filter(|x| x.refused() && (x.kind == r || x.learned == r))
        .chain(unseen.iter().filter(|x| x.refused() && x.learned == r))
        .map(|x| format!("{:?}: {:?}", x.sql, x.outcomes))
        .collect();
    let _ = writeln!(out, "  classified reads that a server refused:");
    for m in &misclassified {
        let _ = writeln!(out, "    {m}");
    }
    println!("{out}");

    assert!(
        corpus.distinct >= 150 && rows.len() >= 600,
        "the corpus has {} statements ({} distinct): at least 600",
        rows.len(),
        corpus.distinct
    );
    assert!(
        misclassified.is_empty(),
        "{} statements classified as reads were refused as writes:\n{}",
        misclassified.len(),
        misclassified.join("\n")
    );
    let other = other_w + other_r;
    assert!(
        other * 20 <= rows.len(),
        "{other} of {} statements failed for reasons other than read-only: fix the corpus",
        rows.len()
    );
    assert!(
        refused_w > 0 && accepted_r > 0,
        "the judges refused or accepted nothing"
    );
}

/// A prefix for this run's objects: `orc<pid>x<n>_`.
pub fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("orc{}x{}_", std::process::id(), nanos % 10_000)
}
