//! What a command runs with: flags and the environment first, then the config file.

use std::path::Path;
use std::time::Duration;

use diesel_rw::migrate::control::{ControlTables, Fleet};
use diesel_rw::migrate::TableSpec;
use serde::Deserialize;

use crate::args::Global;
use crate::exit::Failure;

/// The config file (TOML).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    source: Option<String>,
    destination: Option<String>,
    migration: Option<String>,
    #[serde(default)]
    tables: Vec<String>,
    control_table: Option<String>,
    heartbeat_limit_secs: Option<u64>,
}

/// The resolved settings.
pub struct Settings {
    pub source: String,
    pub destination: Option<String>,
    pub migration: String,
    pub tables: Vec<TableSpec>,
    pub control: ControlTables,
    pub heartbeat_limit: Duration,
    pub json: bool,
}

impl Settings {
    pub fn resolve(g: &Global) -> Result<Settings, Failure> {
        let file = match &g.config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let source = g.source.clone().or(file.source).ok_or_else(|| {
            Failure::usage(
                "no source URL: give --source, set DATABASE_URL, or `source` in the config file",
            )
        })?;
        let migration = g.migration.clone().or(file.migration).ok_or_else(|| {
            Failure::usage("no migration name: give --migration, set DIESEL_RW_MIGRATION, or `migration` in the config file")
        })?;
        let tables = if g.tables.is_empty() {
            file.tables
        } else {
            g.tables.clone()
        };
        let control = match g.control_table.clone().or(file.control_table) {
            Some(name) => ControlTables::named(&name).map_err(Failure::from)?,
            None => ControlTables::default(),
        };
        Ok(Settings {
            source,
            destination: g.destination.clone().or(file.destination),
            migration,
            tables: tables
                .iter()
                .map(|t| table_spec(t))
                .collect::<Result<_, _>>()?,
            control,
            heartbeat_limit: Duration::from_secs(
                g.heartbeat_limit
                    .or(file.heartbeat_limit_secs)
                    .unwrap_or(10),
            ),
            json: g.json,
        })
    }

    pub fn fleet(&self) -> Fleet {
        Fleet::new(&self.migration)
            .tables(self.control.clone())
            .heartbeat_limit(self.heartbeat_limit)
    }

    pub fn destination(&self) -> Result<&str, Failure> {
        self.destination.as_deref().ok_or_else(|| {
            Failure::usage("this command needs the destination: give --destination, set DESTINATION_DATABASE_URL, or `destination` in the config file")
        })
    }

    pub fn need_tables(&self) -> Result<&[TableSpec], Failure> {
        if self.tables.is_empty() {
            return Err(Failure::usage(
                "this command needs the migration's tables: give --table NAME (repeat it), or `tables` in the config file",
            ));
        }
        Ok(&self.tables)
    }
}

fn read_config(path: &Path) -> Result<FileConfig, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text)
        .map_err(|e| Failure::usage(format!("config file {}: {}", path.display(), e.message())))
}

/// `name` or `name:changed_at`.
fn table_spec(text: &str) -> Result<TableSpec, Failure> {
    let (name, changed_at) = match text.split_once(':') {
        Some((n, c)) => (n.trim(), Some(c.trim())),
        None => (text.trim(), None),
    };
    if name.is_empty() || changed_at.is_some_and(str::is_empty) {
        return Err(Failure::usage(format!(
            "table `{text}`: give `name` or `name:changed_at_column`"
        )));
    }
    let spec = TableSpec::new(name);
    Ok(match changed_at {
        Some(c) => spec.changed_at(c),
        None => spec,
    })
}
