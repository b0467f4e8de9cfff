//! Mail-flow answers (issue 16): `trace` (a message's journey, an address's or IP's messages
//! and sessions) and `report` (pflogsumm for E-Post), over a mail work folder read with the
//! shipper's own parser. Definitions of every number: docs/trace-report.md.

pub mod found;
pub mod html;
pub mod query;
pub mod read;
pub mod report;
pub mod summary;
pub mod text;
pub mod trace;

pub use query::Query;
pub use read::{Inputs, Skipped, Window};
pub use report::{Report, Tally};

/// Every record of the window, counted.
pub fn report(inputs: &Inputs, skipped: &mut Skipped) -> Report {
    let mut tally = Tally::default();
    for f in &inputs.files {
        read::read_file(inputs, f, &read::Select::All, skipped, &mut |r| {
            tally.add(r)
        });
    }
    let mut r = tally.finish();
    r.unreadable = skipped
        .0
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.display()))
        .collect();
    r
}
