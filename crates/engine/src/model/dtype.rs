//! Weight data types a synthetic model can be written in.

use super::tensor_type::TensorType;
use candle_core::quantized::GgmlDType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The data type of a model's weight matrices (norms are always f32): one type for every matrix,
/// or one of the mixes llama.cpp's `llama-quantize` makes ([`WeightDtype::is_mix`]), which
/// gives some matrices more bits than the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WeightDtype {
    /// 32-bit float, 4 bytes per weight.
    #[serde(rename = "f32")]
    F32,
    /// IEEE half precision, 2 bytes per weight.
    #[serde(rename = "f16")]
    F16,
    /// bfloat16, 2 bytes per weight.
    #[serde(rename = "bf16")]
    Bf16,
    /// 8-bit blocks of 32 with an f16 scale: 34 bytes per 32 weights.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// 4-bit blocks of 32 with an f16 scale: 18 bytes per 32 weights.
    #[serde(rename = "q4_0")]
    Q4_0,
    /// 4-bit blocks of 32 with an f16 scale and minimum: 20 bytes per 32 weights.
    #[serde(rename = "q4_1")]
    Q4_1,
    /// 4-bit k-quant super-blocks of 256: 144 bytes per 256 weights.
    #[serde(rename = "q4_k")]
    Q4K,
    /// 6-bit k-quant super-blocks of 256: 210 bytes per 256 weights.
    #[serde(rename = "q6_k")]
    Q6K,
    /// llama.cpp's Q4_K_M: Q4_K, with Q6_K for the output and for half of the layers' value
    /// and FFN down projections.
    #[serde(rename = "q4_k_m")]
    Q4KM,
    /// llama.cpp's Q5_K_M: Q5_K (176 bytes per 256 weights), with Q6_K as in Q4_K_M.
    #[serde(rename = "q5_k_m")]
    Q5KM,
    /// llama.cpp's Q3_K_M: Q3_K (110 bytes per 256 weights), with Q4_K and Q5_K for the value,
    /// attention output and FFN down projections and Q6_K for the output.
    #[serde(rename = "q3_k_m")]
    Q3KM,
    /// llama.cpp's Q2_K: Q2_K (84 bytes per 256 weights), with Q3_K for the attention output
    /// and FFN down projections, Q3_K or Q4_K for the value projections and Q6_K for the
    /// output.
    #[serde(rename = "q2_k")]
    Q2KMix,
    /// llama.cpp's IQ4_XS: IQ4_XS (136 bytes per 256 weights), with Q6_K for the output and
    /// Q5_K for the value projections of grouped-query attention and the first eighth of the
    /// FFN down projections.
    #[serde(rename = "iq4_xs")]
    Iq4Xs,
}

/// Error for a data type name that is not one of [`WeightDtype::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown dtype '{given}'; valid dtypes: {}", WeightDtype::names().join(", "))]
pub struct UnknownDtype {
    /// The name as the user wrote it.
    pub given: String,
}

impl WeightDtype {
    /// Every supported data type, in the order `model list` shows them.
    pub const ALL: [WeightDtype; 13] = [
        WeightDtype::F32,
        WeightDtype::F16,
        WeightDtype::Bf16,
        WeightDtype::Q8_0,
        WeightDtype::Q4_0,
        WeightDtype::Q4_1,
        WeightDtype::Q4K,
        WeightDtype::Q6K,
        WeightDtype::Q4KM,
        WeightDtype::Q5KM,
        WeightDtype::Q3KM,
        WeightDtype::Q2KMix,
        WeightDtype::Iq4Xs,
    ];

    /// The lower-case name used in scenario files, file names and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "f32",
            WeightDtype::F16 => "f16",
            WeightDtype::Bf16 => "bf16",
            WeightDtype::Q8_0 => "q8_0",
            WeightDtype::Q4_0 => "q4_0",
            WeightDtype::Q4_1 => "q4_1",
            WeightDtype::Q4K => "q4_k",
            WeightDtype::Q6K => "q6_k",
            WeightDtype::Q4KM => "q4_k_m",
            WeightDtype::Q5KM => "q5_k_m",
            WeightDtype::Q3KM => "q3_k_m",
            WeightDtype::Q2KMix => "q2_k",
            WeightDtype::Iq4Xs => "iq4_xs",
        }
    }

    /// Whether this is a llama.cpp mix, whose matrices do not all have
    /// [`WeightDtype::tensor_type`]'s type.
    pub fn is_mix(self) -> bool {
        matches!(
            self,
            WeightDtype::Q4KM
                | WeightDtype::Q5KM
                | WeightDtype::Q3KM
                | WeightDtype::Q2KMix
                | WeightDtype::Iq4Xs
        )
    }

    /// All names, for error messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|d| d.name()).collect()
    }

    /// The tensor type of the matrices: of every one, or of most of them in a mix (its
    /// llama.cpp default type).
    pub fn tensor_type(self) -> TensorType {
        let ggml = match self {
            WeightDtype::F32 => GgmlDType::F32,
            WeightDtype::F16 => GgmlDType::F16,
            WeightDtype::Bf16 => GgmlDType::BF16,
            WeightDtype::Q8_0 => GgmlDType::Q8_0,
            WeightDtype::Q4_0 => GgmlDType::Q4_0,
            WeightDtype::Q4_1 => GgmlDType::Q4_1,
            WeightDtype::Q4K => GgmlDType::Q4K,
            WeightDtype::Q6K => GgmlDType::Q6K,
            WeightDtype::Q4KM => GgmlDType::Q4K,
            WeightDtype::Q5KM => GgmlDType::Q5K,
            WeightDtype::Q3KM => GgmlDType::Q3K,
            WeightDtype::Q2KMix => GgmlDType::Q2K,
            WeightDtype::Iq4Xs => return TensorType::Iq4Xs,
        };
        TensorType::Candle(ggml)
    }

    /// Bytes needed to store `elements` weights in [`WeightDtype::tensor_type`]'s type (a
    /// multiple of the block size).
    pub fn bytes_for(self, elements: u64) -> u64 {
        self.tensor_type().bytes_for(elements)
    }
}

/// The data type of KV cache values (keys and values of every layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvDtype {
    /// 32-bit float, 4 bytes per value.
    #[serde(rename = "f32")]
    F32,
    /// IEEE half precision, 2 bytes per value (what llama.cpp and most servers keep).
    #[serde(rename = "f16")]
    F16,
    /// bfloat16, 2 bytes per value.
    #[serde(rename = "bf16")]
    Bf16,
    /// 8-bit blocks of 32 with an f16 scale: 34 bytes per 32 values.
    #[serde(rename = "q8_0")]
    Q8_0,
}

/// Error for a KV cache data type name that is not one of [`KvDtype::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown KV cache dtype '{given}'; valid: {}", KvDtype::names().join(", "))]
pub struct UnknownKvDtype {
    /// The name as the user wrote it.
    pub given: String,
}

impl KvDtype {
    /// Every supported KV cache data type.
    pub const ALL: [KvDtype; 4] = [KvDtype::F32, KvDtype::F16, KvDtype::Bf16, KvDtype::Q8_0];

    /// The lower-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::Bf16 => "bf16",
            KvDtype::Q8_0 => "q8_0",
        }
    }

    /// All names, for error messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|d| d.name()).collect()
    }

    /// Bytes needed to store `values` cache values (a multiple of the block size).
    pub fn bytes_for(self, values: u64) -> u64 {
        let ggml = match self {
            KvDtype::F32 => GgmlDType::F32,
            KvDtype::F16 => GgmlDType::F16,
            KvDtype::Bf16 => GgmlDType::BF16,
            KvDtype::Q8_0 => GgmlDType::Q8_0,
        };
        TensorType::Candle(ggml).bytes_for(values)
    }
}

impl fmt::Display for KvDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KvDtype {
    type Err = UnknownKvDtype;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|d| d.name() == lower)
            .ok_or_else(|| UnknownKvDtype {
                given: s.to_string(),
            })
    }
}

impl fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightDtype {
    type Err = UnknownDtype;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|d| d.name() == lower)
            .ok_or_else(|| UnknownDtype {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in WeightDtype::ALL {
            assert_eq!(d.name().parse::<WeightDtype>().unwrap(), d);
        }
        for d in WeightDtype::ALL.into_iter().filter(|d| !d.is_mix()) {
            assert_eq!(d.tensor_type().name(), d.name());
        }
        assert_eq!(WeightDtype::Iq4Xs.tensor_type(), TensorType::Iq4Xs);
    }

    #[test]
    fn unknown_dtype_lists_valid_ones() {
        let err = "q5_k".parse::<WeightDtype>().unwrap_err().to_string();
        assert!(
            err.contains("'q5_k'")
                && err.contains("q4_k, q6_k, q4_k_m, q5_k_m, q3_k_m, q2_k, iq4_xs"),
            "{err}"
        );
    }

    #[test]
    fn kv_dtypes_parse_and_size_their_blocks() {
        for d in KvDtype::ALL {
            assert_eq!(d.name().parse::<KvDtype>().unwrap(), d);
        }
        assert!("q4_k"
            .parse::<KvDtype>()
            .unwrap_err()
            .to_string()
            .contains("f16, bf16"));
        assert_eq!(KvDtype::F32.bytes_for(64), 256);
        assert_eq!(KvDtype::F16.bytes_for(64), 128);
        assert_eq!(KvDtype::Bf16.bytes_for(64), 128);
        assert_eq!(KvDtype::Q8_0.bytes_for(64), 68);
    }

    #[test]
    fn bytes_follow_block_layout() {
        assert_eq!(WeightDtype::F32.bytes_for(256), 1024);
        assert_eq!(WeightDtype::Bf16.bytes_for(256), 512);
        assert_eq!(WeightDtype::Q8_0.bytes_for(256), 8 * 34);
        assert_eq!(WeightDtype::Q4_0.bytes_for(256), 8 * 18);
        assert_eq!(WeightDtype::Q4_1.bytes_for(256), 8 * 20);
        assert_eq!(WeightDtype::Q4K.bytes_for(256), 144);
        assert_eq!(WeightDtype::Q6K.bytes_for(256), 210);
        assert_eq!(WeightDtype::Iq4Xs.bytes_for(256), 136);
    }
}
