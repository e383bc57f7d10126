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
    /// - PostgreSQL: the value's bytes in the binary wire format (what diesel deserializes),
    ///   where the value is of a user-defined type (an array of an enum, a composite) with the
    ///   OIDs of user-defined types it names inside zeroed: they differ between two servers;
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
        let start = out.len();
        out.extend_from_slice(value.as_bytes());
        if value.get_oid().get() >= pg_image::FIRST_USER_OID {
            pg_image::forget_user_oids(&mut out[start..], 0);
        }
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

/// PostgreSQL's binary forms that name other types' OIDs: arrays (their element type) and
/// composites (each field's type).
#[cfg(feature = "postgres")]
mod pg_image {
    /// The first OID PostgreSQL gives a user-defined object; the built-in types' are below.
    pub(super) const FIRST_USER_OID: u32 = 16384;

    /// How deep arrays and composites nest before the rest is compared as it is.
    const MAX_DEPTH: usize = 8;

    fn int(bytes: &[u8], at: usize) -> Option<i32> {
        Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    }

    fn zero_user_oid(bytes: &mut [u8], at: usize) {
        if let Some(oid) = int(bytes, at) {
            if oid as u32 >= FIRST_USER_OID {
                bytes[at..at + 4].fill(0);
            }
        }
    }

    /// The byte ranges of a binary array's elements, if `bytes` is one exactly.
    fn array_elements(bytes: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
        let ndim = int(bytes, 0)?;
        let flags = int(bytes, 4)?;
        int(bytes, 8)?;
        if !(0..=6).contains(&ndim) || !(0..=1).contains(&flags) {
            return None;
        }
        let mut at = 12;
        let mut count: usize = 1;
        for _ in 0..ndim {
            let size = int(bytes, at)?;
            int(bytes, at + 4)?;
            count = count.checked_mul(usize::try_from(size).ok()?)?;
            at += 8;
        }
        if ndim == 0 {
            count = 0;
        }
        let mut elements = Vec::new();
        for _ in 0..count {
            let len = int(bytes, at)?;
            at += 4;
            if len >= 0 {
                let end = at.checked_add(usize::try_from(len).ok()?)?;
                bytes.get(at..end)?;
                elements.push(at..end);
                at = end;
            } else if len != -1 {
                return None;
            }
        }
        (at == bytes.len()).then_some(elements)
    }

    /// The (OID position, value range) of a binary composite's fields, if `bytes` is one
    /// exactly.
    fn composite_fields(bytes: &[u8]) -> Option<Vec<(usize, std::ops::Range<usize>)>> {
        let count = usize::try_from(int(bytes, 0)?).ok()?;
        if count > 1664 {
            return None; // PostgreSQL's limit on a row's columns
        }
        let mut at = 4;
        let mut fields = Vec::new();
        for _ in 0..count {
            int(bytes, at)?;
            let len = int(bytes, at + 4)?;
            let oid_at = at;
            at += 8;
            if len >= 0 {
                let end = at.checked_add(usize::try_from(len).ok()?)?;
                bytes.get(at..end)?;
                fields.push((oid_at, at..end));
                at = end;
            } else if len == -1 {
                fields.push((oid_at, at..at));
            } else {
                return None;
            }
        }
        (at == bytes.len()).then_some(fields)
    }

    /// Zeroes the OIDs of user-defined types that a value of a user-defined type names inside:
    /// an array's element type, a composite's field types, and theirs in turn.
    pub(super) fn forget_user_oids(bytes: &mut [u8], depth: usize) {
        if depth >= MAX_DEPTH {
            return;
        }
        if let Some(elements) = array_elements(bytes) {
            zero_user_oid(bytes, 8);
            for range in elements {
                forget_user_oids(&mut bytes[range], depth + 1);
            }
        } else if let Some(fields) = composite_fields(bytes) {
            for (oid_at, range) in fields {
                zero_user_oid(bytes, oid_at);
                forget_user_oids(&mut bytes[range], depth + 1);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A one-dimensional binary array of text-like elements with element type `oid`.
        fn array(oid: u32, elements: &[&[u8]]) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&0i32.to_be_bytes());
            out.extend_from_slice(&oid.to_be_bytes());
            out.extend_from_slice(&(elements.len() as i32).to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            for e in elements {
                out.extend_from_slice(&(e.len() as i32).to_be_bytes());
                out.extend_from_slice(e);
            }
            out
        }

        #[test]
        fn arrays_of_a_user_type_compare_equal_across_servers() {
            let mut a = array(16500, &[b"sad", b"happy"]);
            let mut b = array(24001, &[b"sad", b"happy"]);
            assert_ne!(a, b);
            forget_user_oids(&mut a, 0);
            forget_user_oids(&mut b, 0);
            assert_eq!(a, b);
            let mut c = array(24001, &[b"sad", b"ok"]);
            forget_user_oids(&mut c, 0);
            assert_ne!(a, c, "the elements still count");
        }

        #[test]
        fn built_in_oids_and_plain_values_stay() {
            let mut ints = array(23, &[&1i32.to_be_bytes()]);
            let before = ints.clone();
            forget_user_oids(&mut ints, 0);
            assert_eq!(ints, before);
            let mut label = b"a label that is long enough".to_vec();
            forget_user_oids(&mut label, 0);
            assert_eq!(label, b"a label that is long enough");
            let mut empty = Vec::new();
            forget_user_oids(&mut empty, 0);
            assert!(empty.is_empty());
        }

        #[test]
        fn composites_forget_their_fields_user_oids() {
            let composite = |oid: u32| {
                let mut out = 2i32.to_be_bytes().to_vec();
                out.extend_from_slice(&23u32.to_be_bytes());
                out.extend_from_slice(&4i32.to_be_bytes());
                out.extend_from_slice(&7i32.to_be_bytes());
                out.extend_from_slice(&oid.to_be_bytes());
                out.extend_from_slice(&3i32.to_be_bytes());
                out.extend_from_slice(b"sad");
                out
            };
            let (mut a, mut b) = (composite(17000), composite(30000));
            forget_user_oids(&mut a, 0);
            forget_user_oids(&mut b, 0);
            assert_eq!(a, b);
            assert_eq!(
                &a[4..8],
                &23u32.to_be_bytes(),
                "a built-in field's OID stays"
            );
        }
    }
}
