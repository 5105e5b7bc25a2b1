//! Structured JSON logs for every function.
//!
//! Each line is one JSON object carrying the Lambda request id (from the runtime's
//! invoke span) and, inside handlers, the API Gateway request id, so one request can be
//! followed across functions. Every line passes through [`crate::redact::scrub`].

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, first thing in `main`.
///
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's logging controls), then
/// `RUST_LOG`, then `info`.
pub fn init() {
    let directive = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    let filter = EnvFilter::try_new(directive.to_ascii_lowercase())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests, benches) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        // Every enclosing span, so a line carries both the Lambda request id (runtime
        // span) and the API Gateway request id (our request span).
        .with_current_span(false)
        .with_span_list(true)
        .flatten_event(true)
        .with_writer(ScrubbingStdout)
        .try_init();
}

/// Writes each formatted log line to stdout after masking personal data in it.
#[derive(Clone, Copy, Default)]
pub struct ScrubbingStdout;

impl<'a> MakeWriter<'a> for ScrubbingStdout {
    type Writer = ScrubbingWriter<io::Stdout>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter::new(io::stdout())
    }
}

/// Buffers one event's output and writes it scrubbed when dropped.
pub struct ScrubbingWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> ScrubbingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buffer: Vec::with_capacity(256),
        }
    }
}

impl<W: Write> Write for ScrubbingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let clean = crate::redact::scrub(&text);
        self.inner.write_all(clean.as_bytes())?;
        self.buffer.clear();
        self.inner.flush()
    }
}

impl<W: Write> Drop for ScrubbingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_masks_what_passes_through() {
        let mut sink = Vec::new();
        {
            let mut w = ScrubbingWriter::new(&mut sink);
            w.write_all(br#"{"msg":"sms to +79318702901 and ivan@mail.ru"}"#)
                .unwrap();
        }
        assert_eq!(
            String::from_utf8(sink).unwrap(),
            r#"{"msg":"sms to [phone] and [email]"}"#
        );
    }
}
