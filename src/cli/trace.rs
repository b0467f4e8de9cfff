//! `trace`: a message's journey (by local id or Message-ID), or the messages and sessions of
//! an e-mail address or IP address.

use clap::Args;
use epost_shipper::flow::{self, Query, Skipped};

use super::Failure;
use super::report::{InputArgs, print, warn_skipped};

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Print the records themselves as NDJSON (as the sinks receive them), in time order
    #[arg(long)]
    json: bool,
    /// A local id (B0000097586), a Message-ID (<B0000097586@host>), an e-mail address or an IP
    query: String,
    #[command(flatten)]
    input: InputArgs,
}

pub fn run(a: TraceArgs) -> Result<(), Failure> {
    let query: Query = a.query.parse().map_err(Failure::usage)?;
    let inputs = a.input.inputs()?;
    let mut skipped = Skipped::default();
    let traced = flow::trace::trace(&inputs, &query, &mut skipped);
    warn_skipped(&skipped);
    let text = if a.json {
        let mut s = String::new();
        for r in &traced.records {
            s.push_str(&r.json);
            s.push('\n');
        }
        s
    } else {
        match &query {
            Query::LocalId(id) => flow::summary::journey(&traced, id),
            Query::MessageId(_) if traced.messages.len() == 1 => {
                flow::summary::journey(&traced, &traced.messages[0])
            }
            _ => flow::summary::listing(&traced, &a.query),
        }
    };
    print(&text)
}
