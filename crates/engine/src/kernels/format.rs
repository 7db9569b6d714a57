//! The weight formats the kernels multiply, and the const-generic codes that compile each
//! format into its own tiles.

use super::activations::{Grain, BLOCK};
use std::fmt;

/// How a weight matrix stores its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// bfloat16.
    Bf16,
    /// Blocks of 32 signed bytes with an f16 scale (ggml Q8_0, 34 bytes per block).
    Q8_0,
    /// Blocks of 32 nibbles `q` meaning `d * (q - 8)` (ggml Q4_0, 18 bytes per block).
    Q4_0,
    /// Blocks of 32 nibbles `q` meaning `d * q + m` (ggml Q4_1, 20 bytes per block).
    Q4_1,
    /// Blocks of 32 5-bit values `q` (nibbles and high bits stored apart) meaning
    /// `d * (q - 16)` (ggml Q5_0, 22 bytes per block).
    Q5_0,
    /// Blocks of 32 5-bit values `q` meaning `d * q + m` (ggml Q5_1, 24 bytes per block).
    Q5_1,
    /// Super-blocks of 256 nibbles in 8 sub-blocks of 32, each meaning `d·sc·q − dmin·m` with
    /// 6-bit `sc` and `m` per sub-block (ggml Q4_K, 144 bytes per super-block).
    Q4K,
    /// Super-blocks of 256 5-bit values (low nibbles and high bits stored apart) in 8
    /// sub-blocks of 32, each meaning `d·sc·q − dmin·m` with 6-bit `sc` and `m` per sub-block,
    /// packed as Q4_K's (ggml Q5_K, 176 bytes per super-block).
    Q5K,
    /// Super-blocks of 256 6-bit values `q` (low nibbles and high 2 bits stored apart), in 16
    /// sub-blocks of 16 each meaning `d·sc·(q − 32)` with a signed 8-bit `sc` per sub-block
    /// (ggml Q6_K, 210 bytes per super-block).
    Q6K,
    /// Super-blocks of 256 3-bit values `q` (low 2 bits and high bit stored apart), in 16
    /// sub-blocks of 16 each meaning `d·(sc − 32)·(q − 4)` with a 6-bit `sc` per sub-block,
    /// packed in 12 bytes (ggml Q3_K, 110 bytes per super-block).
    Q3K,
    /// Super-blocks of 256 2-bit values `q`, in 16 sub-blocks of 16 each meaning
    /// `d·sc·q − dmin·m` with a 4-bit `sc` and `m` per sub-block (ggml Q2_K, 84 bytes per
    /// super-block).
    Q2K,
    /// Blocks of 32 nibbles `q` meaning `d · kvalues[q]`, indices into ggml's 16-entry
    /// non-linear table [`IQ4_VALUES`] (ggml IQ4_NL, 18 bytes per block).
    Iq4Nl,
    /// Super-blocks of 256 nibbles indexing [`IQ4_VALUES`], in 8 sub-blocks of 32 each meaning
    /// `d·(ls − 32)·kvalues[q]` with a 6-bit `ls` per sub-block (ggml IQ4_XS, 136 bytes per
    /// super-block).
    Iq4Xs,
}

/// ggml's `kvalues_iq4nl`: the 16 signed values a 4-bit IQ4_NL or IQ4_XS index stands for.
pub const IQ4_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

impl WeightFormat {
    /// The format of a GGUF tensor type, when the kernels have one for it.
    pub fn of_ggml(dtype: candle_core::quantized::GgmlDType) -> Option<Self> {
        use candle_core::quantized::GgmlDType as G;
        Some(match dtype {
            G::F32 => WeightFormat::F32,
            G::F16 => WeightFormat::F16,
            G::BF16 => WeightFormat::Bf16,
            G::Q8_0 => WeightFormat::Q8_0,
            G::Q4_0 => WeightFormat::Q4_0,
            G::Q4_1 => WeightFormat::Q4_1,
            G::Q5_0 => WeightFormat::Q5_0,
            G::Q5_1 => WeightFormat::Q5_1,
            G::Q4K => WeightFormat::Q4K,
            G::Q5K => WeightFormat::Q5K,
            G::Q6K => WeightFormat::Q6K,
            G::Q3K => WeightFormat::Q3K,
            G::Q2K => WeightFormat::Q2K,
            _ => return None,
        })
    }

    /// Whether activations are quantized to 8 bits before the product.
    pub fn is_quantized(self) -> bool {
        !matches!(
            self,
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16
        )
    }

    /// How finely the activations of a product are quantized (`None`: they stay f32): the
    /// k-quants (Q2_K to Q6_K) take one scale per super-block (ggml's Q8_K, as llama.cpp and
    /// candle do), so their sub-block scales apply in integers across the super-block; the
    /// others one per block.
    pub fn activation_grain(self) -> Option<Grain> {
        match self {
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16 => None,
            WeightFormat::Q2K
            | WeightFormat::Q3K
            | WeightFormat::Q4K
            | WeightFormat::Q5K
            | WeightFormat::Q6K
            | WeightFormat::Iq4Xs => Some(Grain::SuperBlock),
            _ => Some(Grain::Block),
        }
    }

    /// Values per block of the file format: rows must be whole blocks.
    pub fn block_values(self) -> usize {
        match self {
            WeightFormat::Q2K
            | WeightFormat::Q3K
            | WeightFormat::Q4K
            | WeightFormat::Q5K
            | WeightFormat::Q6K
            | WeightFormat::Iq4Xs => 256,
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16 => 1,
            _ => BLOCK,
        }
    }

    /// Bytes of quantized values per block of 32 in the kernels' layout (16 nibble bytes, 32
    /// bytes, or 16 nibble bytes followed by the high bits: the 5-bit formats' 4 bytes, Q6_K's
    /// 8; Q2_K's 8 bytes of 2-bit values, Q3_K's followed by 4 bytes of high bits).
    pub(super) fn quant_bytes(self) -> usize {
        match self {
            WeightFormat::Q8_0 => 32,
            WeightFormat::Q5_0 | WeightFormat::Q5_1 | WeightFormat::Q5K => 20,
            WeightFormat::Q6K => 24,
            WeightFormat::Q3K => 12,
            WeightFormat::Q2K => 8,
            _ => 16,
        }
    }

    /// Bytes per block of [`WeightFormat::block_values`] values in the GGUF file.
    pub(super) fn ggml_block_bytes(self) -> usize {
        match self {
            WeightFormat::F32 => 4,
            WeightFormat::F16 | WeightFormat::Bf16 => 2,
            WeightFormat::Q8_0 => 34,
            WeightFormat::Q4_0 => 18,
            WeightFormat::Q4_1 => 20,
            WeightFormat::Q5_0 => 22,
            WeightFormat::Q5_1 => 24,
            WeightFormat::Q4K => 144,
            WeightFormat::Q5K => 176,
            WeightFormat::Q6K => 210,
            WeightFormat::Q3K => 110,
            WeightFormat::Q2K => 84,
            WeightFormat::Iq4Nl => 18,
            WeightFormat::Iq4Xs => 136,
        }
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The const-generic code of a quantized format, so each format gets its own tile code.
pub(super) mod quant_code {
    /// ggml Q4_0.
    pub const Q4_0: u8 = 0;
    /// ggml Q4_1.
    pub const Q4_1: u8 = 1;
    /// ggml Q8_0.
    pub const Q8_0: u8 = 2;
    /// ggml Q4_K.
    pub const Q4K: u8 = 3;
    /// ggml Q6_K.
    pub const Q6K: u8 = 4;
    /// ggml Q5_K.
    pub const Q5K: u8 = 5;
    /// ggml Q5_0.
    pub const Q5_0: u8 = 6;
    /// ggml Q5_1.
    pub const Q5_1: u8 = 7;
    /// ggml Q3_K.
    pub const Q3K: u8 = 8;
    /// ggml Q2_K.
    pub const Q2K: u8 = 9;
    /// ggml IQ4_NL.
    pub const IQ4NL: u8 = 10;
    /// ggml IQ4_XS.
    pub const IQ4XS: u8 = 11;
}

/// The const-generic code of a float format.
pub(super) mod float_code {
    /// f32.
    pub const F32: u8 = 0;
    /// f16.
    pub const F16: u8 = 1;
    /// bf16.
    pub const BF16: u8 = 2;
}

/// The const-generic code of a quantized weight format.
pub(super) fn quant_code_of(format: WeightFormat) -> u8 {
    match format {
        WeightFormat::Q4_0 => quant_code::Q4_0,
        WeightFormat::Q4_1 => quant_code::Q4_1,
        WeightFormat::Q5_0 => quant_code::Q5_0,
        WeightFormat::Q5_1 => quant_code::Q5_1,
        WeightFormat::Q4K => quant_code::Q4K,
        WeightFormat::Q5K => quant_code::Q5K,
        WeightFormat::Q6K => quant_code::Q6K,
        WeightFormat::Q3K => quant_code::Q3K,
        WeightFormat::Q2K => quant_code::Q2K,
        WeightFormat::Iq4Nl => quant_code::IQ4NL,
        WeightFormat::Iq4Xs => quant_code::IQ4XS,
        _ => quant_code::Q8_0,
    }
}
