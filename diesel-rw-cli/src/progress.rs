//! Progress bars for long work (indicatif), on stderr; none with `--json` or when stderr is
//! not a terminal.

use diesel_rw::migrate::backfill::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one command.
pub struct Bars {
    multi: MultiProgress,
}

/// One table's bar.
pub struct RowsBar {
    bar: ProgressBar,
}

impl Bars {
    /// Bars drawn on stderr unless `quiet` (then hidden).
    pub fn new(quiet: bool) -> Bars {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
        }
    }

    /// A bar counting the rows of `table`.
    pub fn rows(&self, table: &str) -> RowsBar {
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} rows, {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(table.to_owned());
        RowsBar { bar }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        let _ = self.multi.clear();
    }
}

impl RowsBar {
    /// Shows a backfill's progress.
    pub fn show(&self, p: &Progress) {
        if let Some(total) = p.total_rows {
            self.bar.set_length(total.max(p.rows_copied));
        }
        self.bar.set_position(p.rows_copied);
        self.bar.set_message(format!(
            "{:.0} rows/s{}",
            p.rows_per_sec,
            p.eta
                .map_or_else(String::new, |eta| format!(", ETA {} s", eta.as_secs()))
        ));
    }
}
