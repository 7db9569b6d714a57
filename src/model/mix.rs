//! The tensor type of each weight matrix of a synthetic model: the data type's own for every
//! matrix, or, for the mixes ([`WeightDtype::is_mix`]), the type llama.cpp's `llama-quantize`
//! gives that matrix of a Llama model (`llama_tensor_get_type` in its src/llama-quant.cpp), so
//! that a synthetic `q4_k_m` file has the tensor types of the Q4_K_M file a user downloads.

use super::dtype::WeightDtype;
use super::TensorType;
use candle_core::quantized::GgmlDType;

/// A weight matrix of a transformer block, as llama.cpp's rules tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockMatrix {
    /// Query projection, `attn_q`.
    AttnQ,
    /// Key projection, `attn_k`.
    AttnK,
    /// Value projection, `attn_v`.
    AttnV,
    /// Attention output projection, `attn_output`.
    AttnOutput,
    /// FFN gate projection, `ffn_gate`.
    FfnGate,
    /// FFN up projection, `ffn_up`.
    FfnUp,
    /// FFN down projection, `ffn_down`.
    FfnDown,
}

impl BlockMatrix {
    /// The GGUF name of this matrix in block `layer`, e.g. `blk.3.attn_v.weight`.
    pub fn gguf_name(self, layer: usize) -> String {
        let short = match self {
            BlockMatrix::AttnQ => "attn_q",
            BlockMatrix::AttnK => "attn_k",
            BlockMatrix::AttnV => "attn_v",
            BlockMatrix::AttnOutput => "attn_output",
            BlockMatrix::FfnGate => "ffn_gate",
            BlockMatrix::FfnUp => "ffn_up",
            BlockMatrix::FfnDown => "ffn_down",
        };
        format!("blk.{layer}.{short}.weight")
    }
}

/// A weight matrix of a Llama model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// The token embedding table, `token_embd.weight`.
    TokenEmbd,
    /// The output projection, `output.weight` (absent where it is the token embedding).
    Output,
    /// A matrix of the transformer block `layer` (counted from 0).
    Block(BlockMatrix, usize),
}

/// What the rules look at of the whole model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixShape {
    /// Number of transformer blocks.
    pub layers: usize,
    /// Whether the output projection is the token embedding, which is then typed as the output.
    pub tied_embeddings: bool,
    /// Whether llama.cpp takes the model for a 70B (80 blocks, grouped-query attention), whose
    /// value projections it gives more bits.
    pub llama_70b: bool,
    /// Query heads per key/value head (llama.cpp's `n_gqa`): Q2_K gives value projections
    /// shared by 4 or more heads Q4_K instead of Q3_K.
    pub query_groups: usize,
}

/// The type of `matrix`, whose rows hold `cols` values, in a model of `shape` whose matrices
/// are `dtype`. A row that is not whole blocks of the type falls back to another type as in
/// llama.cpp's `tensor_type_fallback` (IQ4_XS to IQ4_NL, Q2_K and Q3_K to Q4_0, Q4_K to Q5_0,
/// Q5_K to Q5_1, Q6_K to Q8_0), and to F16 where that does not fit either (llama.cpp refuses
/// such a tensor in the 32-value types).
pub fn matrix_type(
    dtype: WeightDtype,
    matrix: Matrix,
    cols: usize,
    shape: &MixShape,
) -> TensorType {
    let wanted = match Mix::of(dtype) {
        Some(mix) => mix.matrix_type(matrix, cols, shape),
        None => dtype.tensor_type(),
    };
    fallback(wanted, cols)
}

/// ggml's types that the mixes give.
const Q2K: TensorType = TensorType::Candle(GgmlDType::Q2K);
const Q3K: TensorType = TensorType::Candle(GgmlDType::Q3K);
const Q4K: TensorType = TensorType::Candle(GgmlDType::Q4K);
const Q5K: TensorType = TensorType::Candle(GgmlDType::Q5K);
const Q6K: TensorType = TensorType::Candle(GgmlDType::Q6K);
const Q8_0: TensorType = TensorType::Candle(GgmlDType::Q8_0);

/// The llama.cpp file types whose matrices do not all share one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    Q4KM,
    Q5KM,
    Q3KM,
    Q2K,
    /// `LLAMA_FTYPE_MOSTLY_IQ4_XS` (file type 30), made without an importance matrix.
    Iq4Xs,
}

impl Mix {
    fn of(dtype: WeightDtype) -> Option<Self> {
        match dtype {
            WeightDtype::Q4KM => Some(Mix::Q4KM),
            WeightDtype::Q5KM => Some(Mix::Q5KM),
            WeightDtype::Q3KM => Some(Mix::Q3KM),
            WeightDtype::Q2KMix => Some(Mix::Q2K),
            WeightDtype::Iq4Xs => Some(Mix::Iq4Xs),
            _ => None,
        }
    }

    /// llama.cpp's default type of the file type: that of the matrices no rule picks.
    fn base(self) -> TensorType {
        match self {
            Mix::Q4KM => Q4K,
            Mix::Q5KM => Q5K,
            Mix::Q3KM => Q3K,
            Mix::Q2K => Q2K,
            Mix::Iq4Xs => TensorType::Iq4Xs,
        }
    }

    /// The rules of llama.cpp's `llama_tensor_get_type_impl` (src/llama-quant.cpp, as of
    /// llama-cpp-sys-2 0.1.161) for a Llama model.
    fn matrix_type(self, matrix: Matrix, cols: usize, shape: &MixShape) -> TensorType {
        let n = shape.layers;
        match matrix {
            Matrix::Output => self.output_type(cols),
            Matrix::TokenEmbd if shape.tied_embeddings => self.output_type(cols),
            Matrix::TokenEmbd => self.base(),
            Matrix::Block(BlockMatrix::AttnV, layer) => {
                let t = match self {
                    Mix::Q3KM if layer < 2 => Q5K,
                    Mix::Q3KM => Q4K,
                    Mix::Q2K if shape.query_groups >= 4 => Q4K,
                    Mix::Q2K => Q3K,
                    Mix::Iq4Xs if shape.query_groups >= 4 => Q5K,
                    Mix::Q4KM | Mix::Q5KM if use_more_bits(layer, n) => Q6K,
                    Mix::Q4KM | Mix::Q5KM | Mix::Iq4Xs => self.base(),
                };
                // A 70B's value projection is 8 times smaller than its query projection.
                if shape.llama_70b && (t == Q3K || t == Q4K) {
                    Q5K
                } else {
                    t
                }
            }
            Matrix::Block(BlockMatrix::FfnDown, layer) => match self {
                Mix::Q3KM if layer < n / 16 => Q5K,
                Mix::Q3KM => Q4K,
                Mix::Q2K => Q3K,
                Mix::Q4KM | Mix::Q5KM if use_more_bits(layer, n) => Q6K,
                Mix::Iq4Xs if layer < n / 8 => Q5K,
                Mix::Q4KM | Mix::Q5KM | Mix::Iq4Xs => self.base(),
            },
            Matrix::Block(BlockMatrix::AttnOutput, _) if self == Mix::Q3KM => Q4K,
            Matrix::Block(BlockMatrix::AttnOutput, _) if self == Mix::Q2K => Q3K,
            Matrix::Block(..) => self.base(),
        }
    }

    /// The output projection gets Q6_K, or Q8_0 where its rows are not whole blocks of the base.
    fn output_type(self, cols: usize) -> TensorType {
        if cols.is_multiple_of(self.base().block_size()) {
            Q6K
        } else {
            Q8_0
        }
    }
}

/// llama.cpp's choice of the layers that get more bits: the first and last eighth, and every
/// third layer between them.
fn use_more_bits(layer: usize, layers: usize) -> bool {
    layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
}

/// `wanted`, or the type llama.cpp falls back to when rows of `cols` values are not whole
/// blocks of it.
fn fallback(wanted: TensorType, cols: usize) -> TensorType {
    if cols.is_multiple_of(wanted.block_size()) {
        return wanted;
    }
    let next = match wanted {
        TensorType::Iq4Xs => TensorType::Iq4Nl,
        TensorType::Candle(GgmlDType::Q2K | GgmlDType::Q3K) => TensorType::Candle(GgmlDType::Q4_0),
        TensorType::Candle(GgmlDType::Q4K) => TensorType::Candle(GgmlDType::Q5_0),
        TensorType::Candle(GgmlDType::Q5K) => TensorType::Candle(GgmlDType::Q5_1),
        TensorType::Candle(GgmlDType::Q6K) => Q8_0,
        _ => TensorType::Candle(GgmlDType::F16),
    };
    if cols.is_multiple_of(next.block_size()) {
        next
    } else {
        TensorType::Candle(GgmlDType::F16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(layers: usize) -> MixShape {
        MixShape {
            layers,
            tied_embeddings: false,
            llama_70b: false,
            query_groups: 1,
        }
    }

    /// The layers whose `kind` gets `wanted` in a model of `shape` stored as `dtype`.
    fn layers_of(
        dtype: WeightDtype,
        kind: BlockMatrix,
        shape: &MixShape,
        wanted: TensorType,
    ) -> Vec<usize> {
        (0..shape.layers)
            .filter(|&i| matrix_type(dtype, Matrix::Block(kind, i), 4096, shape) == wanted)
            .collect()
    }

    #[test]
    fn q4_k_m_gives_q6_k_to_half_the_value_and_down_projections() {
        // Llama-3.1-8B: the first and last 4 of 32 layers and every third from layer 6, as in
        // the tensor list of a Q4_K_M file llama-quantize wrote.
        let more = vec![0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
        for dtype in [WeightDtype::Q4KM, WeightDtype::Q5KM] {
            for kind in [BlockMatrix::AttnV, BlockMatrix::FfnDown] {
                assert_eq!(layers_of(dtype, kind, &shape(32), Q6K), more, "{dtype}");
            }
        }
        // Llama-3.2-1B: 16 layers.
        assert_eq!(
            layers_of(WeightDtype::Q4KM, BlockMatrix::AttnV, &shape(16), Q6K),
            [0, 1, 4, 7, 10, 13, 14, 15]
        );
        let rest = |kind| layers_of(WeightDtype::Q4KM, kind, &shape(32), Q4K).len();
        assert_eq!(rest(BlockMatrix::AttnV), 16);
        for kind in [
            BlockMatrix::AttnQ,
            BlockMatrix::AttnK,
            BlockMatrix::AttnOutput,
            BlockMatrix::FfnGate,
            BlockMatrix::FfnUp,
        ] {
            assert_eq!(rest(kind), 32, "{kind:?}");
            assert_eq!(
                layers_of(WeightDtype::Q5KM, kind, &shape(32), Q5K).len(),
                32
            );
        }
    }

    #[test]
    fn q3_k_m_raises_value_output_and_down_projections() {
        let s = shape(32);
        let q3 = WeightDtype::Q3KM;
        assert_eq!(layers_of(q3, BlockMatrix::AttnV, &s, Q5K), [0, 1]);
        assert_eq!(layers_of(q3, BlockMatrix::AttnV, &s, Q4K).len(), 30);
        assert_eq!(layers_of(q3, BlockMatrix::FfnDown, &s, Q5K), [0, 1]);
        assert_eq!(layers_of(q3, BlockMatrix::FfnDown, &s, Q4K).len(), 30);
        assert_eq!(layers_of(q3, BlockMatrix::AttnOutput, &s, Q4K).len(), 32);
        for kind in [
            BlockMatrix::AttnQ,
            BlockMatrix::AttnK,
            BlockMatrix::FfnGate,
            BlockMatrix::FfnUp,
        ] {
            assert_eq!(layers_of(q3, kind, &s, Q3K).len(), 32, "{kind:?}");
        }
    }

    #[test]
    fn q2_k_raises_value_output_and_down_projections_by_a_bit() {
        // Llama-2-7B (one query head per key/value head), then Llama-3.1-8B (4)
        let s = shape(32);
        let q2 = WeightDtype::Q2KMix;
        assert_eq!(layers_of(q2, BlockMatrix::AttnV, &s, Q3K).len(), 32);
        let gqa = MixShape {
            query_groups: 4,
            ..s
        };
        assert_eq!(layers_of(q2, BlockMatrix::AttnV, &gqa, Q4K).len(), 32);
        for shape in [&s, &gqa] {
            for kind in [BlockMatrix::AttnOutput, BlockMatrix::FfnDown] {
                assert_eq!(layers_of(q2, kind, shape, Q3K).len(), 32, "{kind:?}");
            }
            for kind in [
                BlockMatrix::AttnQ,
                BlockMatrix::AttnK,
                BlockMatrix::FfnGate,
                BlockMatrix::FfnUp,
            ] {
                assert_eq!(layers_of(q2, kind, shape, Q2K).len(), 32, "{kind:?}");
            }
        }
        let q = Matrix::Block(BlockMatrix::AttnQ, 0);
        assert_eq!(
            matrix_type(q2, q, 2880, &s),
            TensorType::Candle(GgmlDType::Q4_0)
        );
    }

    #[test]
    fn iq4_xs_gives_q5_k_to_grouped_value_projections_and_the_first_down_projections() {
        let xs = WeightDtype::Iq4Xs;
        let iq4 = TensorType::Iq4Xs;
        // Llama-3.2-1B: 16 layers, 4 query heads per key/value head
        let gqa = MixShape {
            query_groups: 4,
            ..shape(16)
        };
        assert_eq!(layers_of(xs, BlockMatrix::AttnV, &gqa, Q5K).len(), 16);
        assert_eq!(layers_of(xs, BlockMatrix::FfnDown, &gqa, Q5K), [0, 1]);
        assert_eq!(layers_of(xs, BlockMatrix::FfnDown, &gqa, iq4).len(), 14);
        for kind in [
            BlockMatrix::AttnQ,
            BlockMatrix::AttnK,
            BlockMatrix::AttnOutput,
            BlockMatrix::FfnGate,
            BlockMatrix::FfnUp,
        ] {
            assert_eq!(layers_of(xs, kind, &gqa, iq4).len(), 16, "{kind:?}");
        }
        // Llama-2-7B: one query head per key/value head
        let mha = shape(32);
        assert_eq!(layers_of(xs, BlockMatrix::AttnV, &mha, iq4).len(), 32);
        assert_eq!(layers_of(xs, BlockMatrix::FfnDown, &mha, Q5K), [0, 1, 2, 3]);
        // Rows of 2880 values: IQ4_NL, Q5_1 and Q8_0 instead.
        let q = Matrix::Block(BlockMatrix::AttnQ, 5);
        let v = Matrix::Block(BlockMatrix::AttnV, 5);
        assert_eq!(matrix_type(xs, q, 2880, &gqa), TensorType::Iq4Nl);
        assert_eq!(
            matrix_type(xs, v, 2880, &gqa),
            TensorType::Candle(GgmlDType::Q5_1)
        );
        assert_eq!(matrix_type(xs, Matrix::Output, 2880, &gqa), Q8_0);
        assert_eq!(
            matrix_type(xs, q, 100, &gqa),
            TensorType::Candle(GgmlDType::F16)
        );
    }

    #[test]
    fn a_70b_gets_at_least_q5_k_value_projections() {
        let s = MixShape {
            llama_70b: true,
            ..shape(80)
        };
        for dtype in [WeightDtype::Q3KM, WeightDtype::Q2KMix] {
            assert_eq!(layers_of(dtype, BlockMatrix::AttnV, &s, Q5K).len(), 80);
        }
        let q6 = layers_of(WeightDtype::Q4KM, BlockMatrix::AttnV, &s, Q6K).len();
        let q5 = layers_of(WeightDtype::Q4KM, BlockMatrix::AttnV, &s, Q5K).len();
        assert_eq!((q6 + q5, q6), (80, 40));
        // The down projections keep their rule.
        assert_eq!(
            layers_of(WeightDtype::Q4KM, BlockMatrix::FfnDown, &s, Q4K).len(),
            40
        );
    }

    #[test]
    fn output_gets_q6_k_and_a_tied_embedding_goes_with_it() {
        let untied = shape(16);
        let tied = MixShape {
            tied_embeddings: true,
            ..untied
        };
        for dtype in [
            WeightDtype::Q4KM,
            WeightDtype::Q5KM,
            WeightDtype::Q3KM,
            WeightDtype::Q2KMix,
            WeightDtype::Iq4Xs,
        ] {
            assert_eq!(matrix_type(dtype, Matrix::Output, 2048, &untied), Q6K);
            assert_eq!(matrix_type(dtype, Matrix::TokenEmbd, 2048, &tied), Q6K);
            assert_eq!(
                matrix_type(dtype, Matrix::TokenEmbd, 2048, &untied),
                dtype.tensor_type()
            );
        }
    }

    #[test]
    fn single_type_dtypes_keep_their_type_everywhere() {
        let tied = MixShape {
            tied_embeddings: true,
            ..shape(32)
        };
        for dtype in WeightDtype::ALL.into_iter().filter(|d| !d.is_mix()) {
            for m in [
                Matrix::TokenEmbd,
                Matrix::Output,
                Matrix::Block(BlockMatrix::AttnV, 0),
                Matrix::Block(BlockMatrix::FfnDown, 31),
            ] {
                assert_eq!(matrix_type(dtype, m, 4096, &tied), dtype.tensor_type());
            }
        }
    }

    #[test]
    fn rows_of_partial_blocks_fall_back_as_llama_cpp_does() {
        let s = shape(2);
        let v0 = Matrix::Block(BlockMatrix::AttnV, 0);
        let v1 = Matrix::Block(BlockMatrix::AttnV, 1);
        // 2880 = 11.25 super-blocks of 256 = 90 blocks of 32.
        assert_eq!(
            matrix_type(WeightDtype::Q4KM, v0, 2880, &s),
            TensorType::Candle(GgmlDType::Q5_0)
        );
        assert_eq!(
            matrix_type(WeightDtype::Q4KM, v1, 2880, &s),
            TensorType::Candle(GgmlDType::Q8_0)
        );
        assert_eq!(
            matrix_type(WeightDtype::Q5KM, v0, 2880, &s),
            TensorType::Candle(GgmlDType::Q5_1)
        );
        let q = Matrix::Block(BlockMatrix::AttnQ, 0);
        assert_eq!(
            matrix_type(WeightDtype::Q3KM, q, 2880, &s),
            TensorType::Candle(GgmlDType::Q4_0)
        );
        assert_eq!(
            matrix_type(WeightDtype::Q3KM, Matrix::Output, 2880, &s),
            TensorType::Candle(GgmlDType::Q8_0)
        );
        assert_eq!(
            matrix_type(WeightDtype::Q6K, q, 2880, &s),
            TensorType::Candle(GgmlDType::Q8_0)
        );
        // Not even whole blocks of 32.
        assert_eq!(
            matrix_type(WeightDtype::Q4KM, q, 100, &s),
            TensorType::Candle(GgmlDType::F16)
        );
        assert_eq!(
            matrix_type(WeightDtype::Q4_0, q, 100, &s),
            TensorType::Candle(GgmlDType::F16)
        );
        assert_eq!(
            matrix_type(WeightDtype::F32, q, 100, &s),
            TensorType::Candle(GgmlDType::F32)
        );
    }
}
