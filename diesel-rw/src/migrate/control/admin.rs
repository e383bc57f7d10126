//! The admin endpoint (feature `admin`): an axum [`Router`] exposing a migration's status,
//! its steps and a verify, for services that already serve HTTP.
//!
//! | route | body (JSON, optional) | answer |
//! |---|---|---|
//! | `GET /status` | | `200` the phase, epoch, who and why, the instances |
//! | `POST /advance` | `{"force": bool, "reason": str, "wait_secs": n, "by": str}` | `200` the step; `409` refused by a gate, instances lag, another step came first |
//! | `POST /retreat` | `{"wait_secs": n, "by": str}` | as `/advance` |
//! | `POST /verify` | `{"incremental": bool}` | `200` one report per table (recorded for the gates), `"clean"` |
//!
//! Every request must carry `Authorization: Bearer <token>`; without it, or with another
//! token (compared in constant time), the answer is `401` and nothing is read or changed. The
//! router refuses to build without a token. Errors are `{"error": kind, "message": ...}` with
//! the kinds of the CLI's `--json` (`gate_refused`, `instances_lag`, `conflict`, `error`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use diesel::connection::LoadConnection;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::{CutoverGates, Direction, Fleet, NoGates, StepOptions};
use crate::double_write::{KeyCounterBackend, Pattern, Side};
use crate::error::{Error, Result};
use crate::migrate::verify::{Verify, VerifyMode};
use crate::migrate::{MigrateConnection, TableSpec};

/// Configures the admin [`Router`] of one migration ([`AdminRouter::builder`]).
pub struct AdminRouterBuilder<C> {
    source: String,
    destination: String,
    fleet: Fleet,
    tables: Vec<TableSpec>,
    token: Option<String>,
    verify_max_age: Option<Duration>,
    key_counters: bool,
    _conn: std::marker::PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for AdminRouterBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRouterBuilder")
            .field("source", &crate::url::redact(&self.source))
            .field("destination", &crate::url::redact(&self.destination))
            .field("fleet", &self.fleet)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// The admin endpoint of a migration (see [the module](self)).
///
/// ```no_run
/// # #[cfg(feature = "postgres")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::PgConnection;
/// use diesel_rw::migrate::control::{admin::AdminRouter, Fleet};
///
/// let (src, dst) = ("postgres://app@127.0.0.1:55432/app", "postgres://app@127.0.0.1:55434/app");
/// let admin: axum::Router = AdminRouter::<PgConnection>::builder(src, dst, Fleet::new("orders_move"))
///     .tables(["orders", "order_lines"])
///     .token(std::env::var("ADMIN_TOKEN")?)
///     .build()?;
/// let app: axum::Router = axum::Router::new().nest("/admin/migration", admin);
/// # let _ = app;
/// # Ok(()) }
/// # #[cfg(not(feature = "postgres"))] fn main() {}
/// ```
#[derive(Debug)]
pub struct AdminRouter<C>(std::marker::PhantomData<fn() -> C>);

impl<C> AdminRouter<C>
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    /// The endpoint of `fleet`'s migration between the databases at `source` (which holds the
    /// control table) and `destination`.
    pub fn builder(
        source: impl Into<String>,
        destination: impl Into<String>,
        fleet: Fleet,
    ) -> AdminRouterBuilder<C> {
        AdminRouterBuilder {
            source: source.into(),
            destination: destination.into(),
            fleet,
            tables: Vec::new(),
            token: None,
            verify_max_age: None,
            key_counters: true,
            _conn: std::marker::PhantomData,
        }
    }
}

impl<C> AdminRouterBuilder<C>
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    /// The migration's tables (for the gates and `/verify`).
    pub fn tables<I, T>(mut self, tables: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<TableSpec>,
    {
        self.tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// The token every request must present (`Authorization: Bearer <token>`); required.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How old the last clean verify may be at a step forward (the gates' default otherwise).
    pub fn verify_max_age(mut self, age: Duration) -> Self {
        self.verify_max_age = Some(age);
        self
    }

    /// Whether the step to `DstFirst` checks the generated-key counters (default `true`).
    pub fn key_counters(mut self, check: bool) -> Self {
        self.key_counters = check;
        self
    }

    /// The router. [`Error::Config`] without a token (or with an empty one), or without a
    /// table.
    pub fn build(self) -> Result<Router> {
        let token = match self.token {
            Some(t) if !t.trim().is_empty() => t,
            _ => {
                return Err(Error::Config(
                    "the admin router needs an authentication token (AdminRouterBuilder::token): it steps the migration of every instance".into(),
                ))
            }
        };
        if self.tables.is_empty() {
            return Err(Error::Config(
                "the admin router needs the migration's tables (AdminRouterBuilder::tables), for the gates and /verify".into(),
            ));
        }
        let state = Arc::new(Admin::<C> {
            source: self.source,
            destination: self.destination,
            fleet: self.fleet,
            tables: self.tables,
            verify_max_age: self.verify_max_age,
            key_counters: self.key_counters,
            _conn: std::marker::PhantomData,
        });
        let token = Arc::new(token.into_bytes());
        Ok(Router::new()
            .route("/status", get(status::<C>))
            .route("/advance", post(advance::<C>))
            .route("/retreat", post(retreat::<C>))
            .route("/verify", post(verify::<C>))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                let token = token.clone();
                async move {
                    if authorized(&req, &token) {
                        next.run(req).await
                    } else {
                        tracing::warn!(target: "diesel_rw::control", path = %req.uri().path(), "admin request refused: no or wrong token");
                        (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, "Bearer")],
                            Json(json!({"error": "unauthorized", "message": "give the admin token: Authorization: Bearer <token>"})),
                        )
                            .into_response()
                    }
                }
            }))
            .with_state(state))
    }
}

fn authorized(req: &Request, token: &[u8]) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    given.ct_eq(token).into()
}

struct Admin<C> {
    source: String,
    destination: String,
    fleet: Fleet,
    tables: Vec<TableSpec>,
    verify_max_age: Option<Duration>,
    key_counters: bool,
    _conn: std::marker::PhantomData<fn() -> C>,
}

type Shared<C> = State<Arc<Admin<C>>>;

/// An error as an answer.
fn failure(e: Error) -> Response {
    let (status, kind) = match &e {
        Error::GateRefused { .. } => (StatusCode::CONFLICT, "gate_refused"),
        Error::InstancesLag { .. } => (StatusCode::CONFLICT, "instances_lag"),
        Error::StepConflict { .. } => (StatusCode::CONFLICT, "conflict"),
        Error::InvalidTransition { .. } => (StatusCode::CONFLICT, "invalid_transition"),
        Error::UnknownMigration { .. } => (StatusCode::NOT_FOUND, "unknown_migration"),
        Error::Config(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "error"),
    };
    (
        status,
        Json(json!({"error": kind, "message": crate::url::redact(&e.to_string())})),
    )
        .into_response()
}

/// Runs `f` on a blocking thread with a connection to the source.
async fn blocking<C, F>(admin: Arc<Admin<C>>, f: F) -> Response
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
    F: FnOnce(&Admin<C>, &mut C) -> Result<Value> + Send + 'static,
{
    let out = tokio::task::spawn_blocking(move || {
        let mut src = C::establish(&admin.source).map_err(|e| {
            Error::Config(format!(
                "could not connect to the source: {}",
                crate::url::redact(&e.to_string())
            ))
        })?;
        if C::DIALECT == crate::migrate::Dialect::Sqlite {
            // The instances write their heartbeats to the same file.
            src.batch_execute("PRAGMA busy_timeout = 30000")?;
        }
        f(&admin, &mut src)
    })
    .await;
    match out {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => failure(e),
        Err(e) => failure(Error::InvalidState(format!("the admin task failed: {e}"))),
    }
}

async fn status<C>(State(admin): Shared<C>) -> Response
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    blocking(admin, |a, src| {
        let st = a.fleet.status(src)?;
        let p = &st.phase;
        Ok(json!({
            "migration": p.migration, "phase": p.pattern.name(), "epoch": p.epoch,
            "changed_at": p.changed_at, "changed_by": p.changed_by, "reason": p.reason, "forced": p.forced,
            "instances": st.instances.iter().map(|i| json!({"id": i.record.instance_id, "host": i.record.host,
                "pid": i.record.pid, "phase": i.record.pattern.name(), "epoch": i.record.epoch,
                "heartbeat_age_ms": i.record.heartbeat_age.as_millis() as u64,
                "live": i.live, "acknowledged": i.acknowledged})).collect::<Vec<_>>(),
        }))
    })
    .await
}

/// The body of `/advance` and `/retreat`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StepBody {
    force: bool,
    reason: Option<String>,
    wait_secs: Option<u64>,
    by: Option<String>,
}

fn options(body: &StepBody) -> Result<StepOptions> {
    let mut o = StepOptions::new().by(body.by.clone().unwrap_or_else(|| "admin endpoint".into()));
    if let Some(secs) = body.wait_secs {
        o = o.wait(Duration::from_secs(secs.min(600)));
    }
    if body.force {
        o = o.force(body.reason.clone().ok_or_else(|| {
            Error::Config("a forced step needs a reason (it is recorded)".into())
        })?);
    }
    Ok(o)
}

fn stepped(s: &super::Stepped) -> Value {
    json!({"from": s.from.name(), "to": s.to.name(), "epoch": s.epoch,
           "forced_past": s.overridden.iter().map(|r| r.to_string()).collect::<Vec<_>>()})
}

async fn advance<C>(State(admin): Shared<C>, body: Option<Json<StepBody>>) -> Response
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    let body = body.map(|Json(b)| b).unwrap_or_default();
    blocking(admin, move |a, src| {
        let options = options(&body)?;
        let mut gates = CutoverGates::new(
            C::establish(&a.source)
                .map_err(|e| Error::Config(crate::url::redact(&e.to_string())))?,
            C::establish(&a.destination)
                .map_err(|e| Error::Config(crate::url::redact(&e.to_string())))?,
            a.tables.clone(),
        )
        .key_counters(a.key_counters);
        if let Some(age) = a.verify_max_age {
            gates = gates.verify_max_age(age);
        }
        Ok(stepped(&a.fleet.step(
            src,
            Direction::Advance,
            &mut gates,
            &options,
        )?))
    })
    .await
}

async fn retreat<C>(State(admin): Shared<C>, body: Option<Json<StepBody>>) -> Response
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    let body = body.map(|Json(b)| b).unwrap_or_default();
    blocking(admin, move |a, src| {
        if body.force {
            return Err(Error::Config("a step back needs no force".into()));
        }
        Ok(stepped(&a.fleet.step(
            src,
            Direction::Retreat,
            &mut NoGates,
            &options(&body)?,
        )?))
    })
    .await
}

/// The body of `/verify`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct VerifyBody {
    incremental: bool,
}

async fn verify<C>(State(admin): Shared<C>, body: Option<Json<VerifyBody>>) -> Response
where
    C: MigrateConnection + LoadConnection,
    C::Backend: KeyCounterBackend,
{
    let body = body.map(|Json(b)| b).unwrap_or_default();
    blocking(admin, move |a, src| {
        let mut dst = C::establish(&a.destination)
            .map_err(|e| Error::Config(crate::url::redact(&e.to_string())))?;
        let phase = a.fleet.phase(src)?.pattern;
        let side = match phase {
            Pattern::DstFirst | Pattern::DstOnly => Side::Destination,
            Pattern::SrcOnly | Pattern::SrcFirst => Side::Source,
        };
        let mut reports = Vec::new();
        let mut clean = true;
        for spec in &a.tables {
            let v = Verify::new(spec.clone())
                .authoritative(side)
                .record_to(Side::Source)
                .pattern(phase);
            let report = if body.incremental {
                let mode = if spec.changed_at_column().is_some() {
                    VerifyMode::SinceLastClean
                } else {
                    VerifyMode::Full
                };
                v.mode(mode).run_journal(src, &mut dst, None)?.report
            } else {
                v.run(src, &mut dst)?
            };
            clean &= report.is_clean();
            let keys = |d: &[crate::migrate::verify::RowDiff]| {
                d.iter()
                    .map(|d| d.key.values().to_vec())
                    .collect::<Vec<_>>()
            };
            reports.push(json!({"table": report.table, "authoritative": side.name(),
                "rows_compared": report.rows_compared, "clean": report.is_clean(),
                "missing_on_destination": keys(&report.missing_on_destination),
                "missing_on_source": keys(&report.missing_on_source),
                "different": keys(&report.different)}));
        }
        Ok(json!({"verify": reports, "clean": clean}))
    })
    .await
}
