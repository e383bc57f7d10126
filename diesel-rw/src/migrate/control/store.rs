//! The control tables and the SQL that reads and writes them, per backend.
//!
//! Three tables, named after the control table ([`ControlTables`]):
//!
//! | table | one row per | columns |
//! |---|---|---|
//! | `diesel_rw_control` | migration | `migration` (key), `phase`, `epoch` (grows at every change), `changed_at`, `changed_by`, `reason`, `forced` |
//! | `diesel_rw_control_instance` | instance of the service | `migration`, `instance_id` (key together), `host`, `pid`, `phase` and `epoch` it applies, `started_at`, `heartbeat_at` |
//! | `diesel_rw_control_log` | step taken | `id`, `migration`, `epoch` (the new one), `from_phase`, `to_phase`, `changed_by`, `reason`, `forced`, `changed_at` |
//!
//! Times are the control database's clock (UTC), and ages are computed by that server in the
//! same statement, so the clocks of the instances' hosts never matter.

use std::time::Duration;

use crate::double_write::Pattern;
use crate::error::{Error, Result};
use crate::migrate::dialect::{Binds, Dialect, MigrateConnection};

/// The default name of the control table.
pub const CONTROL_TABLE: &str = "diesel_rw_control";

/// The names of the control tables: the control table and, after it, `<name>_instance` and
/// `<name>_log`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ControlTables {
    control: String,
    instance: String,
    log: String,
}

impl Default for ControlTables {
    fn default() -> Self {
        ControlTables::named(CONTROL_TABLE).expect("the default name is valid")
    }
}

impl ControlTables {
    /// The tables named after `control`: an unquoted SQL name of letters, digits and `_`,
    /// starting with a letter or `_`, at most 40 characters (so that every backend takes the
    /// derived names). Anything else is [`Error::Config`].
    pub fn named(control: &str) -> Result<ControlTables> {
        let ok = !control.is_empty()
            && control.len() <= 40
            && control
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && control
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::Config(format!(
                "control table name `{control}`: use letters, digits and `_` (at most 40, not starting with a digit)"
            )));
        }
        Ok(ControlTables {
            control: control.to_owned(),
            instance: format!("{control}_instance"),
            log: format!("{control}_log"),
        })
    }

    /// The control table (one row per migration).
    pub fn control(&self) -> &str {
        &self.control
    }

    /// The instance table (one row per instance of the service).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The log of steps.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The PostgreSQL notification channel a step notifies (the control table's name).
    pub fn channel(&self) -> &str {
        &self.control
    }
}

/// A migration's row of the control table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseRecord {
    /// The migration's name.
    pub migration: String,
    /// Its phase.
    pub pattern: Pattern,
    /// Grows by one at every change.
    pub epoch: i64,
    /// When it last changed (the control database's clock, UTC, ISO 8601).
    pub changed_at: String,
    /// Who changed it.
    pub changed_by: String,
    /// Why.
    pub reason: String,
    /// Whether the last step was forced past a gate.
    pub forced: bool,
}

/// An instance's row of the instance table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceRecord {
    /// The instance's id.
    pub instance_id: String,
    /// Its host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The phase it applies.
    pub pattern: Pattern,
    /// The epoch of that phase.
    pub epoch: i64,
    /// When it started (UTC, ISO 8601).
    pub started_at: String,
    /// How long ago its last heartbeat was, by the control database's clock.
    pub heartbeat_age: Duration,
}

/// A row of the log of steps.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRecord {
    /// The epoch the step made.
    pub epoch: i64,
    /// The phase before.
    pub from: Pattern,
    /// The phase after.
    pub to: Pattern,
    /// Who took it.
    pub changed_by: String,
    /// Why (for a forced step, the reason given and what the gates said).
    pub reason: String,
    /// Whether it was forced past a gate.
    pub forced: bool,
    /// When (UTC, ISO 8601).
    pub changed_at: String,
}

/// The control database's clock now.
fn now(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "clock_timestamp()",
        Dialect::Mysql => "UTC_TIMESTAMP(6)",
        Dialect::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
    }
}

fn timestamp_type(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "TIMESTAMPTZ",
        Dialect::Mysql => "DATETIME(6)",
        Dialect::Sqlite => "TEXT",
    }
}

/// The text (UTC, ISO 8601) of a timestamp column.
fn time_text(d: Dialect, column: &str) -> String {
    match d {
        Dialect::Postgres => {
            format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
        }
        Dialect::Mysql => format!("DATE_FORMAT({column}, '%Y-%m-%dT%H:%i:%s.%fZ')"),
        Dialect::Sqlite => format!("strftime('%Y-%m-%dT%H:%M:%fZ', {column})"),
    }
}

/// The age of a timestamp column in whole milliseconds, as text.
fn age_ms(d: Dialect, column: &str) -> String {
    match d {
        Dialect::Postgres => {
            format!("((extract(epoch from (clock_timestamp() - {column})) * 1000)::bigint)::text")
        }
        Dialect::Mysql => {
            format!("CAST(TIMESTAMPDIFF(MICROSECOND, {column}, UTC_TIMESTAMP(6)) DIV 1000 AS CHAR)")
        }
        Dialect::Sqlite => format!(
            "CAST(CAST(ROUND((julianday('now') - julianday({column})) * 86400000) AS INTEGER) AS TEXT)"
        ),
    }
}

fn bigint(d: Dialect, placeholder: &str) -> String {
    match d {
        Dialect::Postgres => format!("CAST({placeholder} AS BIGINT)"),
        Dialect::Mysql => format!("CAST({placeholder} AS SIGNED)"),
        Dialect::Sqlite => format!("CAST({placeholder} AS INTEGER)"),
    }
}

/// Creates the three tables on `conn` if they are not there.
pub fn create_tables<C: MigrateConnection>(conn: &mut C, t: &ControlTables) -> Result<()> {
    let d = C::DIALECT;
    let ts = timestamp_type(d);
    let id = match d {
        Dialect::Postgres => "id BIGSERIAL PRIMARY KEY",
        Dialect::Mysql => "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        Dialect::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {} (migration VARCHAR(191) NOT NULL PRIMARY KEY, \
             phase VARCHAR(16) NOT NULL, epoch BIGINT NOT NULL, changed_at {ts} NOT NULL, \
             changed_by VARCHAR(255) NOT NULL, reason TEXT NOT NULL, forced INTEGER NOT NULL)",
            t.control
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (migration VARCHAR(191) NOT NULL, \
             instance_id VARCHAR(191) NOT NULL, host VARCHAR(255) NOT NULL, pid BIGINT NOT NULL, \
             phase VARCHAR(16) NOT NULL, epoch BIGINT NOT NULL, started_at {ts} NOT NULL, \
             heartbeat_at {ts} NOT NULL, PRIMARY KEY (migration, instance_id))",
            t.instance
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({id}, migration VARCHAR(191) NOT NULL, \
             epoch BIGINT NOT NULL, from_phase VARCHAR(16) NOT NULL, to_phase VARCHAR(16) NOT NULL, \
             changed_by VARCHAR(255) NOT NULL, reason TEXT NOT NULL, forced INTEGER NOT NULL, \
             changed_at {ts} NOT NULL)",
            t.log
        ),
    ];
    for sql in &statements {
        if let Err(e) = conn.execute_binds(sql, &[]) {
            // Two processes creating them at once: PostgreSQL's `IF NOT EXISTS` can still fail
            // on the catalog's unique index; the other one made it.
            if !tables_exist(conn, t)? {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Whether the control table exists on `conn`.
pub fn tables_exist<C: MigrateConnection>(conn: &mut C, t: &ControlTables) -> Result<bool> {
    let name = &t.control;
    let sql = match C::DIALECT {
        Dialect::Postgres => format!("SELECT to_regclass('{name}')::text AS value"),
        Dialect::Mysql => format!(
            "SELECT TABLE_NAME AS value FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{name}'"
        ),
        Dialect::Sqlite => {
            format!(
                "SELECT name AS value FROM sqlite_master WHERE type = 'table' AND name = '{name}'"
            )
        }
    };
    Ok(conn
        .query_texts(&sql, &[])?
        .into_iter()
        .flatten()
        .next()
        .is_some())
}

/// Adds the migration at `pattern`, epoch 1, unless it is there; returns its row either way.
pub fn init<C: MigrateConnection>(
    conn: &mut C,
    t: &ControlTables,
    migration: &str,
    pattern: Pattern,
    by: &str,
) -> Result<PhaseRecord> {
    create_tables(conn, t)?;
    if let Some(found) = read_phase(conn, t, migration)? {
        return Ok(found);
    }
    let d = C::DIALECT;
    let mut b = Binds::new(d);
    let (m, p, by, reason) = (
        b.push(migration),
        b.push(pattern.name()),
        b.push(by),
        b.push("migration started"),
    );
    let sql = format!(
        "INSERT INTO {} (migration, phase, epoch, changed_at, changed_by, reason, forced) \
         VALUES ({m}, {p}, 1, {now}, {by}, {reason}, 0)",
        t.control,
        now = now(d)
    );
    if let Err(e) = conn.execute_binds(&sql, b.values()) {
        // Another process added it first.
        if read_phase(conn, t, migration)?.is_none() {
            return Err(e);
        }
    }
    read_phase(conn, t, migration)?.ok_or_else(|| Error::UnknownMigration {
        migration: migration.to_owned(),
        table: t.control.clone(),
    })
}

/// The migration's row; `None` if it (or the table) is not there.
pub fn read_phase<C: MigrateConnection>(
    conn: &mut C,
    t: &ControlTables,
    migration: &str,
) -> Result<Option<PhaseRecord>> {
    let d = C::DIALECT;
    let items = [
        d.to_text("phase"),
        d.to_text("epoch"),
        time_text(d, "changed_at"),
        d.to_text("changed_by"),
        d.to_text("reason"),
        d.to_text("forced"),
    ];
    let mut b = Binds::new(d);
    let sql = format!(
        "SELECT {} AS value FROM {} WHERE migration = {}",
        d.json_array(&items),
        t.control,
        b.push(migration)
    );
    let rows = match conn.query_texts(&sql, b.values()) {
        Ok(rows) => rows,
        Err(e) => {
            return if tables_exist(conn, t)? {
                Err(e)
            } else {
                Ok(None)
            }
        }
    };
    let Some(text) = rows.into_iter().flatten().next() else {
        return Ok(None);
    };
    let f = fields(&text, t.control())?;
    Ok(Some(PhaseRecord {
        migration: migration.to_owned(),
        pattern: parse_pattern(&f[0], t.control())?,
        epoch: parse_num(&f[1], t.control())?,
        changed_at: f[2].clone(),
        changed_by: f[3].clone(),
        reason: f[4].clone(),
        forced: f[5] != "0",
    }))
}

/// Steps the migration from `from` at `epoch` to `to` (epoch + 1), in one statement that
/// compares and sets: `false`, and nothing changed, when the row is no longer at that epoch.
/// The step is logged, and on PostgreSQL notified on the channel, in the same transaction.
#[allow(clippy::too_many_arguments)]
pub fn compare_and_step<C: MigrateConnection>(
    conn: &mut C,
    t: &ControlTables,
    migration: &str,
    from: Pattern,
    epoch: i64,
    to: Pattern,
    by: &str,
    reason: &str,
    forced: bool,
) -> Result<bool> {
    let d = C::DIALECT;
    conn.write_transaction(|conn| {
        let mut b = Binds::new(d);
        let (p, by_, reason_) = (b.push(to.name()), b.push(by), b.push(reason));
        let (m, e, f) = (
            b.push(migration),
            bigint(d, &b.push(epoch.to_string())),
            b.push(from.name()),
        );
        let sql = format!(
            "UPDATE {} SET phase = {p}, epoch = epoch + 1, changed_at = {now}, changed_by = {by_}, \
             reason = {reason_}, forced = {forced} WHERE migration = {m} AND epoch = {e} AND phase = {f}",
            t.control,
            now = now(d),
            forced = u8::from(forced),
        );
        if conn.execute_binds(&sql, b.values())? != 1 {
            return Ok(false);
        }
        let mut b = Binds::new(d);
        let (m, e, f, p, by_, reason_) = (
            b.push(migration),
            bigint(d, &b.push((epoch + 1).to_string())),
            b.push(from.name()),
            b.push(to.name()),
            b.push(by),
            b.push(reason),
        );
        conn.execute_binds(
            &format!(
                "INSERT INTO {} (migration, epoch, from_phase, to_phase, changed_by, reason, forced, changed_at) \
                 VALUES ({m}, {e}, {f}, {p}, {by_}, {reason_}, {forced}, {now})",
                t.log,
                now = now(d),
                forced = u8::from(forced),
            ),
            b.values(),
        )?;
        if d == Dialect::Postgres {
            // Delivered at COMMIT to every instance listening.
            conn.execute_binds("SELECT pg_notify($1, $2)", &[t.channel().to_owned(), migration.to_owned()])?;
        }
        Ok(true)
    })
}

/// Who an instance is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InstanceId {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
}

/// Writes the instance's heartbeat: the phase and epoch it applies, now.
pub(crate) fn heartbeat<C: MigrateConnection>(
    conn: &mut C,
    t: &ControlTables,
    migration: &str,
    me: &InstanceId,
    pattern: Pattern,
    epoch: i64,
) -> Result<()> {
    let d = C::DIALECT;
    let mut b = Binds::new(d);
    let (m, id, host, pid, p, e) = (
        b.push(migration),
        b.push(me.id.clone()),
        b.push(me.host.clone()),
        bigint(d, &b.push(me.pid.to_string())),
        b.push(pattern.name()),
        bigint(d, &b.push(epoch.to_string())),
    );
    let now = now(d);
    let update = match d {
        Dialect::Mysql => "ON DUPLICATE KEY UPDATE host = VALUES(host), pid = VALUES(pid), \
                           phase = VALUES(phase), epoch = VALUES(epoch), heartbeat_at = VALUES(heartbeat_at)"
            .to_owned(),
        Dialect::Postgres | Dialect::Sqlite => "ON CONFLICT (migration, instance_id) DO UPDATE SET \
             host = excluded.host, pid = excluded.pid, phase = excluded.phase, \
             epoch = excluded.epoch, heartbeat_at = excluded.heartbeat_at"
            .to_owned(),
    };
    conn.execute_binds(
        &format!(
            "INSERT INTO {} (migration, instance_id, host, pid, phase, epoch, started_at, heartbeat_at) \
             VALUES ({m}, {id}, {host}, {pid}, {p}, {e}, {now}, {now}) {update}",
            t.instance
        ),
        b.values(),
    )?;
    Ok(())
}

/// Removes the instance's row (a clean shutdown).
pub(crate) fn deregister<C: MigrateConnection>(
    conn: &mut C,
    t: &ControlTables,
    migration: &str,
    id: &str,
) -> Result<()> {
    let mut b = Binds::new(C::DIALECT);
    let sql = format!(
        "DELETE FROM {} WHERE migration = {} AND instance_id = {}",
        t.instance,
        b.push(migration),
        b.push(id)
    );
    conn.execute_binds(&sql, b.values())?;
    Ok(())
}

/// The migration's instances, by id.
pub fn instances<C: MigrateConnection>(
    conn: &mut C,
    t: &ControlTables,
    migration: &str,
) -> Result<Vec<InstanceRecord>> {
    let d = C::DIALECT;
    let items = [
        d.to_text("instance_id"),
        d.to_text("host"),
        d.to_text("pid"),
        d.to_text("phase"),
        d.to_text("epoch"),
        time_text(d, "started_at"),
        age_ms(d, "heartbeat_at"),
    ];
    let mut b = Binds::new(d);
    let sql = format!(
        "SELECT {} AS value FROM {} WHERE migration = {} ORDER BY instance_id",
        d.json_array(&items),
        t.instance,
        b.push(migration)
    );
    conn.query_texts(&sql, b.values())?
        .into_iter()
        .flatten()
        .map(|text| {
            let f = fields(&text, t.instance())?;
            Ok(InstanceRecord {
                instance_id: f[0].clone(),
                host: f[1].clone(),
                pid: parse_num(&f[2], t.instance())?,
                pattern: parse_pattern(&f[3], t.instance())?,
                epoch: parse_num(&f[4], t.instance())?,
                started_at: f[5].clone(),
                heartbeat_age: Duration::from_millis(
                    parse_num::<i64>(&f[6], t.instance())?.max(0) as u64
                ),
            })
        })
        .collect()
}

/// The migration's steps, newest first, at most `limit`.
pub fn log<C: MigrateConnection>(
    conn: &mut C,
    t: &ControlTables,
    migration: &str,
    limit: u32,
) -> Result<Vec<StepRecord>> {
    let d = C::DIALECT;
    let items = [
        d.to_text("epoch"),
        d.to_text("from_phase"),
        d.to_text("to_phase"),
        d.to_text("changed_by"),
        d.to_text("reason"),
        d.to_text("forced"),
        time_text(d, "changed_at"),
    ];
    let mut b = Binds::new(d);
    let sql = format!(
        "SELECT {} AS value FROM {} WHERE migration = {} ORDER BY id DESC LIMIT {limit}",
        d.json_array(&items),
        t.log,
        b.push(migration)
    );
    conn.query_texts(&sql, b.values())?
        .into_iter()
        .flatten()
        .map(|text| {
            let f = fields(&text, t.log())?;
            Ok(StepRecord {
                epoch: parse_num(&f[0], t.log())?,
                from: parse_pattern(&f[1], t.log())?,
                to: parse_pattern(&f[2], t.log())?,
                changed_by: f[3].clone(),
                reason: f[4].clone(),
                forced: f[5] != "0",
                changed_at: f[6].clone(),
            })
        })
        .collect()
}

fn unreadable(table: &str, what: &str, text: &str) -> Error {
    Error::InvalidState(format!("a row of {table} is unreadable ({what}): `{text}`"))
}

/// The fields of a JSON array of texts (NULL as empty).
fn fields(text: &str, table: &str) -> Result<Vec<String>> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| unreadable(table, "not JSON", text))?;
    let items = v
        .as_array()
        .ok_or_else(|| unreadable(table, "not an array", text))?;
    Ok(items
        .iter()
        .map(|x| match x {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        })
        .collect())
}

fn parse_pattern(s: &str, table: &str) -> Result<Pattern> {
    s.parse().map_err(|_| unreadable(table, "phase", s))
}

fn parse_num<T: std::str::FromStr>(s: &str, table: &str) -> Result<T> {
    s.trim().parse().map_err(|_| unreadable(table, "number", s))
}
