//! One way to log. Server diagnostics (access lines, reloads, warnings) and the client's
//! `--debug` HTTP trace are `tracing` events; one subscriber, installed by the command that
//! runs, writes them to stderr as `<UTC time> <message>` lines — the same timestamp format
//! everywhere — or, with `serve --log-format json`, as one JSON object per line
//! (`{"time":…,"level":…,"message":…}`; access lines carry their fields instead of a message,
//! see `server::access_log`). Messages are escaped where they are built
//! (`validate::printable`), so nothing a peer sends can forge a line or drive the terminal.
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

/// Target of the server's access lines: in JSON format their message is already a JSON object.
pub const ACCESS: &str = "mcpgen::access";

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// `<UTC time> <message>`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

static FORMAT: std::sync::OnceLock<Format> = std::sync::OnceLock::new();

/// The format the installed subscriber writes (text when none is installed).
pub fn format() -> Format {
    FORMAT.get().copied().unwrap_or_default()
}

/// Install the stderr subscriber, showing events at `level` and above. A second call (tests
/// that run several commands in one process, `demo`) keeps the first subscriber.
pub fn init(level: Level) {
    init_with(level, Format::Text);
}

/// [`init`] in the given format.
pub fn init_with(level: Level, format: Format) {
    let format = *FORMAT.get_or_init(|| format);
    let _ = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).event_format(Lines(format)).try_init();
}

/// One trace line per line of `text`, prefixed with `>` (sent) or `<` (received); control
/// characters escaped.
pub fn trace(direction: &str, text: &str) {
    for line in text.lines() {
        tracing::debug!(target: HTTP_TRACE, "{direction} {}", crate::validate::escape_controls(line));
    }
}

/// `2026-11-24T02:11:00Z message`, with `warning: ` before warnings and errors; or the JSON
/// object of [`Format::Json`].
struct Lines(Format);

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = *event.metadata().level();
        let warning = level <= Level::WARN || message.0.starts_with("warning:");
        if self.0 == Format::Json {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            // An access line is a JSON object built by `access_log`: the time goes in front.
            if event.metadata().target() == ACCESS
                && let Some(fields) = message.0.strip_prefix('{')
            {
                return writeln!(writer, "{{\"time\":\"{time}\",{fields}");
            }
            let text = message.0.strip_prefix("warning: ").unwrap_or(&message.0);
            let line = serde_json::json!({"time": time, "level": if warning { "warning" } else { "info" }, "message": text});
            return writeln!(writer, "{line}");
        }
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
