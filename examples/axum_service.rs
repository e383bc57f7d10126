//! A small HTTP service (axum) on diesel-rw's async pool: its handlers call repository methods
//! annotated `#[master]` and `#[read_only]`, and every response says which node served it.
//!
//! On the PostgreSQL pair of the test bed: `scripts/db up`, then
//! `cargo run --example axum_service --features async,postgres,admin`. URLs come from
//! DIESEL_RW_PG_PRIMARY_URL / DIESEL_RW_PG_REPLICA_URL (defaults: the test bed); it listens on
//! 127.0.0.1, on DIESEL_RW_AXUM_PORT (default 0: any free port) and prints the address.
//!
//! ```text
//! POST /notes        {"body": "..."}  201 {"note": {"id", "body"}, "served_by": ...} + write token
//! GET  /notes/{id}                    200 {"note": ..., "served_by": ...}, or 404
//! GET  /notes                         200 {"notes": [...], "served_by": ...} (newest 50)
//! ```
//!
//! With DIESEL_RW_ADMIN_TOKEN set, the service also mounts the admin endpoint of the online
//! migration `axum_notes_move` (table `axum_notes`, destination DIESEL_RW_PG_DEST_URL) at
//! `/admin/migration` ([`with_admin`]): `GET /admin/migration/status`, `POST .../advance`,
//! `.../retreat`, `.../verify`, each with `Authorization: Bearer <token>` (401 without it).
//!
//! `served_by` is `{"node": "primary" | "replica[0]", "reason": ..., "server_port": ...}`: the
//! route diesel-rw took (`conn.last_route()`) and the port of the server that ran the statement,
//! which that server reports itself (`inet_server_port()`, selected with the rows).
//!
//! # Read-your-writes across requests
//!
//! Each request is one unit of work: the [`Notes`] extractor takes one `AsyncRwConnection` from
//! the pool. Reads go to the replica, which replays the primary's writes a little later, so a
//! client that has just created a note and asks for it at once could miss it there. The pool is
//! `Consistency::Causal`: after the write, the create handler asks its connection for a write
//! token (`conn.write_token().await`: the primary's WAL position after the write) and returns it
//! as the `x-write-token` header and the `write_token` cookie. A request that hands it back gets
//! its connection from `pool.get_after(&token)`: its reads go to the replica only once the
//! replica has replayed that position, and to the primary until then (read-only there: its
//! `#[read_only]` calls stay read-only). Requests without a token read from the replica.
//!
//! ```text
//! $ curl -si -XPOST localhost:PORT/notes -H 'content-type: application/json' -d '{"body":"hi"}'
//! HTTP/1.1 201 Created
//! x-write-token: 0/1A2B3C40
//! set-cookie: write_token=0/1A2B3C40; Max-Age=60; Path=/; HttpOnly; SameSite=Lax
//! {"note":{"id":1,"body":"hi"},"served_by":{"node":"primary","reason":"explicit","server_port":55432}}
//! $ curl -s localhost:PORT/notes/1 -H 'x-write-token: 0/1A2B3C40'  # replayed yet? else primary
//! {"note":{"id":1,"body":"hi"},"served_by":{"node":"replica[0]","reason":"explicit","server_port":55433}}
//! $ curl -s localhost:PORT/notes                                  # anyone else: the replica
//! {"notes":[{"id":1,"body":"hi"}],"served_by":{"node":"replica[0]","reason":"explicit","server_port":55433}}
//! ```

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use diesel::dsl::sql;
use diesel::prelude::{ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable};
use diesel::sql_types::Integer;
use diesel::SelectableHelper;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_rw::{
    master, read_only, AsyncRwConnection, AsyncRwPool, Consistency, Position, WriteToken,
};
use serde::{Deserialize, Serialize};

diesel::table! {
    axum_notes (id) {
        id -> Integer,
        body -> Text,
    }
}

/// The pool the service runs on.
pub type Pool = AsyncRwPool<AsyncPgConnection>;

/// The write token's header.
pub const WRITE_TOKEN_HEADER: &str = "x-write-token";

/// The write token's cookie.
pub const WRITE_TOKEN_COOKIE: &str = "write_token";

/// How long the client keeps the cookie: well past any replica lag worth reading through.
const WRITE_TOKEN_MAX_AGE_SECS: u64 = 60;

/// The server's own port, evaluated by the server that runs the statement.
const SERVER_PORT: &str = "inet_server_port()";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable)]
#[diesel(table_name = axum_notes)]
pub struct Note {
    pub id: i32,
    pub body: String,
}

/// Which node served a request's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedBy {
    /// The node diesel-rw routed it to: `primary` or `replica[i]`.
    pub node: String,
    /// Why (the step of the routing order): `explicit`, `sticky`, ...
    pub reason: String,
    /// The port of the server that ran it, as that server reports it.
    pub server_port: i32,
}

impl ServedBy {
    fn new(conn: &AsyncRwConnection<AsyncPgConnection>, server_port: i32) -> ServedBy {
        let route = conn.last_route();
        ServedBy {
            node: route.map_or_else(|| "none".into(), |r| r.node.to_string()),
            reason: route.map_or_else(|| "none".into(), |r| r.reason.to_string()),
            server_port,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNote {
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteResponse {
    pub note: Note,
    pub served_by: ServedBy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotesResponse {
    pub notes: Vec<Note>,
    pub served_by: ServedBy,
}

// -------------------------------------------------------------------------------------------
// The repository: one request's unit of work, with annotated async methods.

/// One request's unit of work on the pool: one `AsyncRwConnection`, taken by the handlers as an
/// extractor. Its methods route at compile time: `#[master]` on the primary, `#[read_only]` on
/// the replica (or on the primary, read-only, until the replica has replayed the write of the
/// token the request carries).
pub struct Notes {
    conn: AsyncRwConnection<AsyncPgConnection>,
}

impl Notes {
    /// A unit of work that reads `after`'s write back, if given.
    pub async fn begin(pool: &Pool, after: Option<&WriteToken>) -> Result<Notes, diesel_rw::Error> {
        let conn = match after {
            Some(token) => pool.get_after(token).await?,
            None => pool.get().await?,
        };
        Ok(Notes { conn })
    }

    /// The token of this unit of work's writes, for the next requests to read them back.
    pub async fn write_token(&mut self) -> Option<WriteToken> {
        self.conn.write_token().await
    }

    #[master(pool = &mut self.conn)]
    pub async fn create_note(&mut self, body: &str) -> diesel::QueryResult<NoteResponse> {
        let (note, port) = diesel::insert_into(axum_notes::table)
            .values(axum_notes::body.eq(body))
            .returning((Note::as_returning(), sql::<Integer>(SERVER_PORT)))
            .get_result::<(Note, i32)>(conn)
            .await?;
        Ok(NoteResponse {
            note,
            served_by: ServedBy::new(conn, port),
        })
    }

    #[read_only(pool = &mut self.conn)]
    pub async fn get_note(&mut self, id: i32) -> diesel::QueryResult<Option<NoteResponse>> {
        let found = axum_notes::table
            .find(id)
            .select((Note::as_select(), sql::<Integer>(SERVER_PORT)))
            .first::<(Note, i32)>(conn)
            .await
            .optional()?;
        Ok(found.map(|(note, port)| NoteResponse {
            note,
            served_by: ServedBy::new(conn, port),
        }))
    }

    #[read_only(pool = &mut self.conn)]
    pub async fn list_notes(&mut self, limit: i64) -> diesel::QueryResult<NotesResponse> {
        let rows = axum_notes::table
            .select((Note::as_select(), sql::<Integer>(SERVER_PORT)))
            .order(axum_notes::id.desc())
            .limit(limit)
            .load::<(Note, i32)>(conn)
            .await?;
        let port = match &rows[..] {
            [(_, port), ..] => *port,
            // No rows to carry it: ask the same route.
            [] => {
                diesel::select(sql::<Integer>(SERVER_PORT))
                    .get_result(conn)
                    .await?
            }
        };
        Ok(NotesResponse {
            notes: rows.into_iter().map(|(note, _)| note).collect(),
            served_by: ServedBy::new(conn, port),
        })
    }
}

/// The extractor: a unit of work per request, after the write token it carries.
impl FromRequestParts<Pool> for Notes {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, pool: &Pool) -> Result<Notes, ApiError> {
        let token = request_token(&parts.headers)?;
        Ok(Notes::begin(pool, token.as_ref()).await?)
    }
}

// -------------------------------------------------------------------------------------------
// The write token on the wire: the primary's WAL position as PostgreSQL prints it (`0/1A2B3C40`).

/// The token a request carries: its `x-write-token` header, else its `write_token` cookie.
pub fn request_token(headers: &HeaderMap) -> Result<Option<WriteToken>, ApiError> {
    let header = headers
        .get(WRITE_TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let cookie = || {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == WRITE_TOKEN_COOKIE)
            .map(|(_, value)| value.to_owned())
    };
    let Some(text) = header.or_else(cookie) else {
        return Ok(None);
    };
    match Position::parse_lsn(&text) {
        Some(position) => Ok(Some(WriteToken::new(position))),
        None => Err(ApiError::BadRequest(format!(
            "`{WRITE_TOKEN_HEADER}` is a WAL position such as `0/1A2B3C40`, not `{text}`"
        ))),
    }
}

/// Puts `token` on a response: as a header for API clients, as a cookie for browsers.
fn set_token(headers: &mut HeaderMap, token: &WriteToken) {
    let text = token.position().to_string();
    headers.insert(
        WRITE_TOKEN_HEADER,
        HeaderValue::from_str(&text).expect("a WAL position is ASCII"),
    );
    let cookie = format!(
        "{WRITE_TOKEN_COOKIE}={text}; Max-Age={WRITE_TOKEN_MAX_AGE_SECS}; Path=/; HttpOnly; \
         SameSite=Lax"
    );
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("ASCII"),
    );
}

// -------------------------------------------------------------------------------------------
// The HTTP side.

/// The service's routes on `pool`.
pub fn app(pool: Pool) -> Router {
    Router::new()
        .route("/notes", get(list_notes).post(create_note))
        .route("/notes/{id}", get(get_note))
        .with_state(pool)
}

/// `app` with the admin endpoint of the migration `migration` (table `axum_notes`, from the
/// primary at `source` to `destination`) mounted at `/admin/migration`, guarded by `token`.
pub fn with_admin(
    app: Router,
    source: &str,
    destination: &str,
    migration: &str,
    token: &str,
) -> Result<Router, diesel_rw::Error> {
    use diesel_rw::migrate::control::{admin::AdminRouter, Fleet};
    let admin =
        AdminRouter::<diesel::PgConnection>::builder(source, destination, Fleet::new(migration))
            .tables(["axum_notes"])
            .token(token)
            .build()?;
    Ok(app.nest("/admin/migration", admin))
}

async fn create_note(mut notes: Notes, Json(new): Json<NewNote>) -> Result<Response, ApiError> {
    let created = notes.create_note(&new.body).await?;
    let token = notes.write_token().await;
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    if let Some(token) = token {
        set_token(response.headers_mut(), &token);
    }
    Ok(response)
}

async fn get_note(mut notes: Notes, Path(id): Path<i32>) -> Result<Json<NoteResponse>, ApiError> {
    match notes.get_note(id).await? {
        Some(found) => Ok(Json(found)),
        None => Err(ApiError::NotFound(format!("note {id} not found"))),
    }
}

async fn list_notes(mut notes: Notes) -> Result<Json<NotesResponse>, ApiError> {
    Ok(Json(notes.list_notes(50).await?))
}

/// A handler's error, as an HTTP status and a JSON message.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Database(String),
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::Database(e.to_string())
    }
}

impl From<diesel_rw::Error> for ApiError {
    fn from(e: diesel_rw::Error) -> Self {
        ApiError::Database(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Database(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

// -------------------------------------------------------------------------------------------
// Setting up.

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The service's pool over a primary and its replica: causal consistency, so that write tokens
/// carry read-your-writes across requests.
pub fn pool(primary: &str, replica: &str) -> Result<Pool, diesel_rw::Error> {
    Pool::builder()
        .primary(primary)
        .replica(replica)
        .consistency(Consistency::Causal)
        .build()
}

/// The pool over the PostgreSQL pair named by the environment (defaults: the test bed).
pub fn pool_from_env() -> Result<Pool, diesel_rw::Error> {
    let primary = env_or(
        "DIESEL_RW_PG_PRIMARY_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
    );
    let replica = env_or(
        "DIESEL_RW_PG_REPLICA_URL",
        "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55433/diesel_rw",
    );
    pool(&primary, &replica)
}

/// Creates the notes table on the primary (the replica replays it).
pub async fn create_schema(pool: &Pool) -> Result<(), Box<dyn std::error::Error>> {
    pool.primary()
        .await?
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS axum_notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL)",
        )
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = pool_from_env()?;
    create_schema(&pool).await?;
    let port: u16 = env_or("DIESEL_RW_AXUM_PORT", "0").parse()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut service = app(pool);
    if let Ok(token) = std::env::var("DIESEL_RW_ADMIN_TOKEN") {
        let source = env_or(
            "DIESEL_RW_PG_PRIMARY_URL",
            "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55432/diesel_rw",
        );
        let destination = env_or(
            "DIESEL_RW_PG_DEST_URL",
            "postgres://diesel_rw:diesel_rw_pw@127.0.0.1:55434/diesel_rw",
        );
        service = with_admin(service, &source, &destination, "axum_notes_move", &token)?;
        println!("admin endpoint of migration axum_notes_move at /admin/migration");
    }
    axum::serve(listener, service).await?;
    Ok(())
}
