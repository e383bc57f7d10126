//! The `migrate` commands, over one backend's connections.

use std::time::Duration;

use diesel::connection::LoadConnection;
use diesel_rw::double_write::{KeyCounterBackend, Pattern, Side};
use diesel_rw::migrate::control::{CutoverGates, Direction, NoGates, StepOptions};
use diesel_rw::migrate::journal::{self, Which};
use diesel_rw::migrate::repair::Repair;
use diesel_rw::migrate::verify::{Verify, VerifyMode, VerifyReport};
use diesel_rw::migrate::verify_runs;
use diesel_rw::migrate::{Backfill, Checkpoint, MigrateConnection};
use serde_json::{json, Value};

use crate::args::{Command, SideArg};
use crate::exit::{Failure, DIFFERENCES, OK};
use crate::progress::Bars;
use crate::settings::Settings;

/// What a command printed: a JSON document and the same as text, and its exit code.
pub struct Done {
    pub code: u8,
    pub json: Value,
    pub text: String,
}

fn done(json: Value, text: String) -> Done {
    Done {
        code: OK,
        json,
        text,
    }
}

fn open<C: MigrateConnection>(url: &str) -> Result<C, Failure> {
    let mut c = C::establish(url)?;
    if C::DIALECT == diesel_rw::migrate::Dialect::Sqlite {
        // The service's instances write to the same file.
        diesel::connection::SimpleConnection::batch_execute(&mut c, "PRAGMA busy_timeout = 30000")
            .map_err(diesel_rw::Error::from)?;
    }
    Ok(c)
}

/// Runs `command` with connections of type `C`.
pub fn run<C>(s: &Settings, command: &Command) -> Result<Done, Failure>
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    let mut src: C = open(&s.source)?;
    let fleet = s.fleet();
    match command {
        Command::Init { at } => {
            let at: Pattern = at.parse().map_err(Failure::from)?;
            let phase = fleet.init(&mut src, at)?;
            Ok(done(
                json!({"migration": s.migration, "phase": phase.pattern.name(), "epoch": phase.epoch}),
                format!(
                    "migration {}: {} (epoch {})",
                    s.migration, phase.pattern, phase.epoch
                ),
            ))
        }
        Command::Status => status::<C>(s, &mut src),
        Command::Backfill {
            chunk_size,
            pause_ms,
            restart,
        } => {
            let mut dst: C = open(s.destination()?)?;
            let mut out = Vec::new();
            let mut text = String::new();
            for spec in s.need_tables()? {
                let bars = Bars::new(s.json);
                let bar = bars.rows(spec.name());
                let mut b = Backfill::new(spec.clone()).restart(*restart);
                if let Some(n) = chunk_size {
                    b = b.chunk_size(*n);
                }
                if let Some(ms) = pause_ms {
                    b = b.pause(Duration::from_millis(*ms));
                }
                let mut b = b.on_progress(move |p| bar.show(p));
                let report = b.run(&mut src, &mut dst)?;
                bars.finish();
                let p = &report.progress;
                text.push_str(&format!(
                    "{}: {} ({} rows copied, {} inserted, {:.0} rows/s this run)\n",
                    p.table,
                    if report.done { "done" } else { "stopped" },
                    p.rows_copied,
                    p.rows_inserted,
                    p.rows_per_sec
                ));
                out.push(
                    json!({"table": p.table, "done": report.done, "rows_copied": p.rows_copied,
                    "rows_inserted": p.rows_inserted, "rows_per_sec": p.rows_per_sec,
                    "resumed_after": report.resumed_after.as_ref().map(|k| k.to_string())}),
                );
            }
            Ok(done(json!({"backfill": out}), text))
        }
        Command::Verify {
            incremental,
            authoritative,
        } => {
            let mut dst: C = open(s.destination()?)?;
            let phase = fleet.phase(&mut src).ok().map(|p| p.pattern);
            let side = side_of(*authoritative, phase);
            let mut reports = Vec::new();
            let mut text = String::new();
            let mut differ = false;
            for spec in s.need_tables()? {
                let mut v = Verify::new(spec.clone())
                    .authoritative(side)
                    .record_to(Side::Source);
                if let Some(p) = phase {
                    v = v.pattern(p);
                }
                let (report, extra) = if *incremental {
                    let mode = if spec.changed_at_column().is_some() {
                        VerifyMode::SinceLastClean
                    } else {
                        VerifyMode::Full
                    };
                    let out = v.mode(mode).run_journal(&mut src, &mut dst, None)?;
                    let extra = json!({"journal_entries": out.entries, "marked_done": out.done.len(), "whole_table": out.whole_table});
                    (out.report, extra)
                } else {
                    (v.run(&mut src, &mut dst)?, json!({}))
                };
                differ |= !report.is_clean();
                text.push_str(&report_text(&report));
                let mut j = report_json(&report);
                if let (Value::Object(m), Value::Object(e)) = (&mut j, extra) {
                    m.extend(e);
                }
                reports.push(j);
            }
            Ok(Done {
                code: if differ { DIFFERENCES } else { OK },
                json: json!({"verify": reports, "clean": !differ}),
                text,
            })
        }
        Command::Repair {
            dry_run,
            authoritative,
        } => {
            let mut dst: C = open(s.destination()?)?;
            let phase = fleet.phase(&mut src).ok().map(|p| p.pattern);
            let side = side_of(*authoritative, phase);
            let mut out = Vec::new();
            let mut text = String::new();
            let mut left = false;
            for spec in s.need_tables()? {
                let report = Verify::new(spec.clone())
                    .authoritative(side)
                    .run(&mut src, &mut dst)?;
                let r = Repair::new(spec.clone())
                    .dry_run(*dry_run)
                    .run(&report, &mut src, &mut dst)?;
                let actions = if *dry_run { &r.planned } else { &r.applied };
                left |= !r.skipped.is_empty()
                    || !r.requeued.is_empty()
                    || (*dry_run && !actions.is_empty());
                text.push_str(&format!(
                    "{}: {} {} on the {}{}{}\n",
                    r.table,
                    if *dry_run { "would do" } else { "did" },
                    actions.len(),
                    side.other(),
                    if r.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(", {} skipped", r.skipped.len())
                    },
                    if r.requeued.is_empty() {
                        String::new()
                    } else {
                        format!(", {} changed meanwhile (verify again)", r.requeued.len())
                    },
                ));
                for a in actions {
                    text.push_str(&format!("  {:?} {}\n", a.kind, a.key));
                }
                out.push(json!({"table": r.table, "dry_run": r.dry_run, "authoritative": side.name(),
                    "actions": actions.iter().map(|a| json!({"kind": format!("{:?}", a.kind).to_lowercase(), "key": a.key.values()})).collect::<Vec<_>>(),
                    "skipped": r.skipped.len(), "requeued": r.requeued.iter().map(|k| k.values().to_vec()).collect::<Vec<_>>()}));
            }
            Ok(Done {
                code: if left { DIFFERENCES } else { OK },
                json: json!({"repair": out}),
                text,
            })
        }
        Command::Advance {
            step,
            force,
            reason,
            verify_max_age,
            no_key_counters,
        } => {
            let mut options = step_options(step.wait, step.by.clone());
            if *force {
                options = options.force(reason.clone().unwrap_or_default());
            }
            let stepped = if s.tables.is_empty() {
                return Err(Failure::usage(
                    "advance checks the gates of the migration's tables: give --table NAME (repeat it), or `tables` in the config file",
                ));
            } else {
                let mut gates = CutoverGates::new(
                    open::<C>(&s.source)?,
                    open::<C>(s.destination()?)?,
                    s.tables.clone(),
                )
                .key_counters(!no_key_counters);
                if let Some(age) = verify_max_age {
                    gates = gates.verify_max_age(Duration::from_secs(*age));
                }
                fleet.step(&mut src, Direction::Advance, &mut gates, &options)?
            };
            Ok(done(
                json!({"from": stepped.from.name(), "to": stepped.to.name(), "epoch": stepped.epoch,
                       "forced_past": stepped.overridden.iter().map(|r| r.to_string()).collect::<Vec<_>>()}),
                format!(
                    "migration {}: {} -> {} (epoch {}){}",
                    s.migration,
                    stepped.from,
                    stepped.to,
                    stepped.epoch,
                    if stepped.overridden.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; forced past: {}",
                            stepped
                                .overridden
                                .iter()
                                .map(|r| r.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        )
                    }
                ),
            ))
        }
        Command::Retreat { step, reason } => {
            let mut options = step_options(step.wait, step.by.clone());
            if let Some(r) = reason {
                // Recorded as the reason of an unforced step.
                options = options.by(format!("{} ({r})", step.by.clone().unwrap_or_else(whoami)));
            }
            let stepped = fleet.step(&mut src, Direction::Retreat, &mut NoGates, &options)?;
            Ok(done(
                json!({"from": stepped.from.name(), "to": stepped.to.name(), "epoch": stepped.epoch}),
                format!(
                    "migration {}: {} -> {} (epoch {})",
                    s.migration, stepped.from, stepped.to, stepped.epoch
                ),
            ))
        }
        Command::Journal { all, limit } => {
            let rows = journal::rows(&mut src, if *all { Which::All } else { Which::Pending })?;
            let skip = rows.len().saturating_sub(*limit);
            let rows = &rows[skip..];
            let mut text = format!(
                "{} {} entr{}\n",
                rows.len(),
                if *all { "journal" } else { "pending" },
                if rows.len() == 1 { "y" } else { "ies" }
            );
            for r in rows {
                text.push_str(&format!(
                    "#{} {} {} lacks it ({:?}, {}): {} keys {} — {}\n",
                    r.id,
                    r.recorded_at,
                    r.side,
                    r.kind,
                    r.pattern,
                    r.table.as_deref().unwrap_or("(no table)"),
                    r.keys.as_ref().map_or_else(
                        || "unknown".to_owned(),
                        |k| k
                            .iter()
                            .map(|k| k.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    if r.done_at.is_some() {
                        "done"
                    } else {
                        "pending"
                    }
                ));
            }
            let json = json!({"entries": rows.iter().map(|r| json!({"id": r.id, "recorded_at": r.recorded_at, "table": r.table,
                "kind": format!("{:?}", r.kind), "side": r.side.name(), "pattern": r.pattern.name(),
                "keys": r.keys.as_ref().map(|k| k.iter().map(|k| k.values().to_vec()).collect::<Vec<_>>()),
                "statement": r.statement, "error": r.error, "done_at": r.done_at})).collect::<Vec<_>>()});
            Ok(done(json, text))
        }
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

fn step_options(wait: Option<u64>, by: Option<String>) -> StepOptions {
    let mut o = StepOptions::new();
    if let Some(secs) = wait {
        o = o.wait(Duration::from_secs(secs));
    }
    if let Some(by) = by {
        o = o.by(by);
    }
    o
}

/// The side taken as right: as asked, else the source until `DstFirst`, then the destination.
fn side_of(asked: Option<SideArg>, phase: Option<Pattern>) -> Side {
    match asked {
        Some(SideArg::Source) => Side::Source,
        Some(SideArg::Destination) => Side::Destination,
        None => match phase {
            Some(Pattern::DstFirst | Pattern::DstOnly) => Side::Destination,
            _ => Side::Source,
        },
    }
}

fn keys(diffs: &[diesel_rw::migrate::verify::RowDiff]) -> Vec<Vec<String>> {
    diffs.iter().map(|d| d.key.values().to_vec()).collect()
}

fn report_json(r: &VerifyReport) -> Value {
    json!({"table": r.table, "authoritative": r.authoritative.name(), "mode": r.mode.name(),
        "rows_compared": r.rows_compared, "clean": r.is_clean(),
        "missing_on_destination": keys(&r.missing_on_destination),
        "missing_on_source": keys(&r.missing_on_source),
        "different": keys(&r.different),
        "elapsed_ms": r.elapsed.as_millis() as u64, "recorded": r.recorded})
}

fn report_text(r: &VerifyReport) -> String {
    let list = |d: &[diesel_rw::migrate::verify::RowDiff]| {
        let shown: Vec<String> = d.iter().take(10).map(|d| d.key.to_string()).collect();
        let more = d.len().saturating_sub(10);
        format!(
            "{}{}",
            shown.join(" "),
            if more > 0 {
                format!(" (+{more})")
            } else {
                String::new()
            }
        )
    };
    let mut t = format!(
        "{}: {} ({} rows compared, {} mode, {} authoritative, {} ms)\n",
        r.table,
        if r.is_clean() { "clean" } else { "DIFFERENT" },
        r.rows_compared,
        r.mode.name(),
        r.authoritative,
        r.elapsed.as_millis()
    );
    for (what, d) in [
        ("missing on the destination", &r.missing_on_destination),
        ("missing on the source", &r.missing_on_source),
        ("different", &r.different),
    ] {
        if !d.is_empty() {
            t.push_str(&format!("  {} {what}: {}\n", d.len(), list(d)));
        }
    }
    t
}

fn status<C>(s: &Settings, src: &mut C) -> Result<Done, Failure>
where
    C: MigrateConnection + LoadConnection,
{
    let fleet = s.fleet();
    let st = fleet.status(src)?;
    let p = &st.phase;
    let mut text = format!(
        "migration {}: {} (epoch {}), changed {} by {}: {}{}\n",
        s.migration,
        p.pattern,
        p.epoch,
        p.changed_at,
        p.changed_by,
        p.reason,
        if p.forced { " [forced]" } else { "" }
    );
    let live = st.live().count();
    text.push_str(&format!(
        "instances: {} live ({} acknowledged), {} gone (heartbeat older than {} s)\n",
        live,
        st.live().filter(|i| i.acknowledged).count(),
        st.instances.len() - live,
        st.heartbeat_limit.as_secs()
    ));
    for i in &st.instances {
        text.push_str(&format!(
            "  {}{}\n",
            i,
            if i.live && !i.acknowledged {
                " [LAGGING]"
            } else {
                ""
            }
        ));
    }
    // Backfill progress (on the destination) and the last verify (on the source), per table.
    let mut dst: Option<C> = match &s.destination {
        Some(url) => Some(open(url)?),
        None => None,
    };
    let mut tables = Vec::new();
    for spec in &s.tables {
        let name = spec
            .describe(src)
            .map(|t| t.name)
            .unwrap_or_else(|_| spec.name().to_owned());
        let cp = match dst.as_mut() {
            Some(d) => Checkpoint::load(d, &name)?,
            None => None,
        };
        let last = verify_runs::latest(src, &name, &verify_runs::RunFilter::new())?;
        text.push_str(&format!(
            "table {name}: backfill {}; last verify {}\n",
            match &cp {
                Some(c) if c.done => format!("done ({} rows copied)", c.rows_copied),
                Some(c) => format!("{} rows copied so far", c.rows_copied),
                None if dst.is_some() => "not started".to_owned(),
                None => "unknown (no destination given)".to_owned(),
            },
            match &last {
                Some(r) => format!(
                    "#{} {} under {}: {} ({} rows, {} differences){}",
                    r.id,
                    r.mode.name(),
                    r.pattern
                        .map_or_else(|| "no known phase".to_owned(), |p| p.to_string()),
                    match (&r.finished_at, r.clean) {
                        (None, _) => "not finished".to_owned(),
                        (Some(_), true) => "clean".to_owned(),
                        (Some(_), false) => "NOT clean".to_owned(),
                    },
                    r.rows_compared,
                    r.differences,
                    r.age
                        .map_or_else(String::new, |a| format!(", {} s ago", a.as_secs()))
                ),
                None => "none".to_owned(),
            }
        ));
        tables.push(json!({"table": name,
            "backfill": cp.as_ref().map(|c| json!({"done": c.done, "rows_copied": c.rows_copied, "rows_inserted": c.rows_inserted})),
            "last_verify": last.as_ref().map(|r| json!({"id": r.id, "mode": r.mode.name(), "pattern": r.pattern.map(|p| p.name()),
                "finished": r.finished_at.is_some(), "clean": r.clean, "rows_compared": r.rows_compared,
                "differences": r.differences, "age_secs": r.age.map(|a| a.as_secs())}))}));
    }
    // The backlog of the migration's tables (every table's when none is named).
    let mut names: Vec<String> = Vec::new();
    for spec in &s.tables {
        names.push(spec.name().to_owned());
        if let Ok(t) = spec.describe(src) {
            if let Some((_, bare)) = t.name.rsplit_once('.') {
                names.push(bare.to_owned());
            }
            names.push(t.name);
        }
    }
    let pending = journal::rows(src, Which::Pending)?
        .iter()
        .filter(|r| names.is_empty() || r.table.as_ref().is_none_or(|t| names.contains(t)))
        .count();
    text.push_str(&format!(
        "journal: {pending} pending entr{}\n",
        if pending == 1 { "y" } else { "ies" }
    ));
    let json = json!({
        "migration": s.migration,
        "phase": p.pattern.name(), "epoch": p.epoch, "changed_at": p.changed_at, "changed_by": p.changed_by,
        "reason": p.reason, "forced": p.forced,
        "heartbeat_limit_secs": st.heartbeat_limit.as_secs(),
        "instances": st.instances.iter().map(|i| json!({"id": i.record.instance_id, "host": i.record.host, "pid": i.record.pid,
            "phase": i.record.pattern.name(), "epoch": i.record.epoch, "heartbeat_age_ms": i.record.heartbeat_age.as_millis() as u64,
            "live": i.live, "acknowledged": i.acknowledged})).collect::<Vec<_>>(),
        "tables": tables,
        "journal_pending": pending,
    });
    Ok(done(json, text))
}
