//! [`AsyncRwTransactionManager`]: transactions pinned to the node that began them.

use diesel::connection::TransactionManagerStatus;
use diesel::result::QueryResult;
use diesel_async::{AsyncConnection, TransactionManager};

use super::connection::within;
use super::connection::AsyncRwConnection;
use super::node::AsyncPoolable;
use super::pool::Cluster;
use crate::backend::RwBackend;
use crate::classify::StatementKind;
use crate::commit_outcome::{Next, Outcome, Resolution, TxRef};
use crate::error::Error;
use crate::route::{CommitFailed, Node};

/// The transaction manager of [`AsyncRwConnection`], the async twin of
/// [`RwTransactionManager`](crate::RwTransactionManager).
///
/// The outermost `BEGIN` picks the node: the primary, or, on a read-only connection, one replica
/// (a read-only transaction). Every statement, savepoint, commit and rollback then goes to that
/// node's connection, whose own transaction manager does the work, until the outermost
/// transaction ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct AsyncRwTransactionManager;

/// The inner connection's transaction manager.
type Inner<C> = <C as AsyncConnection>::TransactionManager;

impl<C: AsyncPoolable> TransactionManager<AsyncRwConnection<C>> for AsyncRwTransactionManager {
    type TransactionStateData = TransactionManagerStatus;

    async fn begin_transaction(conn: &mut AsyncRwConnection<C>) -> QueryResult<()> {
        let Some(node) = conn.state.transaction else {
            let node = conn.route_transaction().await?;
            // A BEGIN on a broken connection applies nothing: on the primary, that is
            // `PrimaryUnavailable`; the node's connections are retired either way.
            // Within the read deadline: a BEGIN (or SAVEPOINT, or ROLLBACK) applies nothing,
            // so past it the connection is given up, as after a read.
            let cluster = conn.cluster.clone();
            let begin = Inner::<C>::begin_transaction(conn.node_conn(node));
            let begun = within(&cluster.core, node, StatementKind::Read, begin).await;
            return match begun {
                Ok(()) => {
                    conn.state.transaction = Some(node);
                    conn.state.transaction_wrote = false;
                    Ok(())
                }
                Err(e) => Err(conn.statement_failed(node, StatementKind::Read, e).error),
            };
        };
        let cluster = conn.cluster.clone();
        let savepoint = Inner::<C>::begin_transaction(conn.node_conn(node));
        within(&cluster.core, node, StatementKind::Read, savepoint).await
    }

    async fn rollback_transaction(conn: &mut AsyncRwConnection<C>) -> QueryResult<()> {
        let node = open_node(conn)?;
        let cluster = conn.cluster.clone();
        let rollback = Inner::<C>::rollback_transaction(conn.node_conn(node));
        let result = within(&cluster.core, node, StatementKind::Read, rollback).await;
        after_step(conn, node, false);
        if let Err(e) = &result {
            // Past its deadline or on a broken connection, the transaction is over on the
            // server's side when the connection goes: give it up rather than stay pinned.
            if crate::route::is_timeout(e) || crate::error::is_connection_error(e) {
                cluster.core.health.retire(node);
                conn.abandon_transaction(node);
            }
        }
        result
    }

    async fn commit_transaction(conn: &mut AsyncRwConnection<C>) -> QueryResult<()> {
        let node = open_node(conn)?;
        let outermost = matches!(
            Inner::<C>::transaction_manager_status_mut(conn.node_conn(node)).transaction_depth(),
            Ok(Some(d)) if d.get() == 1
        );
        let queries = <C::Backend as RwBackend>::COMMIT_STATUS;
        let cluster = conn.cluster.clone();
        let captured = match queries {
            Some(q) if outermost && conn.state.transaction_wrote => {
                let capture = C::query_text(conn.node_conn(node), q.capture);
                match within(&cluster.core, node, StatementKind::Write, capture).await {
                    Ok(answer) => answer.as_deref().and_then(TxRef::parse),
                    Err(e) => match cluster.core.capture_failed(node, e) {
                        Ok(not_committed) => {
                            conn.abandon_transaction(node);
                            return Err(not_committed);
                        }
                        Err(error) => {
                            // The server refused it (a statement timeout, say): on
                            // PostgreSQL that aborts the transaction, whose COMMIT would then
                            // roll back and report success. Roll back, report the error.
                            let _ = Inner::<C>::rollback_transaction(conn.node_conn(node)).await;
                            after_step(conn, node, false);
                            return Err(error);
                        }
                    },
                }
            }
            _ => None,
        };
        // A COMMIT has the write deadline: past it the reply counts as lost.
        let result = within(
            &cluster.core,
            node,
            StatementKind::Write,
            Inner::<C>::commit_transaction(conn.node_conn(node)),
        )
        .await;
        after_step(conn, node, result.is_ok());
        let Err(error) = result else {
            return Ok(());
        };
        let budget = cluster.primary.timeout();
        match cluster
            .core
            .commit_failed(node, outermost, error, queries, captured, budget)
        {
            CommitFailed::Final(error) => {
                if outermost {
                    conn.abandon_transaction(node);
                }
                Err(error)
            }
            CommitFailed::Resolve(mut resolution, source) => {
                conn.abandon_transaction(node);
                let outcome = resolve(&cluster, &mut resolution).await;
                let committed = outcome == Outcome::Committed;
                let result = cluster
                    .core
                    .commit_resolved(node, &resolution, outcome, source);
                if committed && node == Node::Primary && conn.state.sticky.has_written() {
                    conn.state.sticky.record_write(cluster.core.consistency);
                }
                result
            }
        }
    }

    fn transaction_manager_status_mut(
        conn: &mut AsyncRwConnection<C>,
    ) -> &mut TransactionManagerStatus {
        match conn.state.transaction {
            Some(node) => Inner::<C>::transaction_manager_status_mut(conn.node_conn(node)),
            None => conn.idle_status(),
        }
    }

    /// Broken if any node connection it holds is: one whose transaction was cancelled midway,
    /// or is still open.
    fn is_broken_transaction_manager(conn: &mut AsyncRwConnection<C>) -> bool {
        conn.held_mut()
            .any(|c| Inner::<C>::is_broken_transaction_manager(c))
    }
}

/// Drives a lost `COMMIT`'s [`Resolution`] on fresh connections to the primary, each query
/// within the node's timeout.
async fn resolve<C: AsyncPoolable>(cluster: &Cluster<C>, resolution: &mut Resolution) -> Outcome {
    let mut next = resolution.start();
    loop {
        next = match next {
            Next::Done(outcome) => return outcome,
            Next::Sleep(pause) => {
                tokio::time::sleep(pause).await;
                resolution.resume()
            }
            Next::Query(sql) => {
                let ask = async {
                    let mut held = cluster
                        .primary
                        .checkout()
                        .await
                        .map_err(|e| e.to_string())?;
                    C::query_text(&mut held, &sql)
                        .await
                        .map_err(|e| e.to_string())
                };
                let answer = tokio::time::timeout(cluster.primary.timeout(), ask)
                    .await
                    .unwrap_or_else(|_| Err("no answer within the node's timeout".into()));
                resolution.answer(answer)
            }
        };
    }
}

fn open_node<C: AsyncPoolable>(conn: &AsyncRwConnection<C>) -> QueryResult<Node> {
    conn.state.transaction.ok_or_else(|| {
        Error::InvalidState("commit or rollback without an open transaction".into()).into()
    })
}

/// Unpins the connection once its outermost transaction has ended (the inner manager reports no
/// transaction and no error). A commit on the primary after writes restarts the sticky window,
/// which counts from the moment the writes became visible.
fn after_step<C: AsyncPoolable>(conn: &mut AsyncRwConnection<C>, node: Node, committed: bool) {
    let status = Inner::<C>::transaction_manager_status_mut(conn.node_conn(node));
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
