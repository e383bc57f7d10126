// The attributes route functions: on another item, the item is kept and one error names it.
use diesel::prelude::*;
use diesel_rw::{read_only, RwPool};

#[read_only]
pub struct UserRepo {
    pub db: RwPool<SqliteConnection>,
}

fn main() {
    let _ = |db: RwPool<SqliteConnection>| UserRepo { db };
}
