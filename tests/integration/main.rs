//! Integration tests: the real `llamaperf` binary, real worker processes, real GGUF files.

#![forbid(unsafe_code)]

mod bad_input;
mod calibrate;
mod compare;
mod depth;
mod energy;
mod engine_oracle;
mod engines;
mod faults;
mod fleet;
mod guards;
mod history;
mod kv_q8;
mod llama_cpp;
mod llama_cpp_engine;
mod openai;
mod pinning;
mod plan;
mod report;
mod report_html;
mod run_cli;
mod scenarios;
mod stages;
mod sweep;
mod synth;
mod text;
mod torch;
mod torch_folder;
mod util;
