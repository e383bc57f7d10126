//! Exit codes a script can test, and the failure that carries one.

use std::process::ExitCode;

use diesel_rw::Error;

/// Everything went as asked.
pub const OK: u8 = 0;
/// An error (a database unreachable, bad input the library refused, ...).
pub const ERROR: u8 = 1;
/// Bad usage: a flag, a config file, a missing URL (clap's own code for bad flags too).
pub const USAGE: u8 = 2;
/// A cutover gate refused the step.
pub const GATE_REFUSED: u8 = 3;
/// Live instances have not applied the current phase.
pub const INSTANCES_LAG: u8 = 4;
/// Verify (or repair's verify) found rows that differ.
pub const DIFFERENCES: u8 = 5;
/// Another step of the migration came first.
pub const CONFLICT: u8 = 6;

/// A command that did not succeed: its message and exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }

    /// The name scripts see in `--json` output.
    pub fn kind(&self) -> &'static str {
        match self.code {
            USAGE => "usage",
            GATE_REFUSED => "gate_refused",
            INSTANCES_LAG => "instances_lag",
            DIFFERENCES => "differences",
            CONFLICT => "conflict",
            _ => "error",
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::GateRefused { .. } => GATE_REFUSED,
            Error::InstancesLag { .. } => INSTANCES_LAG,
            Error::StepConflict { .. } => CONFLICT,
            Error::Config(_) | Error::InvalidUrl { .. } => USAGE,
            _ => ERROR,
        };
        Failure {
            code,
            // The library redacts the URLs it names; a server's own message may still quote
            // one (a failed connect): redact again.
            message: diesel_rw::redact(&e.to_string()),
        }
    }
}

impl From<diesel::ConnectionError> for Failure {
    fn from(e: diesel::ConnectionError) -> Failure {
        Failure {
            code: ERROR,
            message: format!("could not connect: {}", diesel_rw::redact(&e.to_string())),
        }
    }
}
