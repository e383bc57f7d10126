// The guard the connection is borrowed from is hygienic: the body cannot name it (or move it).
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn count(db: &RwPool<SqliteConnection>) -> QueryResult<i64> {
    drop(__diesel_rw_routed);
    users::table.count().get_result(conn)
}

fn main() {}
