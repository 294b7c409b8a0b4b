//! One way to log. Server diagnostics (access lines, reloads, warnings) and the client's
//! `--debug` HTTP trace are `tracing` events; one subscriber, installed by the command that
//! runs, writes them to stderr as `<UTC time> <message>` lines — the same timestamp format
//! everywhere. Messages are escaped where they are built (`validate::printable`), so nothing a
//! peer sends can forge a line or drive the terminal.
//!
//! Command-line errors are not log events: `main` prints them as one `error:` line (and a
//! `hint:`), and data goes to stdout through `output`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Target of the client's HTTP trace (`--debug`).
pub const HTTP_TRACE: &str = "mcpgen::http";

/// Install the stderr subscriber, showing events at `level` and above. A second call (tests
/// that run several commands in one process, `demo`) keeps the first subscriber.
pub fn init(level: Level) {
    let _ = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).event_format(Lines).try_init();
}

/// One trace line per line of `text`, prefixed with `>` (sent) or `<` (received); control
/// characters escaped.
pub fn trace(direction: &str, text: &str) {
    for line in text.lines() {
        tracing::debug!(target: HTTP_TRACE, "{direction} {}", crate::validate::escape_controls(line));
    }
}

/// `2026-11-24T02:11:00Z message`, with `warning: ` before warnings and errors.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = *event.metadata().level();
        let marker = if level <= Level::WARN && !message.0.starts_with("warning:") { "warning: " } else { "" };
        writeln!(writer, "{} {marker}{}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"), message.0)
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
}
