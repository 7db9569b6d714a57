//! The messages between the Rust worker and `python/torch_worker.py`: one line of JSON each
//! way per message, the load request first, then `reset` and `forward` requests.

use super::settings::{TorchBackend, TorchDtype};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The first line the Python worker reads: what to load and how.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRequest<'a> {
    /// A GGUF file (dequantized by transformers) or a Hugging Face model folder.
    pub model: &'a Path,
    /// What torch does to the model.
    pub backend: TorchBackend,
    /// The data type it runs in.
    pub dtype: TorchDtype,
    /// Intra-op threads: one per PU of the placement.
    pub threads: usize,
    /// Sequences per forward.
    pub batch: usize,
    /// Longest sequence, tokens (depth + prompt + generated).
    pub context: usize,
}

/// What the Python worker loaded, as it reports it once ready.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// torch's version.
    pub torch: String,
    /// transformers' version.
    pub transformers: String,
    /// The extension and its version (`ipex 2.8.0`, `zentorch 2.14.0.1`), if any.
    #[serde(default)]
    pub extension: Option<String>,
    /// torch's intra-op threads.
    pub threads: usize,
    /// GGUF tensor types dequantized on load (empty for a Hugging Face folder).
    #[serde(default)]
    pub source_dtypes: Vec<String>,
    /// Reading (and dequantizing) the model, s.
    pub load_s: f64,
    /// Compiling or optimizing it, with the warm-up that finishes that, s.
    #[serde(default)]
    pub optimize_s: f64,
    /// What the worker did to the model that a reader should know.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The answer to the load request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadReply {
    /// Loaded and ready for requests.
    Ready(Ready),
    /// Loading failed; the message says why.
    Error(String),
}

/// A request after the load.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Forget the KV cache.
    Reset,
    /// Run `ids` (`batch` sequences of equal length) at positions `pos..`, appending to the
    /// cache; answered by the greedy next token of each sequence.
    Forward {
        /// Token ids per sequence.
        ids: Vec<Vec<u32>>,
        /// Tokens already cached per sequence.
        pos: usize,
    },
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// A forward's greedy next token per sequence.
    Next {
        /// Token ids, one per sequence.
        next: Vec<u32>,
    },
    /// A reset done.
    Ok {
        /// Always true.
        ok: bool,
    },
    /// The request failed; the message says why.
    Error {
        /// What went wrong.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_documented_lines() {
        let forward = Request::Forward {
            ids: vec![vec![1, 2], vec![3, 4]],
            pos: 7,
        };
        assert_eq!(
            serde_json::to_string(&forward).unwrap(),
            r#"{"op":"forward","ids":[[1,2],[3,4]],"pos":7}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Reset).unwrap(),
            r#"{"op":"reset"}"#
        );
        let load = LoadRequest {
            model: Path::new("/m.gguf"),
            backend: TorchBackend::Ipex,
            dtype: TorchDtype::Bf16,
            threads: 2,
            batch: 1,
            context: 160,
        };
        assert_eq!(
            serde_json::to_string(&load).unwrap(),
            r#"{"model":"/m.gguf","backend":"ipex","dtype":"bf16","threads":2,"batch":1,"context":160}"#
        );
    }

    #[test]
    fn replies_parse_by_their_shape() {
        let r: Reply = serde_json::from_str(r#"{"next":[5,6]}"#).unwrap();
        assert_eq!(r, Reply::Next { next: vec![5, 6] });
        let r: Reply = serde_json::from_str(r#"{"ok":true}"#).unwrap();
        assert_eq!(r, Reply::Ok { ok: true });
        let r: Reply = serde_json::from_str(r#"{"error":"pos 3, cache holds 2"}"#).unwrap();
        assert!(matches!(r, Reply::Error { .. }));
        let ready = r#"{"ready":{"torch":"2.8.0","transformers":"4.51.3","extension":null,"backend":"eager","dtype":"f32","threads":2,"source_dtypes":["Q4_1"],"load_s":17.0,"optimize_s":0.0,"notes":[]}}"#;
        match serde_json::from_str::<LoadReply>(ready).unwrap() {
            LoadReply::Ready(r) => assert_eq!(r.source_dtypes, ["Q4_1"]),
            other => panic!("{other:?}"),
        }
        let failed: LoadReply = serde_json::from_str(r#"{"error":"no module torch"}"#).unwrap();
        assert_eq!(failed, LoadReply::Error("no module torch".into()));
    }
}
