//! The tuned engine's own matrix kernels: quantized (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K,
//! Q4_K, Q5_K, Q6_K) and float (F32, F16, BF16) weights times f32 activations, with the instruction set
//! chosen at run time (AVX-512 VNNI, AVX2, portable) and rows split across the pinned rayon pool.
//!
//! Quantized weights are multiplied in integers: activations are quantized to 8 bits per
//! block of 32 ([`QuantizedActivations`]; per super-block of 256 for the k-quants), each block
//! pair gives an integer dot product that is scaled by both blocks' scales (k-quants: by the
//! sub-block's scale in integers, then once per super-block), and the weight format's offset or
//! minimum is applied through the activation block's (or half block's) sum.
//!
//! Float weights are multiplied as stored (widened in registers) when there are few tokens
//! (decode), and in prefill over panels packed to f32 for an outer-product micro-kernel, as a
//! BLIS-style matrix product does.

mod activations;
mod format;
mod isa;
mod layout;
mod matrix;
mod micro;
mod packed;
mod product;
mod scalar;
mod share;
mod tile;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use activations::{nearest_even, Grain, QuantBlock, QuantizedActivations, BLOCK};
pub use format::{WeightFormat, IQ4_VALUES};
pub use isa::{Isa, ISA_ENV};
pub use matrix::{MatrixError, WeightMatrix};
pub use product::{ActivationScratch, Activations};

#[cfg(test)]
mod tests;
