// A trait's declaration has no body to route: the attribute goes on the implementation.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

pub trait UserStore {
    #[read_only]
    fn count(&self, db: &RwPool<SqliteConnection>) -> QueryResult<i64>;
}

fn main() {}
