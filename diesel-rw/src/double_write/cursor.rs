//! [`DoubleWriteCursor`]: the first side's cursor, comparing its rows with the second side's.

use diesel::connection::LoadConnection;
use diesel::r2d2::R2D2Connection;
use diesel::result::QueryResult;

use super::backend::{row_image, DoubleWriteBackend, RowImage};
use super::connection::{record, Peeked};
use super::context::DoubleWriteContext;
use super::journal::JournalEntry;
use super::pattern::Side;

/// The cursor of [`DoubleWriteConnection`](super::DoubleWriteConnection)'s `load`: the rows of
/// the side that served the statement (for a write, the first side).
///
/// For a write that both sides ran, each row is compared with the row the second side returned
/// at the same position, as it is read; a difference, or a different number of rows, is
/// journaled as an [`EntryKind::Divergence`](super::EntryKind::Divergence) when the cursor
/// ends. A cursor dropped before its end reads the rest of its rows first, so the comparison is
/// complete and the statement has run to its end.
pub struct DoubleWriteCursor<'conn, 'query, C, B>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    inner: <C as LoadConnection<B>>::Cursor<'conn, 'query>,
    peeked: Peeked<'conn, 'query, C, B>,
    done: bool,
    check: Option<RowCheck>,
}

impl<'conn, 'query, C, B> DoubleWriteCursor<'conn, 'query, C, B>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    pub(super) fn new(
        inner: <C as LoadConnection<B>>::Cursor<'conn, 'query>,
        peeked: Peeked<'conn, 'query, C, B>,
        check: Option<RowCheck>,
    ) -> Self {
        DoubleWriteCursor {
            inner,
            peeked,
            done: false,
            check,
        }
    }

    /// Reads the remaining rows (stopping at an error), completing the comparison.
    pub(super) fn drain(&mut self) {
        while let Some(Ok(_)) = self.next() {}
        self.done = true;
        if let Some(check) = &mut self.check {
            check.finish();
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
        if self.done {
            return None;
        }
        let item = match self.peeked.take() {
            Some(Some(row)) => Some(Ok(row)),
            Some(None) => None,
            None => self.inner.next(),
        };
        match &item {
            None => {
                self.done = true;
                if let Some(check) = &mut self.check {
                    check.finish();
                }
            }
            Some(Ok(row)) => {
                if let Some(check) = &mut self.check {
                    check.observe(row_image::<C::Backend, _>(row));
                }
            }
            Some(Err(_)) => {
                // An error mid-way: the rows cannot be compared.
                if let Some(check) = &mut self.check {
                    check.abandon();
                }
            }
        }
        item
    }
}

impl<'conn, 'query, C, B> Drop for DoubleWriteCursor<'conn, 'query, C, B>
where
    C: LoadConnection<B> + R2D2Connection + 'static,
    C::Backend: DoubleWriteBackend,
{
    fn drop(&mut self) {
        if self.check.is_some() && !self.done {
            self.drain();
        }
    }
}

/// Compares the rows of the first side, as they are read, with those of the second side.
pub(crate) struct RowCheck {
    ctx: DoubleWriteContext,
    /// The entry to journal on a difference (its `error` filled in then).
    entry: JournalEntry,
    first: Side,
    expected: Vec<RowImage>,
    seen: usize,
    difference: Option<String>,
    finished: bool,
}

impl RowCheck {
    pub(crate) fn new(
        ctx: DoubleWriteContext,
        entry: JournalEntry,
        first: Side,
        expected: Vec<RowImage>,
    ) -> Self {
        RowCheck {
            ctx,
            entry,
            first,
            expected,
            seen: 0,
            difference: None,
            finished: false,
        }
    }

    pub(crate) fn observe(&mut self, row: RowImage) {
        if self.difference.is_none() {
            let second = self.entry.side;
            self.difference = match self.expected.get(self.seen) {
                Some(expected) if *expected == row => None,
                Some(expected) => Some(describe(self.seen, &row, expected, self.first, second)),
                None => Some(format!(
                    "the {} returned more rows than the {} ({})",
                    self.first,
                    second,
                    self.expected.len()
                )),
            };
        }
        self.seen += 1;
    }

    pub(crate) fn abandon(&mut self) {
        self.finished = true;
    }

    #[cfg(feature = "async")]
    /// The stream was dropped before its end: journals a difference among the rows read, if
    /// any (the rows not read are not compared).
    pub(crate) fn finish_partial(&mut self) {
        if self.seen < self.expected.len() {
            self.expected.truncate(self.seen);
        }
        self.finish();
    }

    pub(crate) fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.difference.is_none() && self.seen < self.expected.len() {
            self.difference = Some(format!(
                "the {} returned {} rows, the {} {}",
                self.first,
                self.seen,
                self.entry.side,
                self.expected.len()
            ));
        }
        if let Some(difference) = self.difference.take() {
            let entry = JournalEntry {
                error: difference,
                ..self.entry.clone()
            };
            record(&self.ctx, entry);
        }
    }
}

/// Which fields of row `index` differ (values are not shown: they may be personal data).
fn describe(
    index: usize,
    first_row: &RowImage,
    second_row: &RowImage,
    first: Side,
    second: Side,
) -> String {
    let fields: Vec<String> = (0..first_row.len().max(second_row.len()))
        .filter(|&i| first_row.get(i) != second_row.get(i))
        .map(|i| i.to_string())
        .collect();
    format!(
        "row {index} returned by the {first} differs from the {second}'s in field(s) {}",
        fields.join(", ")
    )
}
