//! candle's errors as one line of cause: candle attaches a backtrace of some 40 frames to its
//! errors whenever `RUST_BACKTRACE` is set, and puts context on lines of its own; neither
//! belongs in a message to a user or in a results file.

use candle_core::Error;

/// The cause of `err` on one line, without candle's backtrace; context comes first, joined
/// by ": ".
pub fn cause(err: &Error) -> String {
    match err {
        Error::WithBacktrace { inner, .. } => cause(inner),
        Error::Context { inner, context } => format!("{context}: {}", cause(inner)),
        Error::WithPath { inner, path } => format!("{}: {}", path.display(), cause(inner)),
        Error::WrappedContext { wrapped, context } => format!("{context}: {wrapped}"),
        other => one_line(&other.to_string()),
    }
}

/// The non-empty lines of `text`, trimmed and joined by ": ".
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::backtrace::Backtrace;

    #[test]
    fn the_backtrace_is_dropped_and_context_joins_the_line() {
        let err = Error::WithBacktrace {
            inner: Box::new(Error::Msg("unknown magic 0x00000000".into())),
            backtrace: Box::new(Backtrace::force_capture()),
        };
        assert!(err.to_string().lines().count() > 1);
        assert_eq!(cause(&err), "unknown magic 0x00000000");
        let err = err.context("reading the header");
        assert_eq!(cause(&err), "reading the header: unknown magic 0x00000000");
    }
}
