//! What the `#[read_only]` and `#[master]` attributes expand to. Not public API: names here
//! change without notice.

pub use crate::route::Role;
pub use crate::router::Router;
pub use crate::Error;
pub use core::borrow::BorrowMut;
pub use crate::sync::RwConnection;
pub use diesel::Connection;
#[cfg(feature = "async")]
pub use crate::asynchronous::{AsyncRouter, AsyncRwConnection};

/// Routes `source` (the expansion's one entry point, so error messages name it).
#[inline]
pub fn route<R: Router>(source: R, role: Role) -> Result<R::Routed, Error> {
    source.route(role)
}
