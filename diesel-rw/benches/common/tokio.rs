//! The async benches' runtime and raw deadpool pools.
#![allow(unused_macros, unused_imports)]

/// A multi-threaded tokio runtime (diesel-async's SQLite wrapper needs one), two workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A raw diesel-async deadpool pool of `$conn` to `$url`, set up as diesel-rw sets up each
/// node's pool: `RecyclingMethod::Fast` (no `SELECT 1` on checkout).
macro_rules! raw_deadpool {
    ($conn:ty, $url:expr) => {{
        use diesel_async::pooled_connection::{
            deadpool::Pool, AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        };
        let mut config = ManagerConfig::<$conn>::default();
        config.recycling_method = RecyclingMethod::Fast;
        Pool::<$conn>::builder(AsyncDieselConnectionManager::new_with_config($url, config))
            .max_size(4)
            .build()
            .expect("deadpool pool")
    }};
}
pub(crate) use raw_deadpool;
