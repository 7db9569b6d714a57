//! Model presets with the true shapes of the Llama family, and the tensors they are made of.

use super::config::LlamaConfig;
use super::dtype::WeightDtype;
use super::mix::{matrix_type, BlockMatrix, Matrix, MixShape};
use super::{StepWeights, TensorType};
use candle_core::quantized::GgmlDType;

/// Llama-3 RoPE frequency scaling (the `rope_scaling` of Llama 3.1/3.2 configs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3RopeScaling {
    /// Overall stretch of low frequencies (8 for 3.1, 32 for 3.2).
    pub factor: f32,
    /// Wavelengths above `original_context / low_freq_factor` are fully scaled.
    pub low_freq_factor: f32,
    /// Wavelengths below `original_context / high_freq_factor` are kept.
    pub high_freq_factor: f32,
    /// Context length of the model before scaling, in tokens.
    pub original_context: usize,
}

impl Llama3RopeScaling {
    /// Per-frequency divisors, as GGUF's `rope_freqs.weight` stores them (one per pair of dims).
    pub fn frequency_factors(&self, head_dim: usize, rope_base: f32) -> Vec<f32> {
        let low_wavelen = self.original_context as f32 / self.low_freq_factor;
        let high_wavelen = self.original_context as f32 / self.high_freq_factor;
        (0..head_dim / 2)
            .map(|i| {
                let freq = 1.0 / rope_base.powf(2.0 * i as f32 / head_dim as f32);
                let wavelen = 2.0 * std::f32::consts::PI / freq;
                if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    self.factor
                } else {
                    let smooth = (self.original_context as f32 / wavelen - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                }
            })
            .collect()
    }
}

/// A named model shape that can be synthesized or planned for.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Name used on the command line and in scenario files.
    pub name: &'static str,
    /// The model's hyper-parameters.
    pub config: LlamaConfig,
    /// Whether the output projection reuses the token embedding.
    pub tied_embeddings: bool,
    /// Llama-3 RoPE scaling, for the models that use it.
    pub rope_scaling: Option<Llama3RopeScaling>,
}

/// What role a tensor plays, which decides its data type and value range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorRole {
    /// A weight matrix, stored in the type the model's data type gives it ([`matrix_type`]).
    Matrix(Matrix),
    /// An RMSNorm scale vector, stored as f32.
    Norm,
    /// Llama-3 RoPE frequency factors, stored as f32.
    RopeFreqs,
}

/// One tensor of a model file: GGUF name, shape as (rows, columns), role.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// GGUF tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Shape in candle order: `[rows, columns]` for matrices, `[len]` for vectors.
    pub dims: Vec<usize>,
    /// Role of the tensor.
    pub role: TensorRole,
}

impl TensorSpec {
    /// Number of values.
    pub fn elements(&self) -> u64 {
        self.dims.iter().map(|&d| d as u64).product()
    }
}

const LLAMA3_1_SCALING: Llama3RopeScaling = Llama3RopeScaling {
    factor: 8.0,
    low_freq_factor: 1.0,
    high_freq_factor: 4.0,
    original_context: 8192,
};

const LLAMA3_2_SCALING: Llama3RopeScaling = Llama3RopeScaling {
    factor: 32.0,
    ..LLAMA3_1_SCALING
};

#[allow(clippy::too_many_arguments)]
fn llama(
    name: &'static str,
    layers: usize,
    hidden: usize,
    ffn: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
    context: usize,
    tied_embeddings: bool,
    rope_scaling: Option<Llama3RopeScaling>,
) -> Preset {
    let llama3 = vocab == 128_256;
    Preset {
        name,
        config: LlamaConfig {
            layers,
            hidden,
            ffn,
            heads,
            kv_heads,
            vocab,
            context,
            rope_base: if llama3 { 500_000.0 } else { 10_000.0 },
            rms_eps: 1e-5,
        },
        tied_embeddings,
        rope_scaling,
    }
}

/// Every preset, smallest first.
pub fn presets() -> Vec<Preset> {
    let s31 = Some(LLAMA3_1_SCALING);
    let s32 = Some(LLAMA3_2_SCALING);
    vec![
        llama("tiny", 2, 256, 768, 4, 2, 32_000, 2048, false, None),
        llama(
            "llama-3.2-1b",
            16,
            2048,
            8192,
            32,
            8,
            128_256,
            131_072,
            true,
            s32,
        ),
        llama(
            "llama-3.2-3b",
            28,
            3072,
            8192,
            24,
            8,
            128_256,
            131_072,
            true,
            s32,
        ),
        llama(
            "llama-3.1-8b",
            32,
            4096,
            14336,
            32,
            8,
            128_256,
            131_072,
            false,
            s31,
        ),
        llama(
            "llama-2-7b",
            32,
            4096,
            11008,
            32,
            32,
            32_000,
            4096,
            false,
            None,
        ),
        llama(
            "llama-2-13b",
            40,
            5120,
            13824,
            40,
            40,
            32_000,
            4096,
            false,
            None,
        ),
        llama(
            "llama-3.1-70b",
            80,
            8192,
            28672,
            64,
            8,
            128_256,
            131_072,
            false,
            s31,
        ),
        llama(
            "llama-3.1-405b",
            126,
            16384,
            53248,
            128,
            8,
            128_256,
            131_072,
            false,
            s31,
        ),
    ]
}

/// The preset called `name`, if there is one.
pub fn find_preset(name: &str) -> Option<Preset> {
    presets().into_iter().find(|p| p.name == name)
}

/// Names of all presets, for error messages.
pub fn preset_names() -> Vec<&'static str> {
    presets().iter().map(|p| p.name).collect()
}

/// The preset whose name is closest to `given` (edit distance), however far.
pub fn nearest_preset(given: &str) -> &'static str {
    presets()
        .iter()
        .map(|p| p.name)
        .min_by_key(|name| strsim::damerau_levenshtein(given, name))
        .unwrap_or_default()
}

impl Preset {
    /// The tensors of this model in GGUF naming and file order.
    pub fn tensors(&self) -> Vec<TensorSpec> {
        let c = &self.config;
        let t = |name: String, dims: Vec<usize>, role| TensorSpec { name, dims, role };
        let mut out = vec![t(
            "token_embd.weight".into(),
            vec![c.vocab, c.hidden],
            TensorRole::Matrix(Matrix::TokenEmbd),
        )];
        if self.rope_scaling.is_some() {
            out.push(t(
                "rope_freqs.weight".into(),
                vec![c.head_dim() / 2],
                TensorRole::RopeFreqs,
            ));
        }
        for i in 0..c.layers {
            let norm = |s: &str| {
                t(
                    format!("blk.{i}.{s}.weight"),
                    vec![c.hidden],
                    TensorRole::Norm,
                )
            };
            let m = |kind: BlockMatrix, rows, cols| {
                t(
                    kind.gguf_name(i),
                    vec![rows, cols],
                    TensorRole::Matrix(Matrix::Block(kind, i)),
                )
            };
            out.push(norm("attn_norm"));
            out.push(m(BlockMatrix::AttnQ, c.hidden, c.hidden));
            out.push(m(BlockMatrix::AttnK, c.kv_dim(), c.hidden));
            out.push(m(BlockMatrix::AttnV, c.kv_dim(), c.hidden));
            out.push(m(BlockMatrix::AttnOutput, c.hidden, c.hidden));
            out.push(norm("ffn_norm"));
            out.push(m(BlockMatrix::FfnGate, c.ffn, c.hidden));
            out.push(m(BlockMatrix::FfnUp, c.ffn, c.hidden));
            out.push(m(BlockMatrix::FfnDown, c.hidden, c.ffn));
        }
        out.push(t(
            "output_norm.weight".into(),
            vec![c.hidden],
            TensorRole::Norm,
        ));
        if !self.tied_embeddings {
            out.push(t(
                "output.weight".into(),
                vec![c.vocab, c.hidden],
                TensorRole::Matrix(Matrix::Output),
            ));
        }
        out
    }

    /// What llama.cpp's quantization rules look at of this model's shape.
    pub fn mix_shape(&self) -> MixShape {
        let c = &self.config;
        MixShape {
            layers: c.layers,
            tied_embeddings: self.tied_embeddings,
            llama_70b: c.layers == 80 && c.kv_heads != c.heads,
            query_groups: c.heads / c.kv_heads,
        }
    }

    /// The type `tensor` is stored in when the model's matrices are `dtype` (norms and RoPE
    /// factors are f32).
    pub fn tensor_type(&self, tensor: &TensorSpec, dtype: WeightDtype) -> TensorType {
        match tensor.role {
            TensorRole::Matrix(m) => matrix_type(dtype, m, tensor.dims[1], &self.mix_shape()),
            TensorRole::Norm | TensorRole::RopeFreqs => TensorType::Candle(GgmlDType::F32),
        }
    }

    /// Bytes `tensor` takes when the model's matrices are `dtype`.
    pub fn tensor_bytes(&self, tensor: &TensorSpec, dtype: WeightDtype) -> u64 {
        self.tensor_type(tensor, dtype).bytes_for(tensor.elements())
    }

    /// Number of trainable parameters (RoPE factors excluded).
    pub fn param_count(&self) -> u64 {
        self.tensors()
            .iter()
            .filter(|t| t.role != TensorRole::RopeFreqs)
            .map(TensorSpec::elements)
            .sum()
    }

    /// Bytes of all tensors when the matrices are stored as `dtype`, each in its own type.
    pub fn weight_bytes(&self, dtype: WeightDtype) -> u64 {
        self.tensors()
            .iter()
            .map(|t| self.tensor_bytes(t, dtype))
            .sum()
    }

    /// What a forward pass reads of the weights when the matrices are stored as `dtype`.
    pub fn step_weights(&self, dtype: WeightDtype) -> StepWeights {
        let tensors = self.tensors();
        StepWeights::of(
            tensors.iter().map(|t| {
                (
                    t.name.as_str(),
                    t.dims[0] as u64,
                    self.tensor_bytes(t, dtype),
                )
            }),
            self.tied_embeddings,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn billions(p: &str) -> f64 {
        find_preset(p).unwrap().param_count() as f64 / 1e9
    }

    #[test]
    fn parameter_counts_match_published_sizes() {
        // Published sizes: 1.24B, 3.21B, 8.03B, 6.74B, 13.0B, 70.6B, 405.9B.
        for (name, want) in [
            ("llama-3.2-1b", 1.236),
            ("llama-3.2-3b", 3.213),
            ("llama-3.1-8b", 8.030),
            ("llama-2-7b", 6.738),
            ("llama-2-13b", 13.016),
            ("llama-3.1-70b", 70.554),
            ("llama-3.1-405b", 405.85),
        ] {
            let got = billions(name);
            assert!((got - want).abs() / want < 0.002, "{name}: {got} vs {want}");
        }
    }

    #[test]
    fn kv_cache_of_llama_3_1_8b_is_128_kib_per_token_in_f16() {
        let p = find_preset("llama-3.1-8b").unwrap();
        assert_eq!(
            p.config.kv_bytes_per_token(crate::model::KvDtype::F16),
            131_072
        );
    }

    #[test]
    fn every_matrix_row_is_whole_k_quant_blocks() {
        for p in presets() {
            for t in p
                .tensors()
                .iter()
                .filter(|t| matches!(t.role, TensorRole::Matrix(_)))
            {
                assert_eq!(t.dims[1] % 256, 0, "{} {}", p.name, t.name);
            }
        }
    }

    #[test]
    fn llama3_rope_factors_keep_high_and_stretch_low_frequencies() {
        let s = LLAMA3_1_SCALING;
        let f = s.frequency_factors(128, 500_000.0);
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "{f:?}");
        assert!(f.iter().any(|&x| x > 1.0 && x < 8.0));
    }
}
