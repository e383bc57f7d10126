//! The key-counter methods of [`AsyncDoubleWriteConnection`]: the async twins of those of
//! [`DoubleWriteConnection`](crate::double_write::DoubleWriteConnection), with the same
//! decisions (`behind`, `plan_sync`) and the same gate.

use super::gate::{advance_forced, log_sync, refused};
use super::{behind, plan_sync, AsyncKeyCounters, CounterLag, KeyCounter, SequenceSync};
use crate::double_write::{AsyncDoubleWriteConnection, Pattern, Side};
use crate::error::Error;

impl<C: AsyncKeyCounters> AsyncDoubleWriteConnection<C> {
    /// Reads the generated-key counters of `side`'s database through that side's own
    /// connection (connecting it if needed): the async
    /// [`DoubleWriteConnection::key_counters`](crate::double_write::DoubleWriteConnection::key_counters).
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")] async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel_async::{AsyncConnection, AsyncPgConnection};
    /// use diesel_rw::double_write::{AsyncDoubleWriteConnection, Side};
    ///
    /// let mut conn = AsyncDoubleWriteConnection::<AsyncPgConnection>::establish(
    ///     "source=postgres://127.0.0.1:55432/app destination=postgres://127.0.0.1:55434/app",
    /// )
    /// .await?;
    /// for counter in conn.key_counters(Side::Destination).await? {
    ///     println!("{counter}: {:?}", counter.value);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn key_counters(&mut self, side: Side) -> Result<Vec<KeyCounter>, Error> {
        Ok(self
            .with_side(side, async |c: &mut C| c.read_key_counters().await)
            .await??)
    }

    /// Lists each generated-key counter of the destination that is behind the source's: the
    /// async [`DoubleWriteConnection::counters_behind`](crate::double_write::DoubleWriteConnection::counters_behind).
    ///
    /// ```no_run
    /// # #[cfg(feature = "mysql")] async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel_async::{AsyncConnection, AsyncMysqlConnection};
    /// use diesel_rw::double_write::AsyncDoubleWriteConnection;
    ///
    /// let mut conn = AsyncDoubleWriteConnection::<AsyncMysqlConnection>::establish(
    ///     "source=mysql://127.0.0.1:33306/app destination=mysql://127.0.0.1:33306/app_dst",
    /// )
    /// .await?;
    /// for lag in conn.counters_behind().await? {
    ///     eprintln!("behind: {lag}"); // e.g. `users.id: source 501, destination 12`
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn counters_behind(&mut self) -> Result<Vec<CounterLag>, Error> {
        let source = self.key_counters(Side::Source).await?;
        let destination = self.key_counters(Side::Destination).await?;
        Ok(behind(&source, &destination))
    }

    /// Moves each generated-key counter of the destination that is behind the source's to the
    /// source's value, never back: the async
    /// [`DoubleWriteConnection::sync_sequences`](crate::double_write::DoubleWriteConnection::sync_sequences).
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")] async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel_async::{AsyncConnection, AsyncPgConnection};
    /// use diesel_rw::double_write::AsyncDoubleWriteConnection;
    ///
    /// let mut conn = AsyncDoubleWriteConnection::<AsyncPgConnection>::establish(
    ///     "source=postgres://127.0.0.1:55432/app destination=postgres://127.0.0.1:55434/app",
    /// )
    /// .await?;
    /// let report = conn.sync_sequences().await?;
    /// println!("set {:?}; ahead {:?}; missing {:?}", report.synced, report.ahead, report.missing);
    /// # Ok(()) }
    /// ```
    pub async fn sync_sequences(&mut self) -> Result<SequenceSync, Error> {
        if self.transaction_pattern().is_some() {
            return Err(Error::InvalidState(super::IN_TRANSACTION.into()));
        }
        let source = self.key_counters(Side::Source).await?;
        let destination = self.key_counters(Side::Destination).await?;
        let (mut report, set) = plan_sync(&source, &destination);
        for (counter, value) in set {
            self.with_side(Side::Destination, async |c: &mut C| {
                c.set_key_counter(&counter, value).await
            })
            .await??;
            report.synced.push((counter.name().to_owned(), value));
        }
        log_sync(&report);
        Ok(report)
    }

    /// Steps the pattern one phase forward, the step to `DstFirst` only when no generated-key
    /// counter of the destination is behind the source's (otherwise
    /// [`Error::KeyCountersBehind`], and nothing is switched): the async
    /// [`DoubleWriteConnection::advance_pattern`](crate::double_write::DoubleWriteConnection::advance_pattern).
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")] async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel_async::{AsyncConnection, AsyncPgConnection};
    /// use diesel_rw::double_write::{AsyncDoubleWriteConnection, Pattern};
    /// use diesel_rw::Error;
    ///
    /// let mut conn = AsyncDoubleWriteConnection::<AsyncPgConnection>::establish(
    ///     "source=postgres://127.0.0.1:55432/app destination=postgres://127.0.0.1:55434/app pattern=src_first",
    /// )
    /// .await?;
    /// match conn.advance_pattern().await {
    ///     Ok(pattern) => assert_eq!(pattern, Pattern::DstFirst),
    ///     Err(Error::KeyCountersBehind { behind }) => {
    ///         eprintln!("{} counter(s) behind; syncing", behind.len());
    ///         conn.sync_sequences().await?;
    ///         conn.advance_pattern().await?;
    ///     }
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn advance_pattern(&mut self) -> Result<Pattern, Error> {
        self.switch().check_local()?;
        loop {
            let from = self.switch().get();
            let to = from
                .next()
                .ok_or(Error::InvalidTransition { from, to: from })?;
            if to == Pattern::DstFirst {
                let behind = self.counters_behind().await?;
                if !behind.is_empty() {
                    return Err(refused(behind));
                }
            }
            if self.switch().replace(from, to) {
                return Ok(to);
            }
        }
    }

    /// Steps the pattern one phase forward without checking the generated-key counters;
    /// `reason` (required) is logged at WARN level: the async
    /// [`DoubleWriteConnection::advance_pattern_forced`](crate::double_write::DoubleWriteConnection::advance_pattern_forced).
    /// It sends no statement.
    ///
    /// ```no_run
    /// # #[cfg(feature = "mysql")] async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel_async::{AsyncConnection, AsyncMysqlConnection};
    /// use diesel_rw::double_write::{AsyncDoubleWriteConnection, Pattern};
    ///
    /// let mut conn = AsyncDoubleWriteConnection::<AsyncMysqlConnection>::establish(
    ///     "source=mysql://127.0.0.1:33306/app destination=mysql://127.0.0.1:33306/app_dst pattern=src_first",
    /// )
    /// .await?;
    /// let now = conn
    ///     .advance_pattern_forced("keys are UUIDs written by the application")
    ///     .await?;
    /// assert_eq!(now, Pattern::DstFirst);
    /// # Ok(()) }
    /// ```
    pub async fn advance_pattern_forced(&mut self, reason: &str) -> Result<Pattern, Error> {
        advance_forced(self.switch(), reason)
    }
}
