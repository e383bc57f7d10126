//! The synchronous stack: [`RwPool`] over r2d2 and [`RwConnection`], a diesel
//! [`Connection`](diesel::Connection) that routes each statement.

mod connection;
mod monitor;
mod node;
mod pool;
mod transaction;

pub use connection::RwConnection;
pub use pool::RwPool;
pub use transaction::RwTransactionManager;
