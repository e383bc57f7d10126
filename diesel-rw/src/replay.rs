//! Running a read a second time, on another node, after its replica's connection failed under
//! it: the statement shared between the two attempts ([`Replay`]) and getting the connection
//! back from the failed attempt ([`attempt`]; [`Parked`] for the async state machine).
//!
//! diesel's `load` takes the statement by value and returns a cursor (or stream) that borrows
//! the connection. To run it again, the statement is shared ([`Replay`] holds it in an `Arc`;
//! the async connection collects it) and the failed attempt must give back the `&mut` it
//! borrowed. The borrow checker of today (NLL) cannot see that an `Err` holds no borrow when
//! the `Ok` of the same call is returned with the borrow (its "problem case #3", which Polonius
//! accepts). This module is where diesel-rw uses `unsafe` for it. [`attempt`] is safe to call,
//! under the argument polonius-the-crab makes: the attempt is higher-ranked over the borrow's
//! lifetime, so neither what it returns in `Err` nor anything it could store can hold the
//! borrow; only its `Ok` output can. [`Parked::take_back`] is `unsafe`: its one caller, the
//! async connection's statement future, drops the failed attempt's future before it.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::Arc;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A statement shared by the attempts of one read: the same SQL, binds and statement-cache
/// identity as the statement itself.
pub(crate) struct Replay<T>(pub(crate) Arc<T>);

impl<T> Clone for Replay<T> {
    fn clone(&self) -> Self {
        Replay(self.0.clone())
    }
}

impl<T: Query> Query for Replay<T> {
    type SqlType = T::SqlType;
}

impl<T: QueryId> QueryId for Replay<T> {
    type QueryId = T::QueryId;
    const HAS_STATIC_QUERY_ID: bool = T::HAS_STATIC_QUERY_ID;
    const IS_WINDOW_FUNCTION: bool = T::IS_WINDOW_FUNCTION;
}

impl<T: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Replay<T> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // As diesel's own `Box<T>` and `&T` do.
        self.0.walk_ast(pass)
    }
}

/// A type that borrows for a lifetime: what an attempt on a `&'a mut` gives on success.
pub(crate) trait Borrowing {
    /// The type, borrowing for `'a`.
    type Of<'a>;
}

/// Runs `first` on `this`: its output, which may borrow `this` for `'a`, or its error together
/// with `this` for another attempt.
pub(crate) fn attempt<'a, S: ?Sized, O: Borrowing, E>(
    this: &'a mut S,
    first: impl for<'b> FnOnce(&'b mut S) -> Result<O::Of<'b>, E>,
) -> Result<O::Of<'a>, (E, &'a mut S)> {
    let this = NonNull::from(this);
    // SAFETY: `this` comes from a `&'a mut S` that is not used again, so a `&'a mut S` made from
    // it is unique while it lives. On `Ok`, the only one made is returned. On `Err`, the first
    // one is dead before the second is made: `first` is higher-ranked over `'b`, so it could
    // not store its `&'b mut S` anywhere that outlives the call, and `E`, chosen outside `'b`,
    // cannot hold it.
    match first(unsafe { &mut *this.as_ptr() }) {
        Ok(output) => Ok(output),
        Err(error) => Err((error, unsafe { &mut *this.as_ptr() })),
    }
}

/// A `&'a mut S` parked while a borrow made from it lives in a future, to be taken back once
/// that future has failed and is dropped: the async form of [`attempt`], for a state machine
/// that cannot be one closure. `Send` as the reference is.
#[cfg(feature = "async")]
pub(crate) struct Parked<'a, S: ?Sized> {
    this: NonNull<S>,
    _borrow: std::marker::PhantomData<&'a mut S>,
}

// SAFETY: it stands for a `&'a mut S`, which is `Send` when `S` is.
#[cfg(feature = "async")]
unsafe impl<S: ?Sized + Send> Send for Parked<'_, S> {}

#[cfg(feature = "async")]
impl<'a, S: ?Sized> Parked<'a, S> {
    /// Parks `this`, giving the first reborrow of it.
    pub(crate) fn new(this: &'a mut S) -> (&'a mut S, Self) {
        let this = NonNull::from(this);
        let parked = Parked {
            this,
            _borrow: std::marker::PhantomData,
        };
        // SAFETY: `this` comes from a `&'a mut S` that is not used again; the reborrow is the
        // only reference until `take_back`, whose caller promises it is dead by then.
        (unsafe { &mut *this.as_ptr() }, parked)
    }

    /// Takes the reference back.
    ///
    /// # Safety
    ///
    /// The reborrow [`Parked::new`] gave, and every reference made from it, must be dead and
    /// dropped (with whatever held one, such as a future) before this is called.
    pub(crate) unsafe fn take_back(self) -> &'a mut S {
        // SAFETY: the caller's promise makes this the only live reference.
        unsafe { &mut *self.this.as_ptr() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slice;
    impl Borrowing for Slice {
        type Of<'a> = &'a mut [u8];
    }

    // A `Vec`, so that the tests can push onto the one they get back.
    #[allow(clippy::ptr_arg)]
    fn first_half_if_even(v: &mut Vec<u8>) -> Result<&mut [u8], &'static str> {
        if v.len() % 2 == 0 {
            let half = v.len() / 2;
            Ok(&mut v[..half])
        } else {
            Err("odd")
        }
    }

    #[test]
    fn gives_the_output_or_the_borrow_back() {
        let mut v = vec![1, 2, 3, 4];
        let out = attempt::<_, Slice, _>(&mut v, first_half_if_even).unwrap();
        out[0] = 9;
        assert_eq!(v, [9, 2, 3, 4]);
        let mut odd = vec![1, 2, 3];
        let (error, back) = attempt::<_, Slice, _>(&mut odd, first_half_if_even).unwrap_err();
        assert_eq!(error, "odd");
        back.push(4);
        assert_eq!(first_half_if_even(back).unwrap(), [1, 2]);
    }

    #[cfg(feature = "async")]
    #[test]
    fn parked_gives_the_borrow_back() {
        let mut v = vec![1, 2, 3];
        let (first, parked) = Parked::new(&mut v);
        first.push(4);
        // SAFETY: `first` is not used again.
        let back = unsafe { parked.take_back() };
        back.push(5);
        assert_eq!(v, [1, 2, 3, 4, 5]);
    }
}
