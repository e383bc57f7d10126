//! [`DoubleWriteBackend`]: what a double write needs of a backend beyond routing: a comparable
//! image of a returned value, so that the rows both sides return can be compared.

use diesel::row::{Field, Row};

use crate::backend::RwBackend;

/// A backend whose returned rows a double write can compare.
///
/// Implemented for PostgreSQL, MySQL/MariaDB and SQLite (behind their features).
pub trait DoubleWriteBackend: RwBackend {
    /// Appends a comparable image of a non-NULL value to `out`: equal values of the same type give
    /// equal images.
    ///
    /// - PostgreSQL: the value's bytes in the binary wire format (what diesel deserializes);
    /// - MySQL/MariaDB: the value's bytes as the client library returned them;
    /// - SQLite: the storage class, then the value (integer, float bits, text or blob bytes).
    fn value_image(value: Self::RawValue<'_>, out: &mut Vec<u8>);

    /// The text of a returned non-NULL value as the server prints it, for the journal's keys
    /// (see [`statement_keys`](super::statement_keys)): integers, text and (PostgreSQL) UUIDs;
    /// `None` for any other type.
    fn value_text(value: Self::RawValue<'_>) -> Option<String> {
        let _ = value;
        None
    }
}

/// The image of a row: one entry per field, `None` for NULL.
pub(crate) type RowImage = Vec<Option<Vec<u8>>>;

/// The image of `row`, field by field.
pub(crate) fn row_image<'a, DB, R>(row: &R) -> RowImage
where
    DB: DoubleWriteBackend,
    R: Row<'a, DB>,
{
    (0..row.field_count())
        .map(|i| {
            row.get(i).and_then(|field| {
                field.value().map(|value| {
                    let mut image = Vec::new();
                    DB::value_image(value, &mut image);
                    image
                })
            })
        })
        .collect()
}

#[cfg(feature = "postgres")]
impl DoubleWriteBackend for diesel::pg::Pg {
    fn value_image(value: diesel::pg::PgValue<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(value.as_bytes());
    }

    fn value_text(value: diesel::pg::PgValue<'_>) -> Option<String> {
        let b = value.as_bytes();
        Some(match value.get_oid().get() {
            20 => i64::from_be_bytes(b.try_into().ok()?).to_string(),
            21 => i16::from_be_bytes(b.try_into().ok()?).to_string(),
            23 => i32::from_be_bytes(b.try_into().ok()?).to_string(),
            25 | 1043 => std::str::from_utf8(b).ok()?.to_owned(),
            2950 if b.len() == 16 => {
                let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
            _ => return None,
        })
    }
}

#[cfg(feature = "mysql")]
impl DoubleWriteBackend for diesel::mysql::Mysql {
    fn value_image(value: diesel::mysql::MysqlValue<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(value.as_bytes());
    }

    fn value_text(value: diesel::mysql::MysqlValue<'_>) -> Option<String> {
        use diesel::mysql::MysqlType as T;
        let b = value.as_bytes();
        Some(match value.value_type() {
            T::Tiny => i8::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::UnsignedTiny => u8::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::Short => i16::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::UnsignedShort => u16::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::Long => i32::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::UnsignedLong => u32::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::LongLong => i64::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::UnsignedLongLong => u64::from_ne_bytes(b.try_into().ok()?).to_string(),
            T::String => std::str::from_utf8(b).ok()?.to_owned(),
            _ => return None,
        })
    }
}

#[cfg(feature = "sqlite")]
impl DoubleWriteBackend for diesel::sqlite::Sqlite {
    fn value_image(mut value: diesel::sqlite::SqliteValue<'_, '_, '_>, out: &mut Vec<u8>) {
        use diesel::sqlite::SqliteType;
        match value.value_type() {
            Some(SqliteType::Long | SqliteType::Integer | SqliteType::SmallInt) => {
                out.push(b'i');
                out.extend_from_slice(&value.read_long().to_le_bytes());
            }
            Some(SqliteType::Double | SqliteType::Float) => {
                out.push(b'f');
                out.extend_from_slice(&value.read_double().to_bits().to_le_bytes());
            }
            Some(SqliteType::Text) => {
                out.push(b't');
                out.extend_from_slice(value.read_text().as_bytes());
            }
            Some(SqliteType::Binary) | None => {
                out.push(b'b');
                out.extend_from_slice(value.read_blob());
            }
        }
    }

    fn value_text(mut value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> Option<String> {
        use diesel::sqlite::SqliteType;
        match value.value_type()? {
            SqliteType::Long | SqliteType::Integer | SqliteType::SmallInt => {
                Some(value.read_long().to_string())
            }
            SqliteType::Text => Some(value.read_text().to_owned()),
            _ => None,
        }
    }
}
