//! Reading an OpenAI streaming response: server-sent events whose `data:` lines hold JSON
//! chunks, ending with `data: [DONE]`. Each chunk with text (`choices[0].text` of
//! completions, `choices[0].delta.content` of chat) is one content token; a chunk with
//! `usage` says how many tokens the server counted.

use serde_json::Value;
use std::io::BufRead;
use std::time::Instant;

/// What a complete stream said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamEnd {
    /// Content chunks received.
    pub chunks: usize,
    /// `usage.completion_tokens`, when the server sent it.
    pub completion_tokens: Option<usize>,
    /// `usage.prompt_tokens`, when the server sent it.
    pub prompt_tokens: Option<usize>,
}

/// Why a stream did not end well, with the content chunks received before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (after {chunks} content chunks)")]
pub struct StreamError {
    /// What went wrong.
    pub reason: String,
    /// Content chunks received before.
    pub chunks: usize,
}

/// The first `n` characters of `text`, for error messages.
pub fn excerpt(text: &str, n: usize) -> String {
    let cut: String = text.chars().take(n).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Whether a chunk carries generated text.
fn has_content(chunk: &Value) -> bool {
    let choice = &chunk["choices"][0];
    [&choice["text"], &choice["delta"]["content"]]
        .iter()
        .any(|t| t.as_str().is_some_and(|s| !s.is_empty()))
}

/// Reads the events of `stream` to `[DONE]`, calling `on_content` at the arrival of each
/// content chunk; a data line that is not JSON, a chunk with an `error`, a read error (a
/// timeout) or an end before `[DONE]` is a [`StreamError`].
pub fn read_stream(
    stream: impl BufRead,
    mut on_content: impl FnMut(Instant),
) -> Result<StreamEnd, StreamError> {
    let mut end = StreamEnd::default();
    let fail = |reason: String, chunks| Err(StreamError { reason, chunks });
    for line in stream.lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => return fail(read_error(&e), end.chunks),
        };
        let Some(data) = line.strip_prefix("data:") else {
            continue; // blank separators, comments (`:`), `event:` and `id:` fields
        };
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(end);
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(_) => {
                return fail(
                    format!("malformed SSE: data is not JSON: {}", excerpt(data, 80)),
                    end.chunks,
                )
            }
        };
        if let Some(error) = chunk.get("error") {
            return fail(
                format!(
                    "server error in stream: {}",
                    excerpt(&error.to_string(), 200)
                ),
                end.chunks,
            );
        }
        if has_content(&chunk) {
            on_content(Instant::now());
            end.chunks += 1;
        }
        let count = |key: &str| chunk["usage"][key].as_u64().map(|n| n as usize);
        end.completion_tokens = count("completion_tokens").or(end.completion_tokens);
        end.prompt_tokens = count("prompt_tokens").or(end.prompt_tokens);
    }
    fail("stream ended before data: [DONE]".into(), end.chunks)
}

/// Words for an error while reading the body: a timeout says so.
fn read_error(e: &std::io::Error) -> String {
    let timed_out = matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) || e.to_string().contains("timeout");
    if timed_out {
        format!("timed out while streaming: {e}")
    } else {
        format!("reading the stream: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Result<StreamEnd, StreamError>, usize) {
        let mut seen = 0;
        let end = read_stream(text.as_bytes(), |_| seen += 1);
        (end, seen)
    }

    #[test]
    fn content_chunks_and_usage_of_completions_and_chat() {
        let text = "data: {\"choices\":[{\"text\":\"Hi\"}]}\n\n: keep-alive\n\n\
                    data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n\
                    data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n\
                    data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n\
                    data: [DONE]\n\n";
        let (end, seen) = read(text);
        assert_eq!(
            end.unwrap(),
            StreamEnd {
                chunks: 2,
                completion_tokens: Some(3),
                prompt_tokens: Some(5)
            }
        );
        assert_eq!(seen, 2);
    }

    #[test]
    fn malformed_data_an_error_chunk_and_a_cut_stream_fail_with_their_reason() {
        let (end, _) = read("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {nope\n\n");
        let err = end.unwrap_err();
        assert_eq!(err.chunks, 1);
        assert!(err.reason.starts_with("malformed SSE"), "{err}");
        let (end, _) = read("data: {\"error\":{\"message\":\"boom\"}}\n\n");
        assert!(end.unwrap_err().reason.contains("boom"));
        let (end, _) = read("data: {\"choices\":[{\"text\":\"a\"}]}\n\n");
        assert!(end.unwrap_err().reason.contains("before data: [DONE]"));
    }
}
