//! Float prefill over packed panels of weights, the loop nest of a BLIS-style matrix product.
//!
//! Each thread copies a panel of its rows, [`PANEL_ROWS`] rows by a depth block of columns
//! (the whole row up to [`MOST_DEPTH`] columns, else the row in equal blocks), into
//! micro-panels of [`MICRO_ROWS`] rows stored column by column; every tile of a few tokens
//! then passes over the panel, its slice of activations staying in L2 while the micro-panels
//! stream past it. The micro-kernel keeps a block of outputs, 16 rows by the tile's tokens, in
//! vector registers and adds one column's outer product per step (a load of weights, a
//! broadcast activation and a multiply-add per token), so it needs no horizontal sums; the
//! outputs are written after the first depth block and added to after the others. With AVX2
//! the 16 rows are two 256-bit vectors and a tile is [`MICRO_TOKENS`] tokens (12 sums of the
//! 16 registers); with AVX-512 they are one 512-bit vector and a tile is
//! [`WIDE_MICRO_TOKENS`] tokens (8 sums of 32 registers, half the instructions per product;
//! see `x86::micro512`).
//!
//! The deeper the block, the fewer times each call's pipeline fills and its sums go back to
//! memory, so a row of up to [`MOST_DEPTH`] columns is one block, though the panel (up to 2 MiB
//! of f32) then streams from L3 instead of staying in L2: the micro-panels are read in order,
//! which the prefetchers keep up with.
//!
//! F16 panels on x86 keep the weights as stored, two depth steps of 16 f16 per 64-byte column
//! ([`PanelForm::Half`]), and the micro-kernel widens them with F16C: half the bytes pass from
//! the caches per multiply-add. BF16's widening (a zero extension and a shift, two more
//! instructions per vector) costs what the smaller panel saves, so F32 panels, and BF16 panels
//! without AVX512-BF16, are f32 ([`PanelForm::Wide`]). Where the CPU has AVX512-BF16 and the
//! activations are rounded to BF16, a BF16 panel keeps pairs of depth steps side by side, 16
//! rows by 2 BF16 per column ([`PanelForm::Pairs`]), which `vdpbf16ps` multiplies by a
//! broadcast pair of activations: two products per lane and instruction.

use super::format::float_code;
use super::isa::Isa;
#[cfg(target_arch = "x86_64")]
use super::micro::PAIR_MICRO_TOKENS;
use super::micro::{Column, MicroTile, MICRO_ROWS, MICRO_TOKENS, WIDE_MICRO_TOKENS};
use super::scalar::{self, Widen};
use super::share::Share;
use super::tile::{FloatRows, Output};
#[cfg(target_arch = "x86_64")]
use super::x86;
use std::cell::RefCell;

/// Most columns packed at a time (one depth block): a longer row is packed in equal blocks
/// of at most this many, so that a tile's activations (8 tokens by the block of f32, or 12 of
/// BF16: 256 or 192 KiB) stay in L2 beside the micro-panel streaming past them.
const MOST_DEPTH: usize = 8192;
/// Rows packed at a time: four micro-panels.
const PANEL_ROWS: usize = 64;

/// How a panel stores its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PanelForm {
    /// Widened to f32, one depth step per column.
    Wide,
    /// Raw f16, two depth steps per column, widened by the micro-kernel.
    Half,
    /// Raw BF16 in pairs of depth steps, each 32-bit lane one row's values of two steps, for
    /// `vdpbf16ps` against BF16 activations (AVX512-BF16).
    Pairs,
}

impl PanelForm {
    /// The form of panels of format `code` at level `isa`.
    fn of(isa: Isa, code: u8) -> PanelForm {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 if code == float_code::F16 => PanelForm::Half,
            _ => PanelForm::Wide,
        }
    }

    /// Columns of a micro-panel `depth` steps deep.
    fn columns(self, depth: usize) -> usize {
        match self {
            PanelForm::Wide => depth,
            PanelForm::Half | PanelForm::Pairs => depth.div_ceil(2),
        }
    }
}

/// Packs rows `r0..r0+rows` (at most [`MICRO_ROWS`]), `depth` columns from `k0`, into a
/// micro-panel's columns.
type Pack<V> = unsafe fn(&FloatRows<V>, usize, usize, usize, usize, &mut [Column]);

/// A micro-kernel for a number of tokens, over activations of type `X`.
type MicroKernel<X = f32> = unsafe fn(MicroTile<X>);

/// A micro-kernel over two adjacent micro-panels by the same tokens in one pass.
type TwinKernel<X = f32> = unsafe fn(MicroTile<X>, MicroTile<X>);

/// The micro-kernels of one tile of tokens: one micro-panel at a time, and where the level has
/// one, two at a time (the last micro-panel of an odd count takes the single one).
struct Kernels<X = f32> {
    one: MicroKernel<X>,
    twin: Option<TwinKernel<X>>,
}

thread_local! {
    /// Each thread's packed panel.
    static PANEL: RefCell<Vec<Column>> = const { RefCell::new(Vec::new()) };
}

/// The micro-kernel `$m::$k` for a token count `$tokens`: `$m::$k::<n>` for each of the listed
/// counts, `$m::$k::<$most>` (the largest) for any other, as a `$kind` (default
/// [`MicroKernel`]).
macro_rules! for_tokens {
    ($tokens:expr, $m:ident::$k:ident, [$($n:literal)*], $most:expr) => {
        for_tokens!($tokens, $m::$k, [$($n)*], $most, MicroKernel<_>)
    };
    ($tokens:expr, $m:ident::$k:ident, [$($n:literal)*], $most:expr, $kind:ty) => {
        match $tokens {
            $($n => $m::$k::<$n> as $kind,)*
            _ => $m::$k::<$most>,
        }
    };
}

/// The share of a product of `tokens` rows of `x` with float rows `values` (`cols` each,
/// format `code`) over packed panels, written through `output`: chunk `c` of `chunks` of the
/// rows, each chunk a whole number of panels (chunks past the rows are empty).
pub(super) fn packed_share<'a, V: Copy + Into<Widen> + Sync>(
    isa: Isa,
    code: u8,
    w: FloatRows<'a, V>,
    x: &'a [f32],
    tokens: usize,
    output: Output,
) -> Share<'a> {
    let form = PanelForm::of(isa, code);
    let pack = packer::<V>(isa, code, form);
    let tiles = (micro_tokens(isa), move |t| Kernels {
        one: micro_kernel(isa, form, t),
        twin: twin_kernel(isa, form, t),
    });
    panel_share(form, pack, tiles, w, x, tokens, output)
}

/// As [`packed_share`] for BF16 rows against `x`, the activations rounded to BF16 (bit
/// patterns), over pair panels multiplied with `vdpbf16ps`: two products per lane and
/// instruction, as llama.cpp does for BF16 weights.
///
/// The caller must have checked that the CPU has AVX512-BF16 ([`Isa::has_bf16_dot`]).
#[cfg(target_arch = "x86_64")]
pub(super) fn packed_bf16_share<'a>(
    w: FloatRows<'a, u16>,
    x: &'a [u16],
    tokens: usize,
    output: Output,
) -> Share<'a> {
    use x86::micro512;
    let kernel = |tokens: usize| Kernels {
        one: for_tokens!(
            tokens,
            micro512::micro_kernel_pairs,
            [1 2 3 4 5 6 7 8 9 10 11],
            PAIR_MICRO_TOKENS
        ),
        twin: None,
    };
    let tiles = (PAIR_MICRO_TOKENS, kernel);
    let pack = x86::bf16_dot::pack_pairs;
    panel_share(PanelForm::Pairs, pack, tiles, w, x, tokens, output)
}

/// The loop nest of [`packed_share`]: panels of the chunk's rows by depth blocks, packed by
/// `pack` into panels of `form`, then every tile of up to `most_tokens` tokens over the
/// panel's micro-panels through `kernels(tokens)`, two micro-panels at a time where there is a
/// twin kernel.
fn panel_share<'a, V: Sync, X: Sync>(
    form: PanelForm,
    pack: Pack<V>,
    (most_tokens, kernels): (usize, impl Fn(usize) -> Kernels<X> + Sync + 'a),
    w: FloatRows<'a, V>,
    x: &'a [X],
    tokens: usize,
    output: Output,
) -> Share<'a> {
    let cols = w.cols;
    let rows = w.values.len() / cols;
    let block = depth_block(cols);
    Box::new(move |c, chunks| {
        let chunk = rows.div_ceil(chunks).next_multiple_of(PANEL_ROWS);
        let end = ((c + 1) * chunk).min(rows);
        PANEL.with_borrow_mut(|panel| {
            for p0 in (c * chunk..end).step_by(PANEL_ROWS) {
                let micro_panels = (end - p0).min(PANEL_ROWS).div_ceil(MICRO_ROWS);
                for k0 in (0..cols).step_by(block) {
                    let depth = block.min(cols - k0);
                    let columns = form.columns(depth);
                    panel.resize(micro_panels * columns, Column([0.0; MICRO_ROWS]));
                    let micro = |m: usize| {
                        let r0 = p0 + m * MICRO_ROWS;
                        (r0, (end - r0).min(MICRO_ROWS))
                    };
                    for (m, micro_panel) in panel.chunks_exact_mut(columns).enumerate() {
                        let (r0, n) = micro(m);
                        // SAFETY: the level is supported; rows r0..r0+n and the depth exist.
                        unsafe { pack(&w, r0, n, k0, depth, micro_panel) };
                    }
                    for t0 in (0..tokens).step_by(most_tokens) {
                        let kernels = kernels(most_tokens.min(tokens - t0));
                        let tile = |m: usize| {
                            let (r0, n) = micro(m);
                            MicroTile {
                                panel: &panel[m * columns..(m + 1) * columns],
                                depth,
                                x: x[t0 * cols + k0..].as_ptr(),
                                x_stride: cols,
                                out: output.at(t0, r0),
                                rows: n,
                                accumulate: k0 > 0,
                            }
                        };
                        let mut m = 0;
                        while m < micro_panels {
                            match kernels.twin {
                                Some(twin) if m + 1 < micro_panels => {
                                    // SAFETY: the level is supported; the tokens and the depth
                                    // exist, and the cells of these rows and tokens are this
                                    // chunk's.
                                    unsafe { twin(tile(m), tile(m + 1)) };
                                    m += 2;
                                }
                                _ => {
                                    // SAFETY: as for the twin kernel.
                                    unsafe { (kernels.one)(tile(m)) };
                                    m += 1;
                                }
                            }
                        }
                    }
                }
            }
        })
    })
}

/// Columns of a depth block of rows of `cols` columns: the fewest equal blocks of at most
/// [`MOST_DEPTH`], rounded up to a multiple of 8 (the packing's transposes).
fn depth_block(cols: usize) -> usize {
    cols.div_ceil(cols.div_ceil(MOST_DEPTH)).next_multiple_of(8)
}

/// The packing of format `code` at level `isa` into panels of `form`.
fn packer<V: Copy + Into<Widen>>(isa: Isa, code: u8, form: PanelForm) -> Pack<V> {
    macro_rules! formats {
        ($($m:ident)::+) => {
            match code {
                float_code::F32 => $($m)::+::pack::<V, { float_code::F32 }> as Pack<V>,
                float_code::F16 => $($m)::+::pack::<V, { float_code::F16 }>,
                _ => $($m)::+::pack::<V, { float_code::BF16 }>,
            }
        };
    }
    match (isa, form) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, PanelForm::Half) => x86::avx512::pack_half::<V> as Pack<V>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, PanelForm::Half) => x86::avx2::pack_half::<V> as Pack<V>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, _) => formats!(x86::avx512),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, _) => formats!(x86::avx2),
        _ => formats!(scalar),
    }
}

/// Most tokens of one micro-kernel call at level `isa`: [`WIDE_MICRO_TOKENS`] in AVX-512's
/// 512-bit registers, [`MICRO_TOKENS`] elsewhere.
fn micro_tokens(isa: Isa) -> usize {
    if isa == Isa::Avx512 {
        WIDE_MICRO_TOKENS
    } else {
        MICRO_TOKENS
    }
}

/// The micro-kernel over panels of `form` for `tokens` (1 to [`micro_tokens`]) at level
/// `isa`.
fn micro_kernel(isa: Isa, form: PanelForm, tokens: usize) -> MicroKernel {
    #[cfg(target_arch = "x86_64")]
    use x86::{micro256, micro512};
    match (isa, form) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, PanelForm::Half) => {
            for_tokens!(tokens, micro512::micro_kernel_half, [1 2 3 4 5 6 7], WIDE_MICRO_TOKENS)
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, PanelForm::Half) => {
            for_tokens!(tokens, micro256::micro_kernel_half, [1 2 3 4 5], MICRO_TOKENS)
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, _) => {
            for_tokens!(tokens, micro512::micro_kernel, [1 2 3 4 5 6 7], WIDE_MICRO_TOKENS)
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, _) => for_tokens!(tokens, micro256::micro_kernel, [1 2 3 4 5], MICRO_TOKENS),
        _ => for_tokens!(tokens, scalar::micro_kernel, [1 2 3 4 5], MICRO_TOKENS),
    }
}

/// The twin micro-kernel over panels of `form` for `tokens` (1 to [`micro_tokens`]) at level
/// `isa`, where it has one: F32 and F16 panels at AVX-512 (see `micro512::micro_kernel_twin`).
fn twin_kernel(isa: Isa, form: PanelForm, tokens: usize) -> Option<TwinKernel> {
    #[cfg(target_arch = "x86_64")]
    use x86::micro512;
    match (isa, form) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, PanelForm::Half) => Some(for_tokens!(
            tokens,
            micro512::micro_kernel_half_twin,
            [1 2 3 4 5 6 7],
            WIDE_MICRO_TOKENS,
            TwinKernel
        )),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, PanelForm::Wide) => Some(for_tokens!(
            tokens,
            micro512::micro_kernel_twin,
            [1 2 3 4 5 6 7],
            WIDE_MICRO_TOKENS,
            TwinKernel
        )),
        _ => None,
    }
}
