//! What the `#[read_only]` and `#[master]` attributes expand to. Not public API: names here
//! change without notice.

#[cfg(feature = "async")]
pub use crate::asynchronous::{AsyncRouter, AsyncRwConnection};
pub use crate::route::Role;
pub use crate::router::Router;
pub use crate::sync::RwConnection;
pub use crate::Error;
pub use core::borrow::BorrowMut;
pub use diesel::Connection;
#[cfg(feature = "async")]
pub use diesel_async::AsyncConnection;

/// Routes `source` (the expansion's one entry point, so error messages name it).
#[inline]
pub fn route<R: Router>(source: R, role: Role) -> Result<R::Routed, Error> {
    source.route(role)
}

/// Routes `source` for an `async fn` (the async expansion's one entry point).
#[cfg(feature = "async")]
#[inline]
pub fn route_async<R: AsyncRouter>(
    source: R,
    role: Role,
) -> impl core::future::Future<Output = Result<R::Routed, Error>> + Send {
    source.route(role)
}
