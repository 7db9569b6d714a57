//! Real text from the real SmolLM2 model, tokenized as llama.cpp tokenizes it.

use crate::util::{llamaperf, smollm2};
use llamaperf::model::tokenizer::TextCodec;
use llamaperf::model::ModelFile;

#[test]
fn smollm2_says_paris() {
    let out = llamaperf()
        .args(["run", "--model"])
        .arg(smollm2())
        .args(["--prompt", "The capital of France is", "--gen-tokens", "8"])
        .args(["--repetitions", "1", "--warmup", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Paris"), "generated: {text:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ttft_ms"));
}

#[test]
fn tokenization_has_no_prefix_space_and_splits_digits() {
    let model = ModelFile::open(&smollm2()).unwrap();
    let codec = TextCodec::from_model(&model).unwrap();
    let ids = codec.encode("The capital").unwrap();
    let tokens: Vec<String> = ids.iter().map(|&i| codec.token(i).unwrap()).collect();
    assert_eq!(tokens, ["The", "Ġcapital"]);
    let digits = codec.encode("2024").unwrap();
    assert_eq!(
        digits.len(),
        4,
        "smollm pre-tokenizer splits digits one by one"
    );
    assert_eq!(codec.decode(&ids).unwrap(), "The capital");
}

/// Prompts and the ids llama.cpp's tokenizer gives them for SmolLM2-135M-Instruct.Q4_1.gguf,
/// without BOS and without parsing special tokens. Obtained with `llama-tokenize` of llama.cpp
/// commit 0c1e570 (vendored in the PyPI sdist of llama-cpp-python 0.3.36, built with `cmake
/// --build build --target llama-tokenize`): `llama-tokenize -m MODEL -f PROMPT_FILE --no-escape
/// --ids --no-bos`, each prompt written to its file as UTF-8 bytes. The first is the issue's
/// reference.
const LLAMA_CPP_IDS: [(&str, &[u32]); 9] = [
    ("The capital of France is", &[504, 3575, 282, 4649, 314]),
    (" Hello world", &[38699, 905]),
    ("2024 and 3.14", &[34, 32, 34, 36, 284, 216, 35, 30, 33, 36]),
    (
        "Hello, world! (really?) \"yes\"; ok...",
        &[
            19556, 28, 905, 17, 365, 40311, 14199, 476, 10407, 16005, 10907, 2026,
        ],
    ),
    (
        "Ça coûte 5€ — très cher!",
        &[
            142, 225, 81, 857, 41307, 676, 216, 37, 14195, 1841, 681, 42623, 10106, 17,
        ],
    ),
    (
        "emoji 🦙 llama 日本語",
        &[
            391, 33777, 15107, 116, 243, 303, 4130, 81, 17097, 241, 115, 40993, 179, 120, 248,
        ],
    ),
    ("line one\nline two\n\n", &[1311, 582, 198, 1311, 827, 1116]),
    ("a  b   c    d", &[81, 216, 278, 256, 265, 333, 287]),
    (
        "\tx = 1;  // tab",
        &[197, 104, 446, 216, 33, 43, 216, 13241, 10147],
    ),
];

#[test]
fn token_ids_equal_llama_cpp_s() {
    let model = ModelFile::open(&smollm2()).unwrap();
    let codec = TextCodec::from_model(&model).unwrap();
    for (text, expected) in LLAMA_CPP_IDS {
        let ids = codec.encode(text).unwrap();
        assert_eq!(ids, expected, "{text:?}");
        assert_eq!(codec.decode(&ids).unwrap(), text, "{text:?} round trip");
    }
}
