//! The type of a GGUF tensor: one candle reads, or one that only the tuned engine's kernels
//! read (IQ4_NL, IQ4_XS: candle 0.11 does not know them).

use super::iq4_quantize::{quantize_iq4_nl, quantize_iq4_xs};
use crate::kernels::WeightFormat;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use std::fmt;

/// A GGUF tensor type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorType {
    /// A type candle reads (and dequantizes).
    Candle(GgmlDType),
    /// ggml IQ4_NL (type 20): blocks of 32 4-bit indices into a 16-value non-linear table with
    /// an f16 scale, 18 bytes per block.
    Iq4Nl,
    /// ggml IQ4_XS (type 23): super-blocks of 256 such indices with an f16 scale and a 6-bit
    /// scale per 32 values, 136 bytes per super-block.
    Iq4Xs,
}

/// Every type candle 0.11 knows, for looking up a type id.
const CANDLE_TYPES: [GgmlDType; 15] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q8_1,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::Q8K,
];

impl TensorType {
    /// The type a GGUF file's type id stands for, when llamaperf reads it.
    pub fn from_id(id: u32) -> Option<Self> {
        match id {
            20 => Some(TensorType::Iq4Nl),
            23 => Some(TensorType::Iq4Xs),
            _ => CANDLE_TYPES
                .into_iter()
                .find(|&t| ggml_type_id(t) == id)
                .map(TensorType::Candle),
        }
    }

    /// The type id GGUF files store.
    pub fn id(self) -> u32 {
        match self {
            TensorType::Candle(t) => ggml_type_id(t),
            TensorType::Iq4Nl => 20,
            TensorType::Iq4Xs => 23,
        }
    }

    /// The lower-case name ggml gives the type (`iq4_xs`).
    pub fn name(self) -> &'static str {
        match self {
            TensorType::Candle(t) => ggml_name(t),
            TensorType::Iq4Nl => "iq4_nl",
            TensorType::Iq4Xs => "iq4_xs",
        }
    }

    /// Values per block.
    pub fn block_size(self) -> usize {
        match self {
            TensorType::Candle(t) => t.block_size(),
            TensorType::Iq4Nl => 32,
            TensorType::Iq4Xs => 256,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        match self {
            TensorType::Candle(t) => t.type_size(),
            TensorType::Iq4Nl => 18,
            TensorType::Iq4Xs => 136,
        }
    }

    /// Bytes needed to store `elements` values (whole blocks).
    pub fn bytes_for(self, elements: u64) -> u64 {
        elements.div_ceil(self.block_size() as u64) * self.type_size() as u64
    }

    /// The GGUF bytes of `values` (whole blocks of the type) stored in the type: candle's
    /// quantizer for its types, [`super::iq4_quantize`]'s for IQ4_NL and IQ4_XS.
    pub fn quantize(self, values: &[f32]) -> candle_core::Result<Vec<u8>> {
        match self {
            TensorType::Candle(t) => {
                let tensor = Tensor::from_slice(values, (1, values.len()), &Device::Cpu)?;
                Ok(QTensor::quantize(&tensor, t)?.data()?.into_owned())
            }
            TensorType::Iq4Nl => Ok(quantize_iq4_nl(values)),
            TensorType::Iq4Xs => Ok(quantize_iq4_xs(values)),
        }
    }

    /// The tuned engine's kernel format for the type, when it has one.
    pub fn weight_format(self) -> Option<WeightFormat> {
        match self {
            TensorType::Candle(t) => WeightFormat::of_ggml(t),
            TensorType::Iq4Nl => Some(WeightFormat::Iq4Nl),
            TensorType::Iq4Xs => Some(WeightFormat::Iq4Xs),
        }
    }
}

impl From<GgmlDType> for TensorType {
    fn from(t: GgmlDType) -> Self {
        TensorType::Candle(t)
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The lower-case name ggml gives a tensor type (`q5_k`), as `llama-quantize` lists tensors.
fn ggml_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2_k",
        GgmlDType::Q3K => "q3_k",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q5K => "q5_k",
        GgmlDType::Q6K => "q6_k",
        GgmlDType::Q8K => "q8_k",
    }
}

/// The type id that GGUF files store for a ggml tensor type.
fn ggml_type_id(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_iq4_has_ggml_s_block_geometry() {
        for t in CANDLE_TYPES.map(TensorType::Candle) {
            assert_eq!(TensorType::from_id(t.id()), Some(t));
        }
        assert_eq!(TensorType::from_id(20), Some(TensorType::Iq4Nl));
        assert_eq!(TensorType::from_id(23), Some(TensorType::Iq4Xs));
        assert_eq!(TensorType::from_id(21), None, "IQ3_S is not read");
        assert_eq!(TensorType::Iq4Nl.bytes_for(64), 36);
        assert_eq!(TensorType::Iq4Xs.bytes_for(512), 272);
        assert_eq!(TensorType::Iq4Xs.to_string(), "iq4_xs");
    }

    #[test]
    fn quantized_values_are_whole_blocks_of_the_type() {
        let values: Vec<f32> = (0..512).map(|i| (i as f32 - 256.0) / 1000.0).collect();
        for t in [
            TensorType::Candle(GgmlDType::F32),
            TensorType::Candle(GgmlDType::Q4K),
            TensorType::Candle(GgmlDType::Q8_0),
            TensorType::Iq4Nl,
            TensorType::Iq4Xs,
        ] {
            let bytes = t.quantize(&values).unwrap();
            assert_eq!(bytes.len() as u64, t.bytes_for(512), "{t}");
        }
    }
}
