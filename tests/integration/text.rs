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
