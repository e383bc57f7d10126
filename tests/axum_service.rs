//! examples/axum_service.rs, started on 127.0.0.1 against the PostgreSQL pair (primary 55432,
//! hot standby 55433) and driven over HTTP: a created note reads back at once through the
//! service (read-your-writes: with the write token, on the primary while the standby lags, on
//! the standby once it has replayed the write), and the list is served by the replica. Which
//! node served is what the response says, from the server's own `inet_server_port()`.
#![cfg(all(feature = "async", feature = "postgres"))]

#[macro_use]
mod common;

#[allow(dead_code)]
#[path = "../examples/axum_service.rs"]
mod axum_service;

use axum_service::{NoteResponse, NotesResponse, ServedBy, WRITE_TOKEN_COOKIE, WRITE_TOKEN_HEADER};
use common::pg;
use reqwest::StatusCode;

/// The service on 127.0.0.1 (any free port), stopped on drop.
struct Service {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    async fn start(pool: axum_service::Pool) -> Service {
        Service::serve(axum_service::app(pool)).await
    }

    async fn serve(app: axum::Router) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Service { base, task }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Delays the standby's replay while alive (under the bed lock: other tests' lag changes wait).
struct Lag(#[allow(dead_code)] common::BedLock);

impl Lag {
    fn set(ms: u64) -> Lag {
        let lock = common::bed_lock();
        pg::set_lag(ms);
        Lag(lock)
    }
}

impl Drop for Lag {
    fn drop(&mut self) {
        pg::set_lag(0);
    }
}

#[track_caller]
fn assert_served(served: &ServedBy, port: &str, node: &str, reason: &str) {
    assert_eq!(
        served.server_port.to_string(),
        port,
        "the server: {served:?}"
    );
    assert_eq!(served.node, node, "the route: {served:?}");
    assert_eq!(served.reason, reason, "the route's reason: {served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_service_reads_your_writes_and_lists_on_replica() {
    let Some(bed) = pg::bed("axum_service_reads_your_writes_and_lists_on_replica") else {
        return;
    };
    let pool = axum_service::pool(&bed.primary, &bed.replica).unwrap();
    axum_service::create_schema(&pool).await.unwrap();
    pg::replicate(&bed);
    let service = Service::start(pool.clone()).await;
    let client = reqwest::Client::new();
    let body = format!("{}-{}", bed.tag, std::process::id());

    // The standby replays 2 s late: a read there right after the write would miss it.
    let lag = Lag::set(2_000);

    let response = client
        .post(service.url("/notes"))
        .json(&serde_json::json!({ "body": body }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response
        .headers()
        .get(WRITE_TOKEN_HEADER)
        .expect("the create response carries the write token")
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("and sets it as a cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with(&format!("{WRITE_TOKEN_COOKIE}={token};")),
        "{cookie}"
    );
    let created: NoteResponse = response.json().await.unwrap();
    assert_eq!(created.note.body, body);
    // The INSERT ... RETURNING ran on the primary, which reported its own port.
    assert_served(&created.served_by, &bed.primary_id, "primary", "explicit");
    let note_url = service.url(&format!("/notes/{}", created.note.id));

    // Read-your-writes: with the token (header or cookie), the read stays on the primary
    // (`sticky`: the standby has not replayed the token's position) and returns the created row.
    let response = client
        .get(&note_url)
        .header(WRITE_TOKEN_HEADER, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read: NoteResponse = response.json().await.unwrap();
    assert_eq!(read.note, created.note);
    assert_served(&read.served_by, &bed.primary_id, "primary", "sticky");

    let response = client
        .get(&note_url)
        .header(
            reqwest::header::COOKIE,
            format!("{WRITE_TOKEN_COOKIE}={token}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read: NoteResponse = response.json().await.unwrap();
    assert_eq!(read.note, created.note);
    assert_served(&read.served_by, &bed.primary_id, "primary", "sticky");

    // Without it, the read goes to the lagging standby, which has not the row yet: what the
    // token is for.
    let response = client.get(&note_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The list is served by the replica; once it has replayed the write, the note is there.
    drop(lag);
    pg::replicate(&bed);
    let response = client.get(service.url("/notes")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: NotesResponse = response.json().await.unwrap();
    assert_served(&list.served_by, &bed.replica_id, "replica[0]", "explicit");
    assert!(
        list.notes.contains(&created.note),
        "the replayed note is listed: {list:?}"
    );

    // And a read without the token, after replication, is served by the replica too.
    let response = client.get(&note_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read: NoteResponse = response.json().await.unwrap();
    assert_eq!(read.note, created.note);
    assert_served(&read.served_by, &bed.replica_id, "replica[0]", "explicit");

    // With the token, once the standby has replayed the write, the read goes there.
    let response = client
        .get(&note_url)
        .header(WRITE_TOKEN_HEADER, &token)
        .send()
        .await
        .unwrap();
    let read: NoteResponse = response.json().await.unwrap();
    assert_eq!(read.note, created.note);
    assert_served(&read.served_by, &bed.replica_id, "replica[0]", "explicit");

    // A token that is not a WAL position is a clear 400.
    let response = client
        .get(&note_url)
        .header(WRITE_TOKEN_HEADER, "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("WAL position"),
        "{error}"
    );

    // No connection was left checked out.
    assert!(pool.status().all_idle());
}

/// The admin endpoint mounted by the example: requests without the token, or with another one,
/// get 401 and change nothing; with it, status, a step refused by a gate (409), a verify
/// (recorded) and a forced step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_answers_only_with_the_token() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    use diesel_rw::double_write::Pattern;
    use diesel_rw::migrate::control::Fleet;

    let Some(bed) = pg::bed("the_admin_endpoint_answers_only_with_the_token") else {
        return;
    };
    let dest = pg::dest_url();
    let migration = "axum_admin_move";
    // A fresh migration, and the table on both sides.
    let mut src = diesel::PgConnection::establish(&bed.primary).unwrap();
    let fleet = Fleet::new(migration);
    fleet.init(&mut src, Pattern::SrcOnly).unwrap();
    src.batch_execute(&format!(
        "DELETE FROM diesel_rw_control WHERE migration = '{migration}'; \
         DELETE FROM diesel_rw_control_log WHERE migration = '{migration}'"
    ))
    .unwrap();
    fleet.init(&mut src, Pattern::SrcOnly).unwrap();
    let pool = axum_service::pool(&bed.primary, &bed.replica).unwrap();
    axum_service::create_schema(&pool).await.unwrap();
    diesel::PgConnection::establish(&dest)
        .unwrap()
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS axum_notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL)",
        )
        .unwrap();
    // No token: the router is not built.
    let e = diesel_rw::migrate::control::admin::AdminRouter::<diesel::PgConnection>::builder(
        bed.primary.as_str(),
        dest.as_str(),
        Fleet::new(migration),
    )
    .tables(["axum_notes"])
    .build()
    .unwrap_err();
    assert!(e.to_string().contains("authentication token"), "{e}");

    let token = "s3cret-admin-token-for-the-test";
    let app = axum_service::with_admin(
        axum_service::app(pool),
        &bed.primary,
        &dest,
        migration,
        token,
    )
    .unwrap();
    let service = Service::serve(app).await;
    let client = reqwest::Client::new();
    let url = |p: &str| service.url(&format!("/admin/migration{p}"));
    // Without the token, and with a wrong one (also one that shares its prefix): 401, and a
    // step asked that way changes nothing.
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-admin-token-for-the-tes"),
        Some(token),
    ] {
        let mut req = client.post(url("/advance"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let r = client.get(url("/status")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fleet.phase(&mut src).unwrap().epoch, 1, "nothing changed");
    let bearer = format!("Bearer {token}");
    // With it: the status.
    let r = client
        .get(url("/status"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let st: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (st["phase"].as_str(), st["epoch"].as_i64()),
        (Some("src_only"), Some(1)),
        "{st}"
    );
    // A step: to src_first (the destination has the table).
    let r = client
        .post(url("/advance"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["to"], "src_first", "{j}");
    // The next is refused by a gate (no backfill).
    let r = client
        .post(url("/advance"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["error"], "gate_refused", "{j}");
    assert!(j["message"].as_str().unwrap().contains("backfill"), "{j}");
    // A verify, recorded; then a forced step with its reason, recorded.
    let r = client
        .post(url("/verify"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let j: serde_json::Value = r.json().await.unwrap();
    assert!(j["verify"][0]["rows_compared"].is_u64(), "{j}");
    let r = client
        .post(url("/advance"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"force": true, "reason": "admin test", "by": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let phase = fleet.phase(&mut src).unwrap();
    assert_eq!(phase.pattern, Pattern::DstFirst);
    assert!(
        phase.forced && phase.reason.contains("admin test") && phase.changed_by == "test",
        "{phase:?}"
    );
    // And back.
    let r = client
        .post(url("/retreat"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fleet.phase(&mut src).unwrap().pattern, Pattern::SrcFirst);
}
