//! A small incremental parser for `text/event-stream` bodies (WHATWG HTML §9.2): bytes arrive in
//! arbitrary chunks; complete events come out. Comments and events without data — such as the
//! empty priming event some servers send first — are skipped.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    event: String,
    data: Vec<String>,
    id: Option<String>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; every event completed by them, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n' || b == b'\r') {
            // A CR at the very end may be the first half of CRLF: wait for more.
            if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() {
                break;
            }
            let skip = if self.buffer[end] == b'\r' && self.buffer.get(end + 1) == Some(&b'\n') { 2 } else { 1 };
            let line: Vec<u8> = self.buffer.drain(..end + skip).take(end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(event) = self.line(&line) {
                out.push(event);
            }
        }
        out
    }

    /// End of stream: a final event without its blank line is dispatched too.
    pub fn finish(&mut self) -> Option<Event> {
        let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).into_owned();
        let mut last = None;
        if !rest.is_empty() {
            last = self.line(rest.trim_end_matches('\r'));
        }
        last.or_else(|| self.line(""))
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let data = std::mem::take(&mut self.data);
            let event = std::mem::take(&mut self.event);
            if data.is_empty() || data.iter().all(|d| d.is_empty()) {
                return None;
            }
            return Some(Event {
                event: if event.is_empty() { "message".into() } else { event },
                data: data.join("\n"),
                id: self.id.clone(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => self.data.push(value.to_owned()),
            "event" => self.event = value.to_owned(),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_priming_skipped() {
        let mut p = Parser::new();
        let mut events = Vec::new();
        // An empty priming event (id only), a comment, then a message cut at awkward places.
        for chunk in ["id: 0\ndata:\n\n", ": keep-alive\n", "event: mess", "age\ndata: {\"a\":", "1}\r", "\n\r\n"] {
            events.extend(p.push(chunk.as_bytes()));
        }
        assert_eq!(events, vec![Event { event: "message".into(), data: "{\"a\":1}".into(), id: Some("0".into()) }]);
    }

    #[test]
    fn multi_line_data_and_unterminated_last_event() {
        let mut p = Parser::new();
        assert!(p.push(b"data: a\ndata: b").is_empty());
        let last = p.finish().unwrap();
        assert_eq!(last.data, "a\nb");
    }
}
