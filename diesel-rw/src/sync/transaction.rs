//! [`RwTransactionManager`]: transactions pinned to the node that began them.

use diesel::connection::{LoadConnection, TransactionManager, TransactionManagerStatus};
use diesel::r2d2::R2D2Connection;
use diesel::result::QueryResult;

use super::connection::RwConnection;
use crate::backend::RwBackend;
use crate::classify::StatementKind;
use crate::commit_outcome::{Next, Outcome, Resolution, TxRef};
use crate::error::Error;
use crate::route::{CommitFailed, Node};

/// The transaction manager of [`RwConnection`].
///
/// The outermost `BEGIN` picks the node: the primary, or, on a read-only connection, one replica
/// (a read-only transaction). Every statement, savepoint, commit and rollback then goes to that
/// node's connection, whose own transaction manager does the work, until the outermost
/// transaction ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct RwTransactionManager;

impl<C> TransactionManager<RwConnection<C>> for RwTransactionManager
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    type TransactionStateData = TransactionManagerStatus;

    fn begin_transaction(conn: &mut RwConnection<C>) -> QueryResult<()> {
        let Some(node) = conn.state.transaction else {
            let node = conn.route_transaction()?;
            // A BEGIN on a broken connection applies nothing: on the primary, that is
            // `PrimaryUnavailable`; the node's connections are retired either way.
            let begun = C::TransactionManager::begin_transaction(conn.node_conn(node));
            return match begun {
                Ok(()) => {
                    conn.state.transaction = Some(node);
                    conn.state.transaction_wrote = false;
                    Ok(())
                }
                Err(e) => Err(conn.statement_failed(node, StatementKind::Read, e).error),
            };
        };
        C::TransactionManager::begin_transaction(conn.node_conn(node))
    }

    fn rollback_transaction(conn: &mut RwConnection<C>) -> QueryResult<()> {
        let node = open_node(conn)?;
        let result = C::TransactionManager::rollback_transaction(conn.node_conn(node));
        after_step(conn, node, false);
        result
    }

    fn commit_transaction(conn: &mut RwConnection<C>) -> QueryResult<()> {
        let node = open_node(conn)?;
        let outermost = matches!(
            C::TransactionManager::transaction_manager_status_mut(conn.node_conn(node)).transaction_depth(),
            Ok(Some(d)) if d.get() == 1
        );
        let queries = <C::Backend as RwBackend>::COMMIT_STATUS;
        let captured = match queries {
            Some(q) if outermost && conn.state.transaction_wrote => {
                match <C::Backend as RwBackend>::query_text(conn.node_conn(node), q.capture) {
                    Ok(answer) => answer.as_deref().and_then(TxRef::parse),
                    Err(e) => match conn.cluster.core.capture_failed(node, e) {
                        Ok(not_committed) => {
                            conn.abandon_transaction(node);
                            return Err(not_committed);
                        }
                        Err(error) => {
                            // The server refused it (a statement timeout, say): on
                            // PostgreSQL that aborts the transaction, whose COMMIT would then
                            // roll back and report success. Roll back, report the error.
                            let _ =
                                C::TransactionManager::rollback_transaction(conn.node_conn(node));
                            after_step(conn, node, false);
                            return Err(error);
                        }
                    },
                }
            }
            _ => None,
        };
        let result = C::TransactionManager::commit_transaction(conn.node_conn(node));
        after_step(conn, node, result.is_ok());
        let Err(error) = result else {
            return Ok(());
        };
        let budget = conn.cluster.primary.timeout();
        let core = &conn.cluster.core;
        match core.commit_failed(node, outermost, error, queries, captured, budget) {
            CommitFailed::Final(error) => {
                if outermost {
                    conn.abandon_transaction(node);
                }
                Err(error)
            }
            CommitFailed::Resolve(mut resolution, source) => {
                conn.abandon_transaction(node);
                let outcome = resolve(conn, &mut resolution);
                let committed = outcome == Outcome::Committed;
                let result = conn
                    .cluster
                    .core
                    .commit_resolved(node, &resolution, outcome, source);
                if committed && node == Node::Primary && conn.state.sticky.has_written() {
                    conn.state
                        .sticky
                        .record_write(conn.cluster.core.consistency);
                }
                result
            }
        }
    }

    fn transaction_manager_status_mut(conn: &mut RwConnection<C>) -> &mut TransactionManagerStatus {
        match conn.state.transaction {
            Some(node) => {
                C::TransactionManager::transaction_manager_status_mut(conn.node_conn(node))
            }
            None => conn.idle_status(),
        }
    }
}

/// Drives a lost `COMMIT`'s [`Resolution`] on fresh connections to the primary.
fn resolve<C>(conn: &RwConnection<C>, resolution: &mut Resolution) -> Outcome
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    let mut next = resolution.start();
    loop {
        next = match next {
            Next::Done(outcome) => return outcome,
            Next::Sleep(pause) => {
                std::thread::sleep(pause);
                resolution.resume()
            }
            Next::Query(sql) => {
                let answer = conn
                    .cluster
                    .primary
                    .checkout()
                    .map_err(|e| e.to_string())
                    .and_then(|mut held| {
                        <C::Backend as RwBackend>::query_text(&mut *held, &sql)
                            .map_err(|e| e.to_string())
                    });
                resolution.answer(answer)
            }
        };
    }
}

fn open_node<C>(conn: &RwConnection<C>) -> QueryResult<Node>
where
    C: R2D2Connection + 'static,
{
    conn.state.transaction.ok_or_else(|| {
        Error::InvalidState("commit or rollback without an open transaction".into()).into()
    })
}

/// Unpins the connection once its outermost transaction has ended (the inner manager reports no
/// transaction and no error). A commit on the primary after writes restarts the sticky window,
/// which counts from the moment the writes became visible.
fn after_step<C>(conn: &mut RwConnection<C>, node: Node, committed: bool)
where
    C: R2D2Connection + LoadConnection + 'static,
    C::Backend: RwBackend,
{
    let status = C::TransactionManager::transaction_manager_status_mut(conn.node_conn(node));
    let ended = matches!(status.transaction_depth(), Ok(None));
    if ended {
        conn.state.transaction = None;
        if committed && node == Node::Primary && conn.state.sticky.has_written() {
            conn.state
                .sticky
                .record_write(conn.cluster.core.consistency);
        }
    }
}
