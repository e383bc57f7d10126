//! The application's functions that write, learned from MariaDB's catalog (primary 33306, GTID
//! replica 33307): a function declared `MODIFIES SQL DATA`, or with no data-access
//! characteristic (`CONTAINS SQL`), runs on the primary, one declared `READS SQL DATA` on the
//! replica (tests/common/writing_functions.rs).
#![cfg(feature = "mysql")]

#[macro_use]
mod common;
#[path = "common/writing_functions.rs"]
#[macro_use]
mod writing_functions;

/// This suite's objects. Stored functions need SUPER when the binary log is on: made by the
/// bed's admin, in the test database.
mod ddl {
    use diesel::prelude::*;

    /// The server's own word that it is the primary (the replica is `read_only`).
    pub const IS_PRIMARY: &str = "@@read_only = 0";
    /// `wf_named` with its schema, as the builder names it.
    pub const QUALIFIED_NAMED: &str = "diesel_rw.wf_named";

    pub fn admin() -> MysqlConnection {
        let url = super::common::env_or(
            "DIESEL_RW_MYSQL_ADMIN_URL",
            "mysql://root@127.0.0.1:33306/mysql",
        );
        let mut conn = MysqlConnection::establish(&url).unwrap();
        use diesel::connection::SimpleConnection;
        conn.batch_execute(&format!("USE {}", database())).unwrap();
        conn
    }

    /// The double write's destination: the database diesel_rw_dst on the same server.
    pub fn destination() -> String {
        super::common::env_or(
            "DIESEL_RW_MYSQL_DEST_URL",
            "mysql://diesel_rw:diesel_rw_pw@127.0.0.1:33306/diesel_rw_dst",
        )
    }

    /// The admin, in the destination's database.
    pub fn destination_admin() -> MysqlConnection {
        let mut conn = admin();
        let database = destination();
        let database = database
            .rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap();
        use diesel::connection::SimpleConnection;
        conn.batch_execute(&format!("USE {database}")).unwrap();
        conn
    }

    /// The test database (the primary URL's path).
    fn database() -> String {
        let url = super::common::mysql::primary_url();
        url.rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    }

    fn writer(name: &str, characteristic: &str) -> [String; 2] {
        [
            format!("DROP FUNCTION IF EXISTS {name}"),
            format!(
                "CREATE FUNCTION {name}(t VARCHAR(200)) RETURNS INT DETERMINISTIC \
                 {characteristic} BEGIN INSERT INTO wf_log (tag, node) \
                 VALUES (t, CAST(@@port AS CHAR)); RETURN 1; END"
            ),
        ]
    }

    pub fn create() -> Vec<String> {
        let mut sql = vec![
            "CREATE TABLE IF NOT EXISTS wf_log (id INT AUTO_INCREMENT PRIMARY KEY, \
             tag VARCHAR(200) NOT NULL, node VARCHAR(32) NOT NULL)"
                .to_owned(),
        ];
        sql.extend(writer("wf_write", "MODIFIES SQL DATA"));
        // No data-access characteristic: CONTAINS SQL, which the catalog learning counts.
        sql.extend(writer("wf_named", ""));
        sql.push("DROP FUNCTION IF EXISTS wf_read".into());
        sql.push("CREATE FUNCTION wf_read(i INT) RETURNS INT READS SQL DATA RETURN i + 1".into());
        sql
    }

    pub fn create_late() -> Vec<String> {
        writer("wf_late", "MODIFIES SQL DATA").into()
    }

    pub fn drop_late() {
        use diesel::connection::SimpleConnection;
        admin()
            .batch_execute("DROP FUNCTION IF EXISTS wf_late")
            .unwrap();
    }
}

writing_functions_suite!(mysql);

/// A function declared without a data-access characteristic is `CONTAINS SQL` in
/// information_schema.ROUTINES, and learned as one that may write.
#[test]
fn a_function_without_a_characteristic_is_learned_as_writing() {
    use diesel::prelude::*;
    let Some(_bed) = bed("wf_nochar") else {
        return;
    };
    let mut admin = ddl::admin();
    #[derive(QueryableByName)]
    struct Access {
        #[diesel(sql_type = diesel::sql_types::Text)]
        access: String,
    }
    let access: Access = diesel::sql_query(
        "SELECT SQL_DATA_ACCESS AS access FROM information_schema.ROUTINES \
         WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = 'wf_named'",
    )
    .get_result(&mut admin)
    .unwrap();
    assert_eq!(access.access, "CONTAINS SQL");
    let functions = diesel_rw::WritingFunctions::default();
    let mut conn = common::mysql::direct(&common::mysql::primary_url());
    assert!(functions.learn_from(&mut conn).unwrap() >= 2);
    assert!(functions.contains("wf_named") && functions.contains("wf_write"));
    assert!(!functions.contains("wf_read"));
}
