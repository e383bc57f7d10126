//! [`AsyncRwTransactionManager`]: transactions pinned to the node that began them.

use diesel::connection::TransactionManagerStatus;
use diesel::result::QueryResult;
use diesel_async::{AsyncConnection, TransactionManager};

use super::connection::AsyncRwConnection;
use super::node::AsyncPoolable;
use crate::classify::StatementKind;
use crate::error::Error;
use crate::route::Node;

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
            let begun = Inner::<C>::begin_transaction(conn.node_conn(node)).await;
            return match begun {
                Ok(()) => {
                    conn.state.transaction = Some(node);
                    Ok(())
                }
                Err(e) => Err(conn.statement_failed(node, StatementKind::Read, e).error),
            };
        };
        Inner::<C>::begin_transaction(conn.node_conn(node)).await
    }

    async fn rollback_transaction(conn: &mut AsyncRwConnection<C>) -> QueryResult<()> {
        let node = open_node(conn)?;
        let result = Inner::<C>::rollback_transaction(conn.node_conn(node)).await;
        after_step(conn, node, false);
        result
    }

    async fn commit_transaction(conn: &mut AsyncRwConnection<C>) -> QueryResult<()> {
        let node = open_node(conn)?;
        let outermost = matches!(
            Inner::<C>::transaction_manager_status_mut(conn.node_conn(node)).transaction_depth(),
            Ok(Some(d)) if d.get() == 1
        );
        let result = Inner::<C>::commit_transaction(conn.node_conn(node)).await;
        after_step(conn, node, result.is_ok());
        result.map_err(|error| conn.cluster.core.commit_failed(node, outermost, error))
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
