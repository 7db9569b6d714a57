//! The specification of one run: the only input of a worker process (JSON on its stdin).

use crate::engine::EngineKind;
use crate::machine::InstancePlacement;
use crate::model::source::ResolvedModel;
use crate::model::{KvDtype, ModelFormat};
use crate::scenario::RunConfig;
use llamaperf_llama_cpp::FlashAttn;
use serde::{Deserialize, Serialize};

/// Where the prompt tokens come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prompt {
    /// `tokens` seeded random token ids per sequence, different for every sequence.
    Synthetic {
        /// Prompt length in tokens.
        tokens: usize,
    },
    /// A text, tokenized with the model's own tokenizer; every sequence gets the same ids.
    Text {
        /// The text as given.
        text: String,
        /// Its token ids.
        ids: Vec<u32>,
    },
}

impl Prompt {
    /// Prompt length in tokens.
    pub fn tokens(&self) -> usize {
        match self {
            Prompt::Synthetic { tokens } => *tokens,
            Prompt::Text { ids, .. } => ids.len(),
        }
    }
}

/// Everything a worker needs to measure one instance of a run: the worker's only input (JSON
/// on its stdin), and what `plan.json` and every `runs.jsonl` line hold of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The run as configured: its axes (the run id) and how it is measured (engine, batch,
    /// tokens, repetitions, seed, counters, read probe).
    pub config: RunConfig,
    /// The model file to load.
    pub model: ResolvedModel,
    /// The prompt of every sequence.
    pub prompt: Prompt,
    /// Where the worker computes (one thread per PU) and where its memory lives.
    pub placement: InstancePlacement,
    /// Wait after loading and pinning until the parent says `go` (parallel instances).
    pub start_barrier: bool,
    /// Why llama.cpp's AMX variants must not run in this attempt (an earlier attempt of the
    /// run died by SIGILL); `None`: the AMX probe decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amx_refused: Option<String>,
}

/// A run specification that cannot be executed, with what is allowed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    /// A count that must be at least 1 is 0.
    #[error("{what} must be at least 1, got 0")]
    Zero {
        /// The parameter, as the CLI names it.
        what: &'static str,
    },
    /// The depth, the prompt and the generated tokens do not fit the context.
    #[error("{}prompt ({prompt}) + gen tokens ({gen}) = {} exceeds the context of {limit} tokens ({why})",
        if *depth > 0 { format!("depth ({depth}) + ") } else { String::new() }, depth + prompt + gen)]
    ContextTooLong {
        /// Tokens already in the cache before the prompt.
        depth: usize,
        /// Prompt tokens.
        prompt: usize,
        /// Generated tokens.
        gen: usize,
        /// The limit.
        limit: usize,
        /// Where the limit comes from.
        why: String,
    },
    /// The engine does not take this setting's value.
    #[error("engine '{engine}' cannot run {key} = {value}; allowed: {allowed}")]
    SettingUnsupported {
        /// The engine.
        engine: EngineKind,
        /// The scenario key (its `run` flag is `--` and the key with dashes).
        key: &'static str,
        /// The value asked for.
        value: String,
        /// What the engine takes.
        allowed: String,
    },
    /// An `openai` run without a server, or with two.
    #[error("engine 'openai' needs exactly one of url (a running server) or server_command (one started per run), got {0}")]
    ServerSource(&'static str),
    /// The engine cannot load a Hugging Face model folder.
    #[error("engine '{engine}' reads GGUF files only; a Hugging Face model folder runs on engine 'torch'")]
    FolderUnsupported {
        /// The engine.
        engine: EngineKind,
    },
    /// The engine cannot run this batch size.
    #[error("engine '{engine}' supports batch up to {max}, got {batch}")]
    BatchUnsupported {
        /// The engine.
        engine: EngineKind,
        /// Largest batch it runs.
        max: usize,
        /// Batch asked for.
        batch: usize,
    },
}

impl RunSpec {
    /// The spec of one instance of the run `config`: its model, prompt and placement; with
    /// several instances, each waits for the others at the start barrier.
    pub fn of(
        config: &RunConfig,
        model: ResolvedModel,
        prompt: Prompt,
        placement: InstancePlacement,
    ) -> Self {
        RunSpec {
            config: config.clone(),
            model,
            prompt,
            placement,
            start_barrier: config.instances > 1,
            amx_refused: None,
        }
    }

    /// Compute threads of the worker: one per PU of its placement.
    pub fn threads(&self) -> usize {
        self.placement.pus.len()
    }

    /// Tokens of context one sequence needs: depth, prompt and generated tokens.
    pub fn context_tokens(&self) -> usize {
        self.config.depth + self.prompt.tokens() + self.config.gen_tokens
    }
}

/// Checks the counts that must be at least 1, named as the command line names them.
pub fn check_counts(config: &RunConfig, prompt_tokens: usize) -> Result<(), SpecError> {
    for (what, value) in [
        ("--batch", config.batch),
        ("--prompt-tokens", prompt_tokens),
        ("--gen-tokens", config.gen_tokens),
        ("--repetitions", config.repetitions),
    ] {
        if value == 0 {
            return Err(SpecError::Zero { what });
        }
    }
    Ok(())
}

/// Checks that the run's engine takes its engine settings: a KV cache type it keeps (none for
/// `openai`, whose server sets its own, nor a depth; none for `torch`, whose cache is in its
/// data type); `flash_attn` and `ubatch` only for
/// llama.cpp, whose quantized V cache needs flash attention.
pub fn check_settings(config: &RunConfig) -> Result<(), SpecError> {
    let engine = config.engine;
    let unsupported = |key, value: String, allowed: String| SpecError::SettingUnsupported {
        engine,
        key,
        value,
        allowed,
    };
    if engine == EngineKind::OpenAi && config.depth > 0 {
        let none = "0: a server's requests start from an empty cache".to_string();
        return Err(unsupported("depth", config.depth.to_string(), none));
    }
    if let (EngineKind::OpenAi, Some(kv)) = (engine, config.kv_dtype) {
        let own = "none: the server's own flags in server_command set its cache".to_string();
        return Err(unsupported("kv_dtype", kv.to_string(), own));
    }
    if let (EngineKind::Torch, Some(kv)) = (engine, config.kv_dtype) {
        let own = "none: torch keeps its cache in torch_dtype".to_string();
        return Err(unsupported("kv_dtype", kv.to_string(), own));
    }
    if let Some(kv) = config.kv_dtype {
        let kept = engine.kv_dtypes();
        if !kept.contains(&kv) {
            let names: Vec<&str> = kept.iter().map(|k| k.name()).collect();
            return Err(unsupported("kv_dtype", kv.to_string(), names.join(", ")));
        }
    }
    if engine != EngineKind::LlamaCpp {
        let only = "only engine llama.cpp has this setting".to_string();
        if config.flash_attn != FlashAttn::Auto {
            return Err(unsupported(
                "flash_attn",
                config.flash_attn.to_string(),
                only,
            ));
        }
        if let Some(ubatch) = config.ubatch {
            return Err(unsupported("ubatch", ubatch.to_string(), only));
        }
    } else if config.kv_dtype == Some(KvDtype::Q8_0) && config.flash_attn == FlashAttn::Off {
        return Err(unsupported(
            "flash_attn",
            "off with kv_dtype = q8_0".into(),
            "auto or on (llama.cpp quantizes the V cache only with flash attention)".into(),
        ));
    }
    Ok(())
}

/// Checks that an `openai` run names its server once: `url` or `server_command`.
pub fn check_server(config: &RunConfig) -> Result<(), SpecError> {
    if config.engine != EngineKind::OpenAi {
        return Ok(());
    }
    match (&config.serving.url, &config.serving.server_command) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        (None, None) => Err(SpecError::ServerSource("neither")),
        (Some(_), Some(_)) => Err(SpecError::ServerSource("both")),
    }
}

/// Checks that `engine` can load a model stored as `format`: a Hugging Face folder runs on
/// `torch` only (the other engines read GGUF files).
pub fn check_format(engine: EngineKind, format: ModelFormat) -> Result<(), SpecError> {
    match (engine, format) {
        (_, ModelFormat::Gguf) | (EngineKind::Torch, ModelFormat::HfFolder) => Ok(()),
        (engine, ModelFormat::HfFolder) => Err(SpecError::FolderUnsupported { engine }),
    }
}

/// Checks that `engine` can run `batch` sequences of `depth + prompt + gen` tokens (the
/// tuple's) of a model whose context is `model_context` tokens.
pub fn check_fit(
    engine: EngineKind,
    batch: usize,
    (depth, prompt, gen): (usize, usize, usize),
    model_context: usize,
) -> Result<(), SpecError> {
    if batch > engine.max_batch() {
        return Err(SpecError::BatchUnsupported {
            engine,
            max: engine.max_batch(),
            batch,
        });
    }
    let limit = engine.max_context(model_context);
    if depth + prompt + gen > limit {
        let why = if limit < model_context {
            format!("engine '{engine}' limit")
        } else {
            "the model's context_length".to_string()
        };
        return Err(SpecError::ContextTooLong {
            depth,
            prompt,
            gen,
            limit,
            why,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_torch_loads_a_hugging_face_folder() {
        for engine in EngineKind::ALL {
            assert!(check_format(engine, ModelFormat::Gguf).is_ok());
            let folder = check_format(engine, ModelFormat::HfFolder);
            assert_eq!(folder.is_ok(), engine == EngineKind::Torch, "{engine}");
        }
        let e = check_format(EngineKind::Tuned, ModelFormat::HfFolder)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "engine 'tuned' reads GGUF files only; a Hugging Face model folder runs on engine 'torch'"
        );
    }
}
