//! [`DoubleWriteCursor`]: the rows a [`DoubleWriteConnection`](super::DoubleWriteConnection)'s
//! `load` returns.

use diesel::connection::LoadConnection;
use diesel::r2d2::R2D2Connection;
use diesel::result::QueryResult;

use super::backend::DoubleWriteBackend;

/// The cursor of [`DoubleWriteConnection`](super::DoubleWriteConnection)'s `load`: the rows of
/// the side that served the statement.
///
/// For a read, and a write that runs on one side, it is that side's cursor as it comes. For a
/// write that runs on both sides (`INSERT/UPDATE/DELETE ... RETURNING`, `get_result`), the first
/// side's rows were read in full before the second side ran the statement, and this cursor hands
/// out those buffered rows: a `RETURNING` result is as large as the rows written, so keep such
/// statements to the size of one write (a bulk `UPDATE ... RETURNING` of millions of rows holds
/// them all in memory once).
pub struct DoubleWriteCursor<'conn, 'query, C, B>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    rows: Rows<'conn, 'query, C, B>,
}

enum Rows<'conn, 'query, C, B>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
{
    Live(<C as LoadConnection<B>>::Cursor<'conn, 'query>),
    /// The rows read, and the cursor they came from, read to its end: kept until the rows
    /// are dropped (declared after them, so dropped after them), as a MySQL row's field names
    /// live in its statement.
    Buffered {
        rows: std::vec::IntoIter<<C as LoadConnection<B>>::Row<'conn, 'query>>,
        _cursor: <C as LoadConnection<B>>::Cursor<'conn, 'query>,
    },
}

impl<'conn, 'query, C, B> DoubleWriteCursor<'conn, 'query, C, B>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    /// One side's cursor.
    pub(super) fn live(cursor: <C as LoadConnection<B>>::Cursor<'conn, 'query>) -> Self {
        DoubleWriteCursor {
            rows: Rows::Live(cursor),
        }
    }

    /// Rows read already from `cursor`.
    pub(super) fn buffered(
        cursor: <C as LoadConnection<B>>::Cursor<'conn, 'query>,
        rows: Vec<<C as LoadConnection<B>>::Row<'conn, 'query>>,
    ) -> Self {
        DoubleWriteCursor {
            rows: Rows::Buffered {
                rows: rows.into_iter(),
                _cursor: cursor,
            },
        }
    }
}

impl<'conn, 'query, C, B> Iterator for DoubleWriteCursor<'conn, 'query, C, B>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    type Item = QueryResult<<C as LoadConnection<B>>::Row<'conn, 'query>>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.rows {
            Rows::Live(cursor) => cursor.next(),
            Rows::Buffered { rows, .. } => rows.next().map(Ok),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.rows {
            Rows::Live(cursor) => cursor.size_hint(),
            Rows::Buffered { rows, .. } => rows.size_hint(),
        }
    }
}
