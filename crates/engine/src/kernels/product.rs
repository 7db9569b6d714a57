//! The matrix product `y = x · Wᵀ`, rows split across the threads (in decode each thread
//! streams its own contiguous rows of the weights; prefill's smaller shares are claimed, see
//! [`share_count`]): quantized weights over tiles of a group of 8 interleaved rows by up to 8
//! tokens (of two groups by one token); float weights over tiles of 4 rows by up to 4 tokens
//! below [`PACKED_MIN_TOKENS`] tokens, and over packed panels (`packed`) from there. A tile's
//! groups or rows are spread over the thread's chunk ([`Units`]), so it reads several
//! sequential streams of weights at once.

use super::super::team;
use super::activations::{Grain, QuantizedActivations};
use super::format::{float_code, quant_code_of, WeightFormat};
use super::isa::Isa;
use super::layout::GROUP;
use super::matrix::{Values, WeightMatrix};
#[cfg(target_arch = "x86_64")]
use super::packed::packed_bf16_share;
use super::packed::packed_share;
use super::scalar;
use super::share::Share;
use super::tile::{FloatRows, FloatTile, Output, QuantTile, Units, QUANT_DECODE_GROUPS};
#[cfg(target_arch = "x86_64")]
use super::x86;
use std::ops::Range;

/// Weight rows per tile.
const TILE_ROWS: usize = 4;
/// Most tokens per quantized tile where the vector registers hold them (AVX-512's 32): one
/// unpacked block of 8 rows serves 8 tokens.
const QUANT_TILE_TOKENS: usize = 8;
/// Most tokens per float tile (4 rows x 4 tokens of accumulators) where the vector registers
/// hold them: AVX-512's 32 (and the BF16-dot tiles, AVX-512 only).
const FLOAT_TILE_TOKENS: usize = 4;
/// Most tokens per 512-bit float tile (F32, F16, BF16-dot) of a product of more than
/// [`FLOAT_TILE_TOKENS`] tokens: 3 rows by 8 tokens (24 sums, 3 weight vectors and one activation vector of the 32
/// registers), so batch-8 decode reads each weight once per product, in one pass that keeps the
/// memory busy, instead of once from memory and again from L1 for the second 4 tokens.
const WIDE_FLOAT_TILE_TOKENS: usize = 8;
/// Tokens from which float products run over packed panels (below, the weights are read
/// as they are stored, once per product).
const PACKED_MIN_TOKENS: usize = 16;
/// Shares per thread of a prefill product (see [`share_count`]).
const PREFILL_SHARES_PER_THREAD: usize = 16;

/// The buffers of an input's prepared forms, reused from one input to the next: quantized with
/// one scale per block of 32 (Q4_0, Q4_1, Q8_0 weights) and one per super-block of 256 (the
/// k-quants),
/// and rounded to BF16 (BF16 weights where the CPU multiplies BF16).
#[derive(Debug, Default)]
pub struct ActivationScratch {
    /// One form per grain, at [`slot`].
    forms: [QuantizedActivations; 2],
    /// The values rounded to BF16 (nearest, ties to even), as bit patterns.
    bf16: Vec<u16>,
}

/// Where a grain's form and readiness are kept in [`ActivationScratch`] and [`Activations`].
fn slot(grain: Grain) -> usize {
    match grain {
        Grain::Block => 0,
        Grain::SuperBlock => 1,
    }
}

/// The input of one or more products: `tokens` rows of f32 values, quantized once per grain (or
/// rounded to BF16) on first use by a matrix that takes that form, and then shared by every
/// product with the same input.
#[derive(Debug)]
pub struct Activations<'a> {
    x: &'a [f32],
    tokens: usize,
    scratch: &'a mut ActivationScratch,
    /// Whether each grain's form (at [`slot`]) is this input's.
    ready: [bool; 2],
    /// Whether the BF16 form is this input's.
    bf16_ready: bool,
}

impl<'a> Activations<'a> {
    /// `tokens` rows of `x`; `scratch` holds the quantized forms (its buffers are reused).
    pub fn new(x: &'a [f32], tokens: usize, scratch: &'a mut ActivationScratch) -> Self {
        Activations {
            x,
            tokens,
            scratch,
            ready: [false; 2],
            bf16_ready: false,
        }
    }

    fn quantize(&mut self, features: usize, grain: Grain) {
        let at = slot(grain);
        if !self.ready[at] {
            self.scratch.forms[at].quantize(self.x, features, grain);
            self.ready[at] = true;
        }
    }

    /// Rounds the values to BF16 into the scratch, once per input (`isa` must multiply BF16:
    /// [`Isa::has_bf16_dot`]).
    #[cfg(target_arch = "x86_64")]
    fn round_to_bf16(&mut self, isa: Isa) {
        assert!(isa.has_bf16_dot(), "{isa} does not multiply BF16");
        if !self.bf16_ready {
            let bits = &mut self.scratch.bf16;
            bits.resize(self.x.len(), 0);
            // SAFETY: the CPU has AVX512-BF16 (asserted above).
            unsafe { x86::bf16_dot::round(self.x, bits) };
            self.bf16_ready = true;
        }
    }

    /// The values rounded to BF16, as bit patterns (after [`Activations::round_to_bf16`]).
    #[cfg(target_arch = "x86_64")]
    fn rounded_to_bf16(&self) -> &[u16] {
        assert!(
            self.bf16_ready,
            "activations are rounded before the product"
        );
        &self.scratch.bf16
    }

    fn quantized(&self, grain: Grain) -> &QuantizedActivations {
        let at = slot(grain);
        assert!(
            self.ready[at],
            "activations are quantized before the product"
        );
        &self.scratch.forms[at]
    }
}

impl WeightMatrix {
    /// Writes `out[t * rows + r] = Σ_c x[t, c] · W[r, c]` for every token `t` of `input`.
    ///
    /// Uses the fastest instruction set [`Isa::active`] allows.
    pub fn product(&self, input: &mut Activations, out: &mut [f32]) {
        self.product_with(Isa::active(), input, out)
    }

    /// As [`WeightMatrix::product`], with the instruction set given (it must be supported).
    pub fn product_with(&self, isa: Isa, input: &mut Activations, out: &mut [f32]) {
        WeightMatrix::products_with(isa, &[self], input, &mut [out])
    }

    /// The products of several matrices with one input (`outs[i]` for `matrices[i]`), in one
    /// parallel step: the input is prepared once, and each thread computes its rows of every
    /// matrix before the threads meet again.
    pub fn products(matrices: &[&WeightMatrix], input: &mut Activations, outs: &mut [&mut [f32]]) {
        WeightMatrix::products_with(Isa::active(), matrices, input, outs)
    }

    /// As [`WeightMatrix::products`], with the instruction set given (it must be supported).
    pub fn products_with(
        isa: Isa,
        matrices: &[&WeightMatrix],
        input: &mut Activations,
        outs: &mut [&mut [f32]],
    ) {
        assert!(isa.supported(), "{isa} is not supported by this CPU");
        assert_eq!(matrices.len(), outs.len(), "one output per matrix");
        let tokens = input.tokens;
        for (w, out) in matrices.iter().zip(outs.iter()) {
            let (rows, cols) = (w.rows(), w.cols());
            assert_eq!(
                input.x.len(),
                tokens * cols,
                "input is not {tokens} x {cols}"
            );
            assert_eq!(out.len(), tokens * rows, "output is not {tokens} x {rows}");
            if let Some(grain) = w.format().activation_grain() {
                input.quantize(cols, grain);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if matrices
            .iter()
            .any(|w| w.rounds_activations_to_bf16(isa, tokens))
        {
            input.round_to_bf16(isa);
        }
        let input = &*input;
        let shares: Vec<Share> = matrices
            .iter()
            .zip(outs.iter_mut())
            .map(|(w, out)| {
                let output = Output {
                    ptr: out.as_mut_ptr(),
                    stride: w.rows(),
                };
                w.share(isa, input, output)
            })
            .collect();
        // a share is one contiguous chunk of every matrix
        team::parallel(share_count(tokens), &|c, chunks| {
            shares.iter().for_each(|share| share(c, chunks))
        });
    }

    /// This matrix's part of a product with `input` (prepared: quantized if this matrix is,
    /// rounded to BF16 if it takes that), written through `output`.
    fn share<'a>(&'a self, isa: Isa, input: &'a Activations, output: Output) -> Share<'a> {
        let (rows, cols, tokens) = (self.rows(), self.cols(), input.tokens);
        let format = self.format();
        match &self.values {
            Values::Quant { .. } => {
                let act = input.quantized(format.activation_grain().expect("quantized"));
                let w = self.quant_rows().expect("a quantized matrix");
                let code = quant_code_of(format);
                let block = token_block(tokens, cols);
                let groups = quant_tile_groups(isa, tokens);
                Box::new(move |c, chunks| {
                    unit_tiles(
                        (c, chunks),
                        rows.div_ceil(GROUP),
                        groups,
                        block,
                        |units, gn, block| {
                            for_token_tiles(block, quant_tile_tokens(isa), |t0, tn| {
                                let tile = quant_tile(isa, code, tn, gn);
                                // SAFETY: isa is supported; the tile's rows, tokens and cells are its own.
                                unsafe { tile(&w, units, act, t0, output) }
                            })
                        },
                    )
                })
            }
            #[cfg(target_arch = "x86_64")]
            Values::Half(values) if self.rounds_activations_to_bf16(isa, tokens) => {
                let x = input.rounded_to_bf16();
                let w = FloatRows { cols, values };
                if tokens >= PACKED_MIN_TOKENS {
                    return packed_bf16_share(w, x, tokens, output);
                }
                let block = token_block(tokens, 2 * cols);
                let (tile_rows, tile_tokens) = wide_tile_shape(tokens);
                Box::new(move |c, chunks| {
                    unit_tiles((c, chunks), rows, tile_rows, block, |units, rn, block| {
                        for_token_tiles(block, tile_tokens, |t0, tn| {
                            let tile = bf16_dot_tile(rn, tn);
                            // SAFETY: the level has AVX512-BF16; rows, tokens and cells are the tile's.
                            unsafe { tile(&w, units, x, t0, output) }
                        })
                    })
                })
            }
            Values::F32(values) if tokens >= PACKED_MIN_TOKENS => {
                let w = FloatRows { cols, values };
                packed_share(isa, float_code::F32, w, input.x, tokens, output)
            }
            Values::Half(values) if tokens >= PACKED_MIN_TOKENS => {
                let w = FloatRows { cols, values };
                packed_share(isa, half_code(format), w, input.x, tokens, output)
            }
            Values::F32(values) => float_share(isa, float_code::F32, values, cols, input, output),
            Values::Half(values) => {
                float_share(isa, half_code(format), values, cols, input, output)
            }
        }
    }
}

/// Shares of a product of `tokens` tokens. Decode: one per thread, so each thread streams its
/// own rows. Prefill: [`PREFILL_SHARES_PER_THREAD`] per thread, claimed as the threads get to
/// them, so a thread slowed down (by another process, or by a busy neighbour on a shared host)
/// delays the meeting by one small share instead of its whole half.
fn share_count(tokens: usize) -> usize {
    if tokens >= PACKED_MIN_TOKENS {
        team::width() * PREFILL_SHARES_PER_THREAD
    } else {
        team::width()
    }
}

/// The float code of a 16-bit float format.
fn half_code(format: WeightFormat) -> u8 {
    if format == WeightFormat::F16 {
        float_code::F16
    } else {
        float_code::BF16
    }
}

impl WeightMatrix {
    /// Whether a product of `tokens` tokens at level `isa` rounds the activations to BF16 and
    /// multiplies them with `vdpbf16ps` (BF16 weights on CPUs with AVX512-BF16, as llama.cpp
    /// does; in prefill only where [`Isa::packs_bf16_pairs`]) instead of widening the weights
    /// to f32.
    pub fn rounds_activations_to_bf16(&self, isa: Isa, tokens: usize) -> bool {
        self.format() == WeightFormat::Bf16
            && isa.has_bf16_dot()
            && (tokens < PACKED_MIN_TOKENS || isa.packs_bf16_pairs())
    }
}

/// A BF16-dot tile: its `R` rows against tokens `t0..t0+T` of BF16 activations.
#[cfg(target_arch = "x86_64")]
type Bf16Tile = unsafe fn(&FloatRows<u16>, Units, &[u16], usize, Output);

/// The BF16-dot tile for `rows` (4, 3 or 1) and `tokens` (1 to [`WIDE_FLOAT_TILE_TOKENS`]).
#[cfg(target_arch = "x86_64")]
fn bf16_dot_tile(rows: usize, tokens: usize) -> Bf16Tile {
    use x86::bf16_dot::tile;
    macro_rules! by_tokens {
        ($r:expr) => {
            match tokens {
                1 => tile::<{ $r }, 1> as Bf16Tile,
                2 => tile::<{ $r }, 2>,
                3 => tile::<{ $r }, 3>,
                4 => tile::<{ $r }, 4>,
                5 => tile::<{ $r }, 5>,
                6 => tile::<{ $r }, 6>,
                7 => tile::<{ $r }, 7>,
                _ => tile::<{ $r }, 8>,
            }
        };
    }
    match rows {
        TILE_ROWS => by_tokens!(TILE_ROWS),
        3 => by_tokens!(3),
        _ => by_tokens!(1),
    }
}

/// Most tokens per quantized tile at level `isa`: 4 where there are 16 vector registers (the 8
/// unpacked weight vectors take half of them, and 8 tokens' sums would not fit beside them).
fn quant_tile_tokens(isa: Isa) -> usize {
    if isa == Isa::Avx512 {
        QUANT_TILE_TOKENS
    } else {
        4
    }
}

/// Groups per quantized tile of a product of `tokens` tokens at level `isa`: at AVX-512 a
/// pair, side by side in 512-bit registers (`x86::quant512`); below, [`QUANT_DECODE_GROUPS`]
/// for one token and one for more.
fn quant_tile_groups(isa: Isa, tokens: usize) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::quant512::PAIR,
        _ if tokens == 1 => QUANT_DECODE_GROUPS,
        _ => 1,
    }
}

/// Rows and most tokens of the float tiles of a product of `tokens` tokens of format `code` at
/// level `isa`: where there are 32 vector registers (AVX-512), [`wide_tile_shape`] for F32 and
/// F16, and 4 rows by 4 tokens for BF16 widened in 256-bit tiles; with AVX2's 16, 4 rows for
/// one token, else 3 rows by 4 tokens (12 sums, 3 weight vectors, one token's vector: 4 by 4
/// spilled sums, and 4 rows by 2 tokens widened each weight vector twice as often).
fn float_tile_shape(isa: Isa, code: u8, tokens: usize) -> (usize, usize) {
    match isa {
        Isa::Avx512 if code != float_code::BF16 => wide_tile_shape(tokens),
        Isa::Avx512 => (TILE_ROWS, FLOAT_TILE_TOKENS),
        _ if tokens == 1 => (TILE_ROWS, 1),
        _ => (3, FLOAT_TILE_TOKENS),
    }
}

/// Rows and most tokens of the 512-bit float tiles (F32 of several tokens, F16, and the
/// BF16-dot tiles) of a product of `tokens` tokens: 4 rows by 4 tokens, and 3 rows by
/// [`WIDE_FLOAT_TILE_TOKENS`] for more than 4 tokens.
fn wide_tile_shape(tokens: usize) -> (usize, usize) {
    if tokens > FLOAT_TILE_TOKENS {
        (3, WIDE_FLOAT_TILE_TOKENS)
    } else {
        (TILE_ROWS, FLOAT_TILE_TOKENS)
    }
}

/// A float matrix's share of a product, over tiles of the rows and tokens of
/// [`float_tile_shape`].
fn float_share<'a, V: Copy + Into<scalar::Widen> + Sync>(
    isa: Isa,
    code: u8,
    values: &'a [V],
    cols: usize,
    input: &'a Activations,
    output: Output,
) -> Share<'a> {
    let w = FloatRows { cols, values };
    let (x, tokens) = (input.x, input.tokens);
    let block = token_block(tokens, 4 * cols);
    let (tile_rows, tile_tokens) = float_tile_shape(isa, code, tokens);
    Box::new(move |c, chunks| {
        unit_tiles(
            (c, chunks),
            values.len() / cols,
            tile_rows,
            block,
            |units, rn, block| {
                for_token_tiles(block, tile_tokens, |t0, tn| {
                    let tile = float_tile::<V>(isa, code, rn, tn);
                    // SAFETY: isa is supported; the tile's rows, tokens and cells are its own.
                    unsafe { tile(&w, units, x, t0, output) }
                })
            },
        )
    })
}

/// Bytes of activations a block of tokens may take: they stay in L2 while every tile of the
/// thread's rows multiplies them.
const TOKEN_BLOCK_BYTES: usize = 256 << 10;

/// `(tokens, tokens per block)` for activations of `bytes_per_token` bytes per token: at
/// least 8 tokens (a whole quantized tile) and a multiple of 8.
fn token_block(tokens: usize, bytes_per_token: usize) -> (usize, usize) {
    let fit = TOKEN_BLOCK_BYTES / bytes_per_token.max(1) / 8 * 8;
    (tokens, fit.max(8))
}

/// Calls `tile(t0, tokens)` over the tokens of `block` in tiles of up to `most`.
fn for_token_tiles(block: Range<usize>, most: usize, mut tile: impl FnMut(usize, usize)) {
    let mut t0 = block.start;
    while t0 < block.end {
        let tn = (block.end - t0).min(most);
        tile(t0, tn);
        t0 += tn;
    }
}

/// Calls `tile(units, n, block)` over chunk `c` of `chunks` of `units` units (rows or row
/// groups) and the tokens: the chunk takes the tokens a block at a time (`(tokens, per
/// block)`) and, for each block, its units in tiles of `n = tile_units` spread over the chunk
/// (a `tile_units`-th of it apart, so each of a tile's units is in its own stream: see
/// [`Units`]), then the units left over in tiles of one.
fn unit_tiles(
    (c, chunks): (usize, usize),
    units: usize,
    tile_units: usize,
    (tokens, per_block): (usize, usize),
    tile: impl Fn(Units, usize, Range<usize>),
) {
    let chunk = units.div_ceil(chunks);
    let start = (c * chunk).min(units);
    let end = ((c + 1) * chunk).min(units);
    let step = (end - start) / tile_units;
    for first_token in (0..tokens).step_by(per_block.max(1)) {
        let block = first_token..(first_token + per_block).min(tokens);
        for first in start..start + step {
            tile(Units { first, step }, tile_units, block.clone());
        }
        for first in start + tile_units * step..end {
            tile(Units { first, step }, 1, block.clone());
        }
    }
}

/// Tile function `$f` of module `$m` (with format `$q` first when it takes one) for a token
/// count from 1 to 8 and a group count (1, or [`QUANT_DECODE_GROUPS`] with one token).
macro_rules! quant_tiles {
    ($($m:ident)::+, $f:ident $(<$q:ident>)?, $tokens:expr, $groups:expr) => {
        match ($tokens, $groups) {
            (1, QUANT_DECODE_GROUPS) => {
                $($m)::+::$f::<$($q,)? 1, QUANT_DECODE_GROUPS> as QuantTile
            }
            (1, _) => $($m)::+::$f::<$($q,)? 1, 1>,
            (2, _) => $($m)::+::$f::<$($q,)? 2, 1>,
            (3, _) => $($m)::+::$f::<$($q,)? 3, 1>,
            (4, _) => $($m)::+::$f::<$($q,)? 4, 1>,
            (5, _) => $($m)::+::$f::<$($q,)? 5, 1>,
            (6, _) => $($m)::+::$f::<$($q,)? 6, 1>,
            (7, _) => $($m)::+::$f::<$($q,)? 7, 1>,
            _ => $($m)::+::$f::<$($q,)? 8, 1>,
        }
    };
}

/// Pair tile function `$f` of module `$m` (`x86::quant512` or `x86::low_k512`; with format
/// `$q` first when it takes one) for a token count from 1 to 8.
#[cfg(target_arch = "x86_64")]
macro_rules! pair_tiles {
    ($($m:ident)::+, $f:ident $(<$q:ident>)?, $tokens:expr) => {
        match $tokens {
            1 => $($m)::+::$f::<$($q,)? 1> as QuantTile,
            2 => $($m)::+::$f::<$($q,)? 2>,
            3 => $($m)::+::$f::<$($q,)? 3>,
            4 => $($m)::+::$f::<$($q,)? 4>,
            5 => $($m)::+::$f::<$($q,)? 5>,
            6 => $($m)::+::$f::<$($q,)? 6>,
            7 => $($m)::+::$f::<$($q,)? 7>,
            _ => $($m)::+::$f::<$($q,)? 8>,
        }
    };
}

/// The float tile of module `$m` for value type `$v`, format `$f`, `$r` rows and a token
/// count from 1 to 4.
macro_rules! float_tiles {
    ($($m:ident)::+, $v:ident, $f:ident, $r:ident, $tokens:expr) => {
        match $tokens {
            1 => $($m)::+::float_tile::<$v, $f, $r, 1> as FloatTile<$v>,
            2 => $($m)::+::float_tile::<$v, $f, $r, 2>,
            3 => $($m)::+::float_tile::<$v, $f, $r, 3>,
            _ => $($m)::+::float_tile::<$v, $f, $r, 4>,
        }
    };
}

fn quant_format<const Q: u8>(isa: Isa, tokens: usize, groups: usize) -> QuantTile {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if groups == x86::quant512::PAIR => {
            pair_tiles!(x86::quant512, quant_tile<Q>, tokens)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => quant_tiles!(x86::avx512, quant_tile<Q>, tokens, groups),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => quant_tiles!(x86::avx2, quant_tile<Q>, tokens, groups),
        _ => quant_tiles!(scalar, quant_tile<Q>, tokens, groups),
    }
}

/// Q4_K's and Q5_K's tiles (format `Q`): the SIMD levels' own (sub-block scales in integers,
/// activations per super-block), the portable level's generic one.
fn k_format<const Q: u8>(isa: Isa, tokens: usize, groups: usize) -> QuantTile {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if groups == x86::quant512::PAIR => {
            pair_tiles!(x86::quant512, k_tile<Q>, tokens)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => quant_tiles!(x86::avx512, k_tile<Q>, tokens, groups),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => quant_tiles!(x86::avx2, k_tile<Q>, tokens, groups),
        _ => quant_tiles!(scalar, quant_tile<Q>, tokens, groups),
    }
}

/// Q6_K's tiles: the SIMD levels' own (sub-block scales in integers, activations per
/// super-block), the portable level's generic one.
fn q6k_format(isa: Isa, tokens: usize, groups: usize) -> QuantTile {
    use super::format::quant_code::Q6K;
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if groups == x86::quant512::PAIR => {
            pair_tiles!(x86::quant512, q6k_tile, tokens)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => quant_tiles!(x86::avx512, q6k_tile, tokens, groups),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => quant_tiles!(x86::avx2, q6k_tile, tokens, groups),
        _ => quant_tiles!(scalar, quant_tile<Q6K>, tokens, groups),
    }
}

/// Q3_K's and Q2_K's tiles (format `Q`): the SIMD levels' own (16-value sub-block scales in
/// integers, activations per super-block), the portable level's generic one.
fn low_k_format<const Q: u8>(isa: Isa, tokens: usize, groups: usize) -> QuantTile {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if groups == x86::quant512::PAIR => {
            pair_tiles!(x86::low_k512, low_k_tile<Q>, tokens)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => quant_tiles!(x86::avx512, low_k_tile<Q>, tokens, groups),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => quant_tiles!(x86::avx2, low_k_tile<Q>, tokens, groups),
        _ => quant_tiles!(scalar, quant_tile<Q>, tokens, groups),
    }
}

/// IQ4_XS's tiles: the SIMD levels' own (sub-block scales in integers, activations per
/// super-block), the portable level's generic one.
fn iq4xs_format(isa: Isa, tokens: usize, groups: usize) -> QuantTile {
    use super::format::quant_code::IQ4XS;
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if groups == x86::quant512::PAIR => {
            pair_tiles!(x86::quant512, iq4xs_tile, tokens)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => quant_tiles!(x86::avx512, iq4xs_tile, tokens, groups),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => quant_tiles!(x86::avx2, iq4xs_tile, tokens, groups),
        _ => quant_tiles!(scalar, quant_tile<IQ4XS>, tokens, groups),
    }
}

/// The quantized tile for a format code, `tokens` (1 to 8) and `groups` (see
/// [`quant_tiles`]).
fn quant_tile(isa: Isa, code: u8, tokens: usize, groups: usize) -> QuantTile {
    use super::format::quant_code::*;
    match code {
        Q4_0 => quant_format::<Q4_0>(isa, tokens, groups),
        Q4_1 => quant_format::<Q4_1>(isa, tokens, groups),
        Q5_0 => quant_format::<Q5_0>(isa, tokens, groups),
        Q5_1 => quant_format::<Q5_1>(isa, tokens, groups),
        Q4K => k_format::<Q4K>(isa, tokens, groups),
        Q5K => k_format::<Q5K>(isa, tokens, groups),
        Q6K => q6k_format(isa, tokens, groups),
        Q3K => low_k_format::<Q3K>(isa, tokens, groups),
        Q2K => low_k_format::<Q2K>(isa, tokens, groups),
        IQ4NL => quant_format::<IQ4NL>(isa, tokens, groups),
        IQ4XS => iq4xs_format(isa, tokens, groups),
        _ => quant_format::<Q8_0>(isa, tokens, groups),
    }
}

fn float_rows<V: Copy + Into<scalar::Widen>, const F: u8, const R: usize>(
    isa: Isa,
    tokens: usize,
) -> FloatTile<V> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if F == float_code::F16 || (F == float_code::F32 && tokens > 1) => {
            wide_tile::<V, F, R>(tokens)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => float_tiles!(x86::avx512, V, F, R, tokens),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => float_tiles!(x86::avx2, V, F, R, tokens),
        _ => float_tiles!(scalar, V, F, R, tokens),
    }
}

/// The 512-bit tile of `R` rows of format `F` (F16 or F32) for `tokens` (1 to
/// [`WIDE_FLOAT_TILE_TOKENS`]) at the AVX-512 level (see `x86::float512`); `V` must be the
/// format's storage.
#[cfg(target_arch = "x86_64")]
fn wide_tile<V: Copy, const F: u8, const R: usize>(tokens: usize) -> FloatTile<V> {
    use x86::float512::wide_tile;
    match tokens {
        1 => wide_tile::<V, F, R, 1> as FloatTile<V>,
        2 => wide_tile::<V, F, R, 2>,
        3 => wide_tile::<V, F, R, 3>,
        4 => wide_tile::<V, F, R, 4>,
        5 => wide_tile::<V, F, R, 5>,
        6 => wide_tile::<V, F, R, 6>,
        7 => wide_tile::<V, F, R, 7>,
        _ => wide_tile::<V, F, R, 8>,
    }
}

fn float_format<V: Copy + Into<scalar::Widen>, const F: u8>(
    isa: Isa,
    rows: usize,
    tokens: usize,
) -> FloatTile<V> {
    match rows {
        TILE_ROWS => float_rows::<V, F, TILE_ROWS>(isa, tokens),
        3 => float_rows::<V, F, 3>(isa, tokens),
        _ => float_rows::<V, F, 1>(isa, tokens),
    }
}

/// The float tile for a format code, `rows` (4, 3 or 1) and `tokens` (1 to 4, or to
/// [`WIDE_FLOAT_TILE_TOKENS`] for 512-bit F32 and F16 tiles).
fn float_tile<V: Copy + Into<scalar::Widen>>(
    isa: Isa,
    code: u8,
    rows: usize,
    tokens: usize,
) -> FloatTile<V> {
    match code {
        float_code::F32 => float_format::<V, { float_code::F32 }>(isa, rows, tokens),
        float_code::F16 => float_format::<V, { float_code::F16 }>(isa, rows, tokens),
        _ => float_format::<V, { float_code::BF16 }>(isa, rows, tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn spread_tiles_cover_each_chunk_once_in_parallel_streams() {
        for (units, chunks, tile_units) in
            [(33, 2, 2), (259, 2, 4), (259, 3, 3), (5, 2, 4), (1, 4, 2)]
        {
            for c in 0..chunks {
                let calls = RefCell::new(Vec::new());
                unit_tiles((c, chunks), units, tile_units, (9, 8), |tile, n, block| {
                    calls.borrow_mut().push((tile, n, block))
                });
                let chunk = units.div_ceil(chunks);
                let own = (c * chunk).min(units)..((c + 1) * chunk).min(units);
                let mut seen = vec![0; units];
                for (tile, n, block) in calls.into_inner() {
                    assert!(n == tile_units || n == 1, "a tile of {n} units");
                    for k in 0..n {
                        let u = tile.at(k);
                        assert!(own.contains(&u), "unit {u} is outside chunk {own:?}");
                        seen[u] += block.len();
                    }
                    if n == tile_units && n > 1 {
                        // a tile's units are the chunk's parts' k-th units, side by side
                        assert_eq!(tile.step, own.len() / tile_units);
                    }
                }
                for (u, count) in seen.iter().enumerate() {
                    let want = if own.contains(&u) { 9 } else { 0 };
                    assert_eq!(*count, want, "unit {u} of chunk {c} of {units}/{chunks}");
                }
            }
        }
    }
}
