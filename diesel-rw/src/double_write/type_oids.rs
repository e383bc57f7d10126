//! The OIDs of PostgreSQL's user-defined types (enums, domains, composites: what a
//! `#[diesel(postgres_type(name = ".."))]` type binds) in a statement rendered before a
//! connection is at hand ([`SharedQuery`]).
//!
//! diesel asks a connection for such a type's OID while it collects the binds; a statement that
//! diesel-async hands over is rendered before the first `.await`, with no connection to ask. As
//! diesel-async's own `AsyncPgConnection` does, the statement is rendered with stand-in OIDs,
//! once more with other stand-ins to find where they sit inside the bind bytes (an array of an
//! enum carries its element's OID), and the real OIDs are looked up, on the connection that runs
//! it, before it runs ([`resolve`]), then kept in a [`TypeOids`] cache. The OIDs differ between
//! two independent servers (a double write's source and destination), so each side resolves its
//! own copy; the nodes of one cluster (a primary and its hot standbys) share them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A type's schema (if named) and name.
pub(crate) type TypeName = (Option<String>, String);

/// The OIDs of the user-defined types looked up on one server (or one cluster): the type's and
/// its array type's. Internal: named by [`AsyncDoubleWriteBackend`](super::AsyncDoubleWriteBackend)'s
/// hidden methods.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct TypeOids(Mutex<HashMap<TypeName, (u32, u32)>>);

impl TypeOids {
    #[cfg(feature = "postgres")]
    fn get(&self, name: &TypeName) -> Option<(u32, u32)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    #[cfg(feature = "postgres")]
    fn insert(&self, name: TypeName, oids: (u32, u32)) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, oids);
    }

    /// Forgets `pending`'s types (a statement that used them failed: a type may have been
    /// dropped and made again, with a new OID).
    pub(crate) fn forget<MD>(&self, pending: Option<&Pending<MD>>) {
        if let Some(pending) = pending {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for (name, _) in &pending.spec.types {
                map.remove(name);
            }
        }
    }
}

/// Where a rendered statement's stand-in OIDs are.
#[derive(Debug)]
pub(crate) struct PendingSpec {
    /// Each type and its stand-in OIDs (the type's, its array type's).
    pub(crate) types: Vec<(TypeName, (u32, u32))>,
    /// (bind index, byte index) of each stand-in OID inside a bind's bytes.
    pub(crate) locations: Vec<(usize, usize)>,
}

/// The user-defined types of a rendered statement, and its binds once their OIDs are known.
#[derive(Debug)]
pub(crate) struct Pending<MD> {
    pub(crate) spec: Arc<PendingSpec>,
    /// The binds with the real OIDs, set by [`resolve`] (shared by the statement's clones).
    pub(crate) resolved: OnceLock<MD>,
}

impl<MD> Pending<MD> {
    pub(crate) fn new(spec: PendingSpec) -> Self {
        Pending {
            spec: Arc::new(spec),
            resolved: OnceLock::new(),
        }
    }

    /// The same types, not resolved yet (for a connection to another server).
    pub(crate) fn fresh(&self) -> Self {
        Pending {
            spec: self.spec.clone(),
            resolved: OnceLock::new(),
        }
    }
}

#[cfg(feature = "postgres")]
pub(crate) use self::pg::{render, resolve};

#[cfg(feature = "postgres")]
mod pg {
    use std::collections::{HashMap, HashSet};

    use diesel::pg::{Pg, PgMetadataLookup, PgTypeMetadata};
    use diesel::query_builder::bind_collector::RawBytesBindCollector;
    use diesel::query_builder::QueryFragment;
    use diesel::result::{Error as DieselError, QueryResult};

    use super::{Pending, PendingSpec, TypeName, TypeOids};

    /// The first pass's stand-in: no real type has OID 0.
    const STAND_IN: u32 = 0;

    /// A lookup that answers with stand-in OIDs and notes the types asked for.
    struct StandIns<F: FnMut() -> (u32, u32)> {
        asked: bool,
        types: HashMap<TypeName, (u32, u32)>,
        next: F,
    }

    impl<F: FnMut() -> (u32, u32)> PgMetadataLookup for StandIns<F> {
        fn lookup_type(&mut self, type_name: &str, schema: Option<&str>) -> PgTypeMetadata {
            self.asked = true;
            let key = (schema.map(str::to_owned), type_name.to_owned());
            let oids = match self.types.get(&key) {
                Some(oids) => *oids,
                None => {
                    let oids = (self.next)();
                    self.types.insert(key, oids);
                    oids
                }
            };
            PgTypeMetadata::new(oids.0, oids.1)
        }
    }

    /// PostgreSQL's collected binds.
    type Binds = RawBytesBindCollector<Pg>;

    /// Collects `query`'s binds: with no user-defined type, the binds alone; with some, the
    /// binds with stand-in OIDs and where those are.
    pub(crate) fn render<T: QueryFragment<Pg> + ?Sized>(
        query: &T,
    ) -> QueryResult<(Binds, Option<Pending<Binds>>)> {
        let mut first = RawBytesBindCollector::<Pg>::new();
        let mut lookup = StandIns {
            asked: false,
            types: HashMap::new(),
            next: || (STAND_IN, STAND_IN),
        };
        query.collect_binds(&mut first, &mut lookup, &Pg)?;
        if !lookup.asked {
            return Ok((first, None));
        }
        // Again with stand-ins of their own, above every OID of the first pass, to tell them
        // apart inside the bytes.
        let mut top = first
            .metadata
            .iter()
            .flat_map(|m| [m.oid().unwrap_or(0), m.array_oid().unwrap_or(0)])
            .max()
            .unwrap_or(0)
            .max(1 << 24);
        let mut second = RawBytesBindCollector::<Pg>::new();
        let mut lookup = StandIns {
            asked: false,
            types: HashMap::new(),
            next: move || {
                top += 2;
                (top, top + 1)
            },
        };
        query.collect_binds(&mut second, &mut lookup, &Pg)?;
        let stand_ins: HashSet<u32> = lookup.types.values().flat_map(|(a, b)| [*a, *b]).collect();
        let mut locations = Vec::new();
        for (index, ((bytes0, meta0), bytes1)) in first
            .binds
            .iter()
            .zip(&first.metadata)
            .zip(&second.binds)
            .enumerate()
        {
            // A stand-in sits inside the bytes of a value of a user-defined type only (an
            // array of it, a record).
            if !matches!(meta0.oid(), Ok(STAND_IN)) {
                continue;
            }
            let (Some(bytes0), Some(bytes1)) = (bytes0, bytes1) else {
                continue;
            };
            for (at, (l, r)) in bytes0.windows(4).zip(bytes1.windows(4)).enumerate() {
                let r = u32::from_be_bytes(r.try_into().expect("4 bytes"));
                if l == STAND_IN.to_be_bytes() && r != STAND_IN && stand_ins.contains(&r) {
                    locations.push((index, at));
                }
            }
        }
        let spec = PendingSpec {
            types: lookup.types.into_iter().collect(),
            locations,
        };
        Ok((second, Some(Pending::new(spec))))
    }

    #[derive(diesel::QueryableByName)]
    struct Oids {
        #[diesel(sql_type = diesel::sql_types::Oid)]
        oid: u32,
        #[diesel(sql_type = diesel::sql_types::Oid)]
        typarray: u32,
    }

    /// Looks up one type's OIDs on `conn`, as diesel does.
    async fn look_up<C>(conn: &mut C, (schema, name): &TypeName) -> QueryResult<(u32, u32)>
    where
        C: diesel_async::AsyncConnection<Backend = Pg> + Send,
    {
        use diesel::sql_types::Text;
        use diesel_async::RunQueryDsl;
        let found = match schema {
            Some(schema) => {
                diesel::sql_query(
                    "SELECT pg_type.oid, pg_type.typarray FROM pg_type \
                     INNER JOIN pg_namespace ON pg_type.typnamespace = pg_namespace.oid \
                     WHERE pg_type.typname = $1 AND pg_namespace.nspname = $2 LIMIT 1",
                )
                .bind::<Text, _>(name.clone())
                .bind::<Text, _>(schema.clone())
                .get_result::<Oids>(conn)
                .await
            }
            None => {
                diesel::sql_query(
                    "SELECT pg_type.oid, pg_type.typarray FROM pg_type \
                     WHERE pg_type.oid = quote_ident($1)::regtype::oid LIMIT 1",
                )
                .bind::<Text, _>(name.clone())
                .get_result::<Oids>(conn)
                .await
            }
        };
        match found {
            Ok(oids) => Ok((oids.oid, oids.typarray)),
            Err(DieselError::NotFound) => Err(DieselError::QueryBuilderError(
                format!(
                    "the PostgreSQL type `{}` was not found on the server that runs the \
                     statement",
                    match schema {
                        Some(schema) => format!("{schema}.{name}"),
                        None => name.clone(),
                    }
                )
                .into(),
            )),
            Err(e) => Err(e),
        }
    }

    /// Looks up, on `conn` (or in `cache`), the OIDs of the user-defined types of `pending`,
    /// and sets its binds with them in place of the stand-ins.
    pub(crate) async fn resolve<C>(
        binds: &RawBytesBindCollector<Pg>,
        pending: &Pending<RawBytesBindCollector<Pg>>,
        conn: &mut C,
        cache: &TypeOids,
    ) -> QueryResult<()>
    where
        C: diesel_async::AsyncConnection<Backend = Pg> + Send,
    {
        if pending.resolved.get().is_some() {
            return Ok(());
        }
        let mut real = HashMap::new();
        for (name, (stand_in, array_stand_in)) in &pending.spec.types {
            let oids = match cache.get(name) {
                Some(oids) => oids,
                None => {
                    let oids = look_up(conn, name).await?;
                    cache.insert(name.clone(), oids);
                    oids
                }
            };
            real.insert(*stand_in, oids.0);
            real.insert(*array_stand_in, oids.1);
        }
        let mut resolved = RawBytesBindCollector::<Pg>::new();
        resolved.binds = binds.binds.clone();
        resolved.metadata = binds
            .metadata
            .iter()
            .map(|m| {
                let (oid, array) = (m.oid().unwrap_or(0), m.array_oid().unwrap_or(0));
                PgTypeMetadata::new(
                    real.get(&oid).copied().unwrap_or(oid),
                    real.get(&array).copied().unwrap_or(array),
                )
            })
            .collect();
        for &(index, at) in &pending.spec.locations {
            let slot = resolved
                .binds
                .get_mut(index)
                .and_then(|b| b.as_mut())
                .and_then(|b| b.get_mut(at..at + 4));
            let replaced = slot.and_then(|slot| {
                let stand_in = u32::from_be_bytes((&*slot).try_into().ok()?);
                slot.copy_from_slice(&real.get(&stand_in)?.to_be_bytes());
                Some(())
            });
            if replaced.is_none() {
                return Err(DieselError::SerializationError(
                    format!("diesel-rw could not put a type's OID into bind value {index}").into(),
                ));
            }
        }
        let _ = pending.resolved.set(resolved);
        Ok(())
    }
}
