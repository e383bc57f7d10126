//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// diesel-rw's operator tool for online migrations: the phase every instance of the service
/// follows, backfill, verify, repair and the journal.
///
/// URLs come from the flags, the environment (DATABASE_URL for the source, which also holds
/// the control table; DESTINATION_DATABASE_URL) or a config file (--config, DIESEL_RW_CONFIG).
/// Passwords are never printed.
///
/// Exit codes: 0 ok; 1 error; 2 bad usage; 3 refused by a gate; 4 instances lag; 5 differences
/// found; 6 another step came first.
#[derive(Debug, Parser)]
#[command(name = "diesel-rw", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Top,
}

#[derive(Debug, Subcommand)]
pub enum Top {
    /// An online migration: its phase, backfill, verify, repair, journal.
    Migrate(Migrate),
}

#[derive(Debug, Args)]
pub struct Migrate {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every `migrate` command.
#[derive(Debug, Args)]
pub struct Global {
    /// URL of the source database (postgres://, mysql://, or a SQLite file); it also holds the
    /// control table and the journal.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub source: Option<String>,

    /// URL of the destination database.
    #[arg(
        long,
        env = "DESTINATION_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub destination: Option<String>,

    /// A TOML config file: source, destination, migration, tables, control_table,
    /// heartbeat_limit_secs (flags and the environment win over it).
    #[arg(long, short = 'c', env = "DIESEL_RW_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// The migration's name in the control table.
    #[arg(long, short = 'm', env = "DIESEL_RW_MIGRATION", global = true)]
    pub migration: Option<String>,

    /// A table of the migration (repeat for several): `name`, or `name:changed_at_column`
    /// for incremental verifies by time.
    #[arg(long = "table", short = 't', value_name = "TABLE", global = true)]
    pub tables: Vec<String>,

    /// The control table's name (default diesel_rw_control).
    #[arg(long, global = true)]
    pub control_table: Option<String>,

    /// Seconds without a heartbeat after which an instance counts as gone (default 10).
    #[arg(long, value_name = "SECS", global = true)]
    pub heartbeat_limit: Option<u64>,

    /// Print JSON (one document) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Adds the migration to the control table (creating the tables) at a phase.
    Init {
        /// The phase to start at.
        #[arg(long, default_value = "src_only")]
        at: String,
    },
    /// The phase, its epoch, the instances and their acknowledgement, backfill progress, the
    /// last verify and the journal backlog.
    Status,
    /// Copies the source's rows into the destination (resumable; insert-if-absent).
    Backfill {
        /// Rows per chunk to start with (adapted to the target chunk time).
        #[arg(long)]
        chunk_size: Option<u64>,
        /// Pause between chunks, in milliseconds.
        #[arg(long, value_name = "MS")]
        pause_ms: Option<u64>,
        /// Discard the checkpoint and start from the first row.
        #[arg(long)]
        restart: bool,
    },
    /// Compares the source and the destination (recorded for the gates); exit code 5 when
    /// rows differ.
    Verify {
        /// Only the rows the journal names (and, for tables with a changed-at column, those
        /// changed since the last clean run); marks the entries done.
        #[arg(long)]
        incremental: bool,
        /// The side taken as right (default: the source until dst_first, then the
        /// destination).
        #[arg(long, value_enum)]
        authoritative: Option<SideArg>,
    },
    /// Verifies, then converges the follower side to the authoritative one.
    Repair {
        /// List what would be done, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The side taken as right (default: per the phase, as for verify).
        #[arg(long, value_enum)]
        authoritative: Option<SideArg>,
    },
    /// One phase forward, through the barrier and the gates.
    Advance {
        #[command(flatten)]
        step: StepArgs,
        /// Take the step even if gates refuse it (needs --reason; recorded).
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why (recorded with the step).
        #[arg(long)]
        reason: Option<String>,
        /// How old the last clean verify may be, in seconds (default 86400).
        #[arg(long, value_name = "SECS")]
        verify_max_age: Option<u64>,
        /// Do not check the generated-key counters before dst_first.
        #[arg(long)]
        no_key_counters: bool,
    },
    /// One phase back, through the barrier.
    Retreat {
        #[command(flatten)]
        step: StepArgs,
        /// Why (recorded with the step).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The durable journal's entries.
    Journal {
        /// Every entry, also those done.
        #[arg(long)]
        all: bool,
        /// At most this many (newest last).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Args)]
pub struct StepArgs {
    /// Wait up to this many seconds for lagging instances (default: refuse at once).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
    /// Who takes the step (default $USER@host).
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SideArg {
    Source,
    Destination,
}
