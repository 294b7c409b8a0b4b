//! Rendering: plain aligned tables (comfy-table, no borders, like the seed's listings) and JSON,
//! written to stdout where a closed pipe (`| head -1`) ends the output quietly.

use std::io::{self, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use serde::Serialize;

/// Columns separated by two spaces, no borders, no wrapping, no trailing spaces.
pub fn table<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(header.iter().copied());
    for row in rows {
        table.add_row(row.as_ref().iter().map(|c| crate::validate::printable(c)));
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2)).set_cell_alignment(CellAlignment::Left);
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Pretty JSON with a trailing newline; characters that could drive a terminal (C1, bidi,
/// invisible) are JSON-escaped, which leaves the document's meaning unchanged.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    Ok(crate::validate::escape_json(&serde_json::to_string_pretty(value)?) + "\n")
}

/// Write `text` to stdout. A reader that went away (EPIPE) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(e).context("cannot write to stdout")),
        _ => Ok(()),
    }
}

/// A diagnostic line on stderr (never data).
pub fn note(text: impl AsRef<str>) {
    let _ = writeln!(io::stderr().lock(), "{}", text.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_seed_layout() {
        let rows = vec![
            vec!["default".to_string(), "svc-myprof".into(), "schema.read tags.read".into(), "yes".into(), "2026-10-11".into()],
            vec!["ci-bot".to_string(), "ci-bot".into(), "orders.read".into(), "no".into(), "2025-11-10".into()],
        ];
        let text = table(&["NAME", "CLIENT_ID", "SCOPES", "PRIMARY", "EXPIRES"], &rows);
        let want = "NAME     CLIENT_ID   SCOPES                 PRIMARY  EXPIRES\n\
                    default  svc-myprof  schema.read tags.read  yes      2026-10-11\n\
                    ci-bot   ci-bot      orders.read            no       2025-11-10\n";
        assert_eq!(text, want);
    }
}
