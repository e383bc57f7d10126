//! Values compared by value, per backend: what [`verify`](super::verify) hashes, so that two
//! servers of the same backend give equal hashes for equal values and different hashes for
//! different values, whatever the driver, the session settings or the column's declared
//! precision.
//!
//! Each column is compared as one [`Canon`], found from its declared type
//! ([`Canon::classify`]) or set by the caller. The rules, the same on every backend where the
//! type exists:
//!
//! | [`Canon`]        | equal                                                          | different |
//! |------------------|----------------------------------------------------------------|-----------|
//! | `Integer`        | the same integer                                               | any other |
//! | `Decimal`        | the same number whatever its scale: `1.50` = `1.5` = `1.500`   | `1.5` and `1.51` |
//! | `Float`          | the same IEEE value to the last bit (`0.1 + 0.2` ≠ `0.3`); `-0.0` = `0.0` (they compare equal in SQL); NaN = NaN | any other bit pattern |
//! | `Text`           | the same characters (UTF-8 bytes): case, accents, composed vs decomposed, trailing spaces all count | `'a'` and `'a '`, `''` and NULL |
//! | `Char`           | the same characters once trailing spaces are removed (`CHAR(n)` semantics: `'a'` = `'a  '`) | leading spaces, any other character |
//! | `Binary`         | the same bytes                                                 | any other byte, trailing `0x00` too |
//! | `Bool`           | the same truth value                                           | |
//! | `Date`, `Time`   | the same day / time of day (fractions compared by value; `timetz` in UTC) | |
//! | `Timestamp`      | the same wall-clock instant, fractions by value (`.5` = `.500000`) | |
//! | `TimestampTz`    | the same instant in UTC: the session time zone never matters  | |
//! | `Json`           | the same document once whitespace and object key order are normalised (numbers by value on PostgreSQL and MariaDB) | any other value, array order |
//! | `Uuid`           | the same UUID                                                  | |
//! | `Plain`          | the server's own text output of the value (enums, `inet`, ...) | |
//!
//! NULL is never equal to any value, the empty string included. Backend notes:
//!
//! - **PostgreSQL**: the checksums and digests do not render values as text: each value goes
//!   through its type's own 64-bit hash function, the one hash indexes use, which agrees with
//!   the type's equality (see [`row_hash_sql`]): numerics whatever their scale, floats with
//!   `-0` = `0` and NaN = NaN, `timestamptz` as the instant (never the session's `TimeZone`),
//!   `json` through `::jsonb` (so a `json` and a `jsonb` document compare by value, and JSON
//!   numbers by value too: `1.0` = `1`). Types without such a function are hashed from their
//!   canonical text ([`value_sql`]: dates as day numbers, times in seconds, bytea in hex
//!   whatever `bytea_output`, `CHAR(n)` without trailing spaces).
//! - **MariaDB/MySQL**: text converted to `utf8mb4` and compared as bytes (the column's
//!   collation, e.g. case-insensitive or PAD SPACE, does not make different values equal),
//!   `TIMESTAMP` through `UNIX_TIMESTAMP` (independent of `time_zone`), `DATETIME` through
//!   `DATE_FORMAT`, doubles through their shortest round-trip text, `FLOAT` widened to double
//!   exactly, JSON through `JSON_NORMALIZE` (which also makes `1.0` = `1`).
//! - **SQLite**: values are compared by storage class and value; integer and real storage of
//!   the same number are equal (`1` = `1.0`), reals printed with 17 significant digits, text
//!   timestamps normalised to UTC (`'2020-01-01 02:00:00+02:00'` = `'2020-01-01 00:00:00'`),
//!   JSON through `json_tree` (every path and atom, sorted by path).
//!
//! **Not compared** (an [`Error::UncomparableType`](crate::Error::UncomparableType) naming the
//! column, unless [`Verify::compare_as`](super::verify::Verify::compare_as) says how):
//! PostgreSQL `interval` (`1 day` and `24 hours` are equal to its `=`, not to a migration),
//! `money` (locale-formatted), arrays, composite, range, geometric, `xml`, `tsvector` and
//! user-defined types (an enum compares with [`Canon::Plain`]); MariaDB spatial types
//! (`GEOMETRY`, `POINT`, ...: [`Canon::Binary`] compares their WKB bytes). SQLite's dynamic
//! typing has nothing it cannot compare. Tables whose key types differ between the sides, or
//! whose columns are of incompatible classes, are refused too.
//!
//! ```
//! use diesel_rw::migrate::canonical::Canon;
//!
//! assert_eq!(Canon::classify("postgres", "numeric(10,2)"), Some(Canon::Decimal));
//! assert_eq!(Canon::classify("postgres", "timestamp with time zone"), Some(Canon::TimestampTz));
//! assert_eq!(Canon::classify("mysql", "char(3)"), Some(Canon::Char));
//! assert_eq!(Canon::classify("mysql", "varchar(10)"), Some(Canon::Text));
//! assert_eq!(Canon::classify("sqlite", "INTEGER"), Some(Canon::Integer));
//! assert_eq!(Canon::classify("postgres", "interval"), None); // not compared: an error names the column
//! ```

use std::fmt;

use super::dialect::Dialect;
use super::table::{Column, ColumnKind};

/// How the verifier compares the values of one column (see the [module docs](self) for the
/// rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Canon {
    /// Integers of any width.
    Integer,
    /// Exact decimals, compared whatever their scale.
    Decimal,
    /// Binary floating point, compared to the last bit (`-0.0` = `0.0`, NaN = NaN).
    Float,
    /// Single-precision floating point (MariaDB `FLOAT`, PostgreSQL `real`): widened exactly.
    Float32,
    /// Text, compared as characters (trailing spaces count).
    Text,
    /// Fixed-width text (`CHAR(n)`): trailing spaces do not count.
    Char,
    /// Bytes.
    Binary,
    /// Truth values.
    Bool,
    /// A calendar day.
    Date,
    /// A time of day.
    Time,
    /// A timestamp without time zone (wall clock).
    Timestamp,
    /// A timestamp with time zone (an instant): compared in UTC.
    TimestampTz,
    /// A JSON document: whitespace and object key order do not count.
    Json,
    /// A UUID.
    Uuid,
    /// The server's text output of the value, as is: for types whose output is deterministic
    /// (enums, `inet`, `macaddr`, MariaDB `SET`, `BIT`, `YEAR`).
    Plain,
}

impl Canon {
    /// Its name in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Canon::Integer => "integer",
            Canon::Decimal => "decimal",
            Canon::Float => "float",
            Canon::Float32 => "float32",
            Canon::Text => "text",
            Canon::Char => "char",
            Canon::Binary => "binary",
            Canon::Bool => "bool",
            Canon::Date => "date",
            Canon::Time => "time",
            Canon::Timestamp => "timestamp",
            Canon::TimestampTz => "timestamptz",
            Canon::Json => "json",
            Canon::Uuid => "uuid",
            Canon::Plain => "plain",
        }
    }

    /// The class of a column of the declared type `type_name` on `backend` (`"postgres"`,
    /// `"mysql"` or `"sqlite"`), or `None` for a type the verifier cannot compare by value
    /// (PostgreSQL `interval`, `money`, arrays, geometric types; MariaDB spatial types; an
    /// unknown backend).
    ///
    /// PostgreSQL takes `format_type`/`information_schema` names (`character varying(10)`,
    /// `timestamp with time zone`) and `udt_name`s (`varchar`, `timestamptz`); MariaDB takes
    /// `COLUMN_TYPE` (`bigint(20) unsigned`) or `DATA_TYPE`; SQLite takes the declared type,
    /// by its affinity rules (`INT` anywhere: integer, and so on), with `DATE`, `DATETIME`,
    /// `TIMESTAMP`, `JSON`, `BOOL`, `CHAR(n)` and `UUID` recognised by name.
    pub fn classify(backend: &str, type_name: &str) -> Option<Canon> {
        let t = type_name.trim().to_ascii_lowercase();
        match backend {
            "postgres" | "postgresql" | "pg" => classify_pg(&t),
            "mysql" | "mariadb" => classify_mysql(&t),
            "sqlite" => Some(classify_sqlite(&t)),
            _ => None,
        }
    }
}

impl fmt::Display for Canon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `t` without a `(...)` precision and surrounding blanks: `numeric(10,2)` -> `numeric`.
fn base(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut depth = 0;
    for ch in t.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn classify_pg(t: &str) -> Option<Canon> {
    if t.ends_with("[]") || t.starts_with('_') || t == "array" {
        return None;
    }
    Some(match base(t).as_str() {
        "smallint" | "integer" | "int" | "bigint" | "int2" | "int4" | "int8" | "smallserial"
        | "serial" | "bigserial" | "serial2" | "serial4" | "serial8" | "oid" => Canon::Integer,
        "numeric" | "decimal" => Canon::Decimal,
        "double precision" | "float8" | "float" => Canon::Float,
        "real" | "float4" => Canon::Float32,
        "text" | "character varying" | "varchar" | "citext" | "name" => Canon::Text,
        "character" | "char" | "bpchar" => Canon::Char,
        "bytea" => Canon::Binary,
        "boolean" | "bool" => Canon::Bool,
        "date" => Canon::Date,
        "time" | "time without time zone" | "time with time zone" | "timetz" => Canon::Time,
        "timestamp" | "timestamp without time zone" => Canon::Timestamp,
        "timestamp with time zone" | "timestamptz" => Canon::TimestampTz,
        "json" | "jsonb" => Canon::Json,
        "uuid" => Canon::Uuid,
        "inet" | "cidr" | "macaddr" | "macaddr8" | "bit" | "bit varying" | "varbit" => Canon::Plain,
        _ => return None,
    })
}

fn classify_mysql(t: &str) -> Option<Canon> {
    let b = base(t);
    let first = b.split_whitespace().next().unwrap_or("");
    Some(match first {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "bool"
        | "boolean" | "serial" => Canon::Integer,
        "decimal" | "numeric" | "dec" | "fixed" => Canon::Decimal,
        "double" | "real" => Canon::Float,
        "float" => Canon::Float32,
        "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "nvarchar" => Canon::Text,
        "char" | "nchar" => Canon::Char,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Canon::Binary,
        "date" => Canon::Date,
        "time" => Canon::Time,
        "datetime" => Canon::Timestamp,
        "timestamp" => Canon::TimestampTz,
        "json" => Canon::Json,
        "uuid" => Canon::Uuid,
        "enum" | "set" | "bit" | "year" | "inet4" | "inet6" => Canon::Plain,
        _ => return None,
    })
}

/// SQLite: by name for the types it has no storage class of, else by affinity (section 3.1 of
/// <https://sqlite.org/datatype3.html>).
fn classify_sqlite(t: &str) -> Canon {
    let b = base(t);
    if b.contains("int") {
        Canon::Integer
    } else if b.contains("timestamp") || b.contains("datetime") {
        Canon::TimestampTz
    } else if b == "date" {
        Canon::Date
    } else if b == "time" {
        Canon::Time
    } else if b.contains("json") {
        Canon::Json
    } else if b.contains("bool") {
        Canon::Bool
    } else if (b == "char" || b == "character" || b == "nchar" || b == "native character")
        && !b.contains("var")
    {
        Canon::Char
    } else if b.contains("char") || b.contains("clob") || b.contains("text") {
        Canon::Text
    } else if b.contains("blob") {
        Canon::Binary
    } else if b.contains("real") || b.contains("floa") || b.contains("doub") {
        Canon::Float
    } else if b == "uuid" {
        Canon::Uuid
    } else if b.is_empty() {
        // No declared type (BLOB affinity): any storage class, compared by class and value.
        Canon::Plain
    } else {
        Canon::Decimal
    }
}

impl Canon {
    /// How the verifier compares `column`, described on a `dialect` connection: by its declared
    /// type ([`classify`](Self::classify)), else by its [`ColumnKind`] (a PostgreSQL domain
    /// over a known type, MariaDB's `JSON`); `None` for a type it cannot compare by value.
    pub fn of(dialect: Dialect, column: &Column) -> Option<Canon> {
        if column.kind == ColumnKind::Json {
            return Some(Canon::Json);
        }
        if let Some(canon) = Canon::classify(dialect_name(dialect), &column.type_name) {
            return Some(canon);
        }
        Some(match column.kind {
            ColumnKind::Integer => Canon::Integer,
            ColumnKind::Numeric { .. } => Canon::Decimal,
            ColumnKind::Float => Canon::Float,
            ColumnKind::Text => Canon::Text,
            ColumnKind::Binary => Canon::Binary,
            ColumnKind::Bool => Canon::Bool,
            ColumnKind::Date => Canon::Date,
            ColumnKind::Time => Canon::Time,
            ColumnKind::Timestamp => Canon::Timestamp,
            ColumnKind::TimestampTz => Canon::TimestampTz,
            ColumnKind::Json => Canon::Json,
            ColumnKind::Uuid => Canon::Uuid,
            _ => return None,
        })
    }
}

/// The backend name [`Canon::classify`] takes for `dialect`.
fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Mysql => "mysql",
        Dialect::Sqlite => "sqlite",
    }
}

/// SQL of the canonical text of the column expression `c` compared as `canon` on `dialect`:
/// NULL exactly when `c` is NULL.
pub fn value_sql(dialect: Dialect, c: &str, canon: Canon) -> String {
    match dialect {
        Dialect::Postgres => pg_value(c, canon),
        Dialect::Mysql => mysql_value(c, canon),
        Dialect::Sqlite => sqlite_value(c, canon),
    }
}

/// SQL of the canonical text of a whole row from its values' canonical texts: each value
/// length-prefixed (`v<bytes>:<text>`) or `n` for NULL, concatenated, so that no two different
/// rows give the same text (`''` is not NULL, `('a', 'b')` is not `('ab', '')`).
pub fn row_text_sql(dialect: Dialect, values: &[String]) -> String {
    if values.is_empty() {
        return "''".into();
    }
    let parts: Vec<String> = values
        .iter()
        .map(|v| match dialect {
            Dialect::Postgres => format!("COALESCE('v' || octet_length({v}) || ':' || {v}, 'n')"),
            Dialect::Mysql => format!("COALESCE(CONCAT('v', LENGTH({v}), ':', {v}), 'n')"),
            Dialect::Sqlite => {
                format!("COALESCE('v' || length(CAST({v} AS BLOB)) || ':' || {v}, 'n')")
            }
        })
        .collect();
    match dialect {
        Dialect::Mysql => format!("CONCAT({})", parts.join(", ")),
        Dialect::Postgres | Dialect::Sqlite => parts.join(" || "),
    }
}

/// SQL of a row's 64-bit hash, computed by the server, from its columns (each an SQL
/// expression with its [`Canon`]); `None` on SQLite, which has no hash function: the client
/// hashes the row's text ([`client_digest`]; SQLite runs in the process, so no row crosses a
/// network anyway).
///
/// - PostgreSQL: each value through the type's own 64-bit hash function, the one its hash
///   indexes use (`hash_numeric_extended`, which gives `1.50` and `1.5` the same hash;
///   `hashfloat8extended`, which gives `-0.0` and `0.0`, and every NaN, the same;
///   `jsonb_hash_extended`; `timestamp_hash_extended` of the instant in UTC; ...), seeded with
///   the column's position (so that a value moved to another column changes the hash), a
///   constant for NULL, the columns' hashes XORed and the result mixed once through
///   `hashint8extended` (so that the rows' hashes, XORed in a chunk checksum, do not cancel
///   per column: a value moved to another row changes the checksum). One mixing call a row,
///   not one per column: 20-25% less server time than chaining each column through it.
///   No value is rendered as text, which is what makes the checksum cheap. Both servers must
///   share the byte order (they hash bytes): any two x86-64 or ARM64 servers do.
/// - MariaDB/MySQL: the first 64 bits of the MD5 of the row's canonical text
///   ([`row_text_sql`]).
pub fn row_hash_sql(dialect: Dialect, columns: &[(String, Canon)]) -> Option<String> {
    match dialect {
        Dialect::Postgres => Some(pg_row_hash(columns)),
        Dialect::Mysql => Some(format!(
            "CAST(CONV(LEFT(MD5({}), 16), 16, 10) AS UNSIGNED)",
            row_text_sql(dialect, &mysql_values(columns))
        )),
        Dialect::Sqlite => None,
    }
}

/// SQL of a row's canonical text (MariaDB/MySQL and SQLite; see [`row_text_sql`]).
pub fn row_text_of(dialect: Dialect, columns: &[(String, Canon)]) -> String {
    let values: Vec<String> = columns
        .iter()
        .map(|(c, canon)| value_sql(dialect, c, *canon))
        .collect();
    row_text_sql(dialect, &values)
}

fn mysql_values(columns: &[(String, Canon)]) -> Vec<String> {
    columns
        .iter()
        .map(|(c, canon)| mysql_value(c, *canon))
        .collect()
}

/// SQL of a row's digest (a text that differs when the row's values differ), computed by the
/// server: PostgreSQL the hex of [`row_hash_sql`], MariaDB the MD5 of the row's text; `None`
/// on SQLite ([`client_digest`] of [`row_text_of`]).
pub fn row_digest_sql(dialect: Dialect, columns: &[(String, Canon)]) -> Option<String> {
    match dialect {
        Dialect::Postgres => Some(format!("to_hex({})", pg_row_hash(columns))),
        Dialect::Mysql => Some(format!(
            "MD5({})",
            row_text_sql(dialect, &mysql_values(columns))
        )),
        Dialect::Sqlite => None,
    }
}

/// SQL of an aggregate giving a chunk's checksum as one text `<rows>:<xor in hex>`: the row
/// count and the XOR of the rows' [`row_hash_sql`]. `None` on SQLite (the client computes it
/// from [`client_digest`]s, with [`digest_word`]).
pub fn chunk_checksum_sql(dialect: Dialect, columns: &[(String, Canon)]) -> Option<String> {
    let h = row_hash_sql(dialect, columns)?;
    Some(match dialect {
        Dialect::Postgres => {
            format!("count(*)::text || ':' || to_hex(COALESCE(bit_xor({h}), 0))")
        }
        _ => format!("CONCAT(COUNT(*), ':', LOWER(HEX(COALESCE(BIT_XOR({h}), 0))))"),
    })
}

/// PostgreSQL: the hash of a row (see [`row_hash_sql`]).
fn pg_row_hash(columns: &[(String, Canon)]) -> String {
    let mut acc: Option<String> = None;
    for (i, (c, canon)) in columns.iter().enumerate() {
        let seed = i as i64 + 1;
        let h = match canon {
            Canon::Integer => format!("hashint8extended(({c})::int8, {seed})"),
            Canon::Decimal => format!("hash_numeric_extended({c}, {seed})"),
            Canon::Float | Canon::Float32 => format!("hashfloat8extended(({c})::float8, {seed})"),
            Canon::Timestamp => format!("timestamp_hash_extended({c}, {seed})"),
            Canon::TimestampTz => {
                format!("timestamp_hash_extended(({c}) AT TIME ZONE 'UTC', {seed})")
            }
            Canon::Json => format!("jsonb_hash_extended(({c})::jsonb, {seed})"),
            Canon::Uuid => format!("uuid_hash_extended({c}, {seed})"),
            other => format!("hashtextextended({}, {seed})", pg_value(c, *other)),
        };
        // NULL: a constant of its own per column.
        let h = format!("COALESCE({h}, {})", -0x5bd1_e995_i64 * seed);
        acc = Some(match acc {
            None => h,
            Some(prev) => format!("{prev} # {h}"),
        });
    }
    match acc {
        Some(xor) => format!("hashint8extended({xor}, 0)"),
        None => "0::int8".into(),
    }
}

/// A digest computed in the client from a row's canonical text, for SQLite: 128 bits as 32
/// hex digits (two FNV-1a-64 passes with different offsets, each finished by the SplitMix64
/// mixer, so that every input bit reaches every output bit).
pub fn client_digest(text: &[u8]) -> String {
    fn pass(text: &[u8], offset: u64) -> u64 {
        let mut h = offset;
        for &b in text {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= text.len() as u64;
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
    format!(
        "{:016x}{:016x}",
        pass(text, 0xcbf2_9ce4_8422_2325),
        pass(text, 0x6c62_272e_07bb_0142)
    )
}

/// The 64-bit word of a digest that chunk checksums XOR: its first 16 hex digits.
pub fn digest_word(digest: &str) -> u64 {
    u64::from_str_radix(digest.get(..16).unwrap_or(digest), 16).unwrap_or(0)
}

fn pg_value(c: &str, canon: Canon) -> String {
    match canon {
        Canon::Integer | Canon::Uuid | Canon::Bool | Canon::Plain | Canon::Text => {
            format!("({c})::text")
        }
        Canon::Decimal => format!("trim_scale({c})::text"),
        Canon::Float | Canon::Float32 => format!(
            "CASE WHEN {c} = 0 THEN '0' WHEN {c} = 'NaN' THEN 'NaN' \
             ELSE encode(float8send(({c})::float8), 'hex') END"
        ),
        Canon::Char => format!("rtrim(({c})::text, ' ')"),
        Canon::Binary => format!("encode({c}, 'hex')"),
        Canon::Date => format!(
            "CASE WHEN isfinite({c}) THEN ({c} - DATE '1970-01-01')::text ELSE ({c})::text END"
        ),
        Canon::Time | Canon::Timestamp | Canon::TimestampTz => {
            format!("trim_scale(extract(epoch FROM {c}))::text")
        }
        Canon::Json => format!("(({c})::jsonb)::text"),
    }
}

/// MariaDB: a decimal-like text without trailing fractional zeros (`1.500` -> `1.5`,
/// `2.000` -> `2`; a text without `.` unchanged).
fn mysql_trim_fraction(s: &str) -> String {
    format!("IF(LOCATE('.', {s}) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {s})), {s})")
}

fn mysql_value(c: &str, canon: Canon) -> String {
    let text = match canon {
        Canon::Integer | Canon::Bool | Canon::Float => format!("CAST({c} AS CHAR)"),
        Canon::Plain => format!("CAST({c} AS CHAR)"),
        Canon::Decimal | Canon::Time => mysql_trim_fraction(&format!("CAST({c} AS CHAR)")),
        Canon::Float32 => format!("CAST(CAST({c} AS DOUBLE) AS CHAR)"),
        Canon::Text | Canon::Uuid => format!("CONVERT({c} USING utf8mb4)"),
        Canon::Char => format!("TRIM(TRAILING ' ' FROM CONVERT({c} USING utf8mb4))"),
        Canon::Binary => format!("HEX({c})"),
        Canon::Date => format!("DATE_FORMAT({c}, '%Y-%m-%d')"),
        Canon::Timestamp => {
            mysql_trim_fraction(&format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"))
        }
        Canon::TimestampTz => mysql_trim_fraction(&format!("CAST(UNIX_TIMESTAMP({c}) AS CHAR)")),
        Canon::Json => format!("CONVERT(JSON_NORMALIZE({c}) USING utf8mb4)"),
    };
    // As bytes: no collation makes two different texts equal, and none can clash.
    format!("CAST({text} AS BINARY)")
}

/// SQLite: a value of any storage class, tagged by class; integer and real storage of the same
/// number give the same text.
fn sqlite_dynamic(c: &str) -> String {
    format!(
        "CASE typeof({c}) WHEN 'integer' THEN 'n' || {c} \
         WHEN 'real' THEN 'n' || {real} \
         WHEN 'text' THEN 't' || {c} \
         WHEN 'blob' THEN 'b' || hex({c}) END",
        real = sqlite_real(c)
    )
}

/// SQLite: a real as an integer when it is one (so `1.0` = `1`, `-0.0` = `0`), else with 17
/// significant digits (enough to tell any two doubles apart).
fn sqlite_real(c: &str) -> String {
    format!(
        "(CASE WHEN {c} = CAST({c} AS INTEGER) AND abs({c}) < 9.0e18 \
         THEN CAST(CAST({c} AS INTEGER) AS TEXT) ELSE printf('%!.17g', {c}) END)"
    )
}

fn sqlite_value(c: &str, canon: Canon) -> String {
    match canon {
        Canon::Integer | Canon::Decimal | Canon::Float | Canon::Float32 | Canon::Bool => format!(
            "CASE WHEN typeof({c}) IN ('integer', 'real') THEN {} ELSE {} END",
            sqlite_real(c),
            sqlite_dynamic(c)
        ),
        Canon::Text | Canon::Uuid => format!(
            "CASE typeof({c}) WHEN 'text' THEN {c} ELSE {} END",
            sqlite_dynamic(c)
        ),
        Canon::Char => format!(
            "CASE typeof({c}) WHEN 'text' THEN rtrim({c}, ' ') ELSE {} END",
            sqlite_dynamic(c)
        ),
        Canon::Binary | Canon::Plain => sqlite_dynamic(c),
        Canon::Date | Canon::Time | Canon::Timestamp | Canon::TimestampTz => {
            let format = match canon {
                Canon::Date => "%Y-%m-%d",
                Canon::Time => "%H:%M:%S",
                _ => "%Y-%m-%d %H:%M:%S",
            };
            // strftime renders in UTC but keeps only milliseconds: the fraction's digits (after
            // the seconds' '.'), trailing zeros removed, come from the text itself.
            let frac = format!("substr({c}, instr({c}, '.') + 1)");
            let digits = format!(
                "rtrim(substr({frac}, 1, length({frac}) - length(ltrim({frac}, '0123456789'))), '0')"
            );
            let text = if canon == Canon::Date {
                format!("strftime('{format}', {c})")
            } else {
                format!(
                    "strftime('{format}', {c}) || CASE WHEN instr({c}, '.') > 0 \
                     AND {digits} <> '' THEN '.' || {digits} ELSE '' END"
                )
            };
            format!(
                "CASE WHEN typeof({c}) = 'text' AND strftime('%s', {c}) IS NOT NULL \
                 THEN {text} ELSE {} END",
                sqlite_dynamic(c)
            )
        }
        Canon::Json => format!(
            "CASE WHEN typeof({c}) = 'text' AND json_valid({c}) THEN \
             (SELECT group_concat(fullkey || '=' || type || ':' || quote(atom), ',' ORDER BY fullkey) \
              FROM json_tree({c})) ELSE {} END",
            sqlite_dynamic(c)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_declared_types() {
        assert_eq!(Canon::classify("postgres", "bigint"), Some(Canon::Integer));
        assert_eq!(
            Canon::classify("postgres", "character varying(20)"),
            Some(Canon::Text)
        );
        assert_eq!(
            Canon::classify("postgres", "character(3)"),
            Some(Canon::Char)
        );
        assert_eq!(Canon::classify("postgres", "integer[]"), None);
        assert_eq!(Canon::classify("postgres", "money"), None);
        assert_eq!(
            Canon::classify("mysql", "bigint(20) unsigned"),
            Some(Canon::Integer)
        );
        assert_eq!(
            Canon::classify("mysql", "timestamp(6)"),
            Some(Canon::TimestampTz)
        );
        assert_eq!(Canon::classify("mysql", "geometry"), None);
        assert_eq!(Canon::classify("sqlite", "VARCHAR(10)"), Some(Canon::Text));
        assert_eq!(Canon::classify("sqlite", "CHAR(3)"), Some(Canon::Char));
        assert_eq!(
            Canon::classify("sqlite", "DECIMAL(10,2)"),
            Some(Canon::Decimal)
        );
        assert_eq!(Canon::classify("sqlite", ""), Some(Canon::Plain));
    }

    #[test]
    fn client_digest_tells_texts_apart() {
        assert_eq!(client_digest(b"abc"), client_digest(b"abc"));
        assert_ne!(client_digest(b"abc"), client_digest(b"abd"));
        assert_ne!(client_digest(b""), client_digest(b"\0"));
        assert_eq!(client_digest(b"x").len(), 32);
    }
}
