// No argument, no `self`, no `pool =`: nothing to route from.
use diesel::prelude::*;
use diesel_rw::read_only;

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

#[read_only]
pub fn count() -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

fn main() {}
