//! Float prefill over packed panels of weights, the loop nest of a BLIS-style matrix product.
//!
//! Each thread copies a panel of its rows, [`PANEL_ROWS`] rows by a depth block of columns
//! (the whole row up to [`MOST_DEPTH`] columns, else the row in equal blocks), widened to f32,
//! into micro-panels of [`MICRO_ROWS`] rows stored column by column; every tile of up to
//! [`MICRO_TOKENS`] tokens then passes over the panel, its slice of activations (6 tokens by
//! the depth, at most 192 KiB) staying in L2 while the micro-panels stream past it. The
//! micro-kernel keeps a 16-row by 6-token block of outputs in 12 vector registers and adds one
//! column's outer product per step (two loads of weights, six broadcast activations, twelve
//! multiply-adds), so it needs no horizontal sums and fits AVX2's 16 registers; the outputs are
//! written after the first depth block and added to after the others.
//!
//! The deeper the block, the fewer times each call's pipeline fills and its sums go back to
//! memory: whole rows of 2048 and 8192 columns made F16, BF16 and F32 products of 128 and 512
//! tokens 3-17% faster than blocks of 1024 columns on 2 Zen 3 cores (medians of 14 interleaved
//! calls per shape), though the panel (up to 2 MiB of f32) then streams from L3 instead of
//! staying in L2: the micro-panels are read in order, which the prefetchers keep up with.
//!
//! F16 panels on x86 keep the weights as stored, two depth steps of 16 f16 per 64-byte column
//! ([`PanelForm::Half`]), and the micro-kernel widens them with F16C: half the bytes pass from
//! the caches per multiply-add, which made F16 products of 128 tokens 7-11% faster on 2 Zen 3
//! cores (2048x2048 to 8192x2048, medians of 80 interleaved calls). BF16's widening (a zero
//! extension and a shift, two more instructions per vector) cost what it saved, so BF16 and F32
//! panels are f32 ([`PanelForm::Wide`]).

use super::isa::Isa;
use super::product::Share;
use super::scalar::{self, Widen};
use super::tile::{float_code, FloatRows, Output};
#[cfg(target_arch = "x86_64")]
use super::x86;
use std::cell::RefCell;

/// Rows of a micro-panel: two vectors of 8 lanes.
pub(super) const MICRO_ROWS: usize = 16;
/// Most tokens of one micro-kernel call.
pub(super) const MICRO_TOKENS: usize = 6;
/// Most columns packed at a time (one depth block): a longer row is packed in equal blocks
/// of at most this many, so that a tile's activations (6 tokens by the block, f32) stay in
/// L2 beside the micro-panel streaming past them.
const MOST_DEPTH: usize = 8192;
/// Rows packed at a time: four micro-panels.
const PANEL_ROWS: usize = 64;

/// One 64-byte column of a micro-panel, aligned for vector loads: one depth step of its 16
/// rows as f32 ([`PanelForm::Wide`]), or two steps of 16 raw f16 values, step by step
/// ([`PanelForm::Half`]).
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
pub(super) struct Column(pub [f32; MICRO_ROWS]);

/// What one micro-kernel call reads and writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct MicroTile<'a> {
    /// The packed micro-panel: one column per step of the depth, or per two steps in a half
    /// panel.
    pub panel: &'a [Column],
    /// Steps of the depth (columns of the activations) this call multiplies.
    pub depth: usize,
    /// The first token's activation at the panel's first column.
    pub x: *const f32,
    /// f32 values from one token's activations to the next.
    pub x_stride: usize,
    /// The outputs, seen from the tile's first token and row.
    pub out: Output,
    /// Rows of the micro-panel that exist (the others are padding).
    pub rows: usize,
    /// Whether to add to the outputs (depth blocks after the first) instead of writing them.
    pub accumulate: bool,
}

impl MicroTile<'_> {
    /// Token `t`'s activations from the panel's first column.
    ///
    /// # Safety
    /// Token `t` must be one of the tile's.
    #[inline(always)]
    pub unsafe fn token(&self, t: usize) -> *const f32 {
        // SAFETY: the caller keeps t inside the tile, whose tokens exist.
        unsafe { self.x.add(t * self.x_stride) }
    }

    /// Writes (or adds) `lanes`, token `t`'s outputs of the micro-panel's rows, for the rows
    /// that exist.
    ///
    /// # Safety
    /// Token `t` must be one of the tile's.
    #[inline(always)]
    pub unsafe fn finish(&self, t: usize, lanes: &[f32; MICRO_ROWS]) {
        for (r, value) in lanes.iter().enumerate().take(self.rows) {
            // SAFETY: the tile owns its cells (t, r) for the rows that exist.
            unsafe {
                let cell = self.out.cell(t, r);
                *cell = if self.accumulate {
                    *cell + value
                } else {
                    *value
                };
            }
        }
    }
}

/// How a panel stores its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PanelForm {
    /// Widened to f32, one depth step per column.
    Wide,
    /// Raw f16, two depth steps per column, widened by the micro-kernel.
    Half,
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
            PanelForm::Half => depth.div_ceil(2),
        }
    }
}

/// Packs rows `r0..r0+rows` (at most [`MICRO_ROWS`]), `depth` columns from `k0`, into a
/// micro-panel's columns.
type Pack<V> = unsafe fn(&FloatRows<V>, usize, usize, usize, usize, &mut [Column]);

/// A micro-kernel for a number of tokens.
type MicroKernel = unsafe fn(MicroTile);

thread_local! {
    /// Each thread's packed panel.
    static PANEL: RefCell<Vec<Column>> = const { RefCell::new(Vec::new()) };
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
    let cols = w.cols;
    let rows = w.values.len() / cols;
    let form = PanelForm::of(isa, code);
    let pack = packer::<V>(isa, code, form);
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
                    for t0 in (0..tokens).step_by(MICRO_TOKENS) {
                        let kernel = micro_kernel(isa, form, MICRO_TOKENS.min(tokens - t0));
                        for (m, micro_panel) in panel.chunks_exact(columns).enumerate() {
                            let (r0, n) = micro(m);
                            let tile = MicroTile {
                                panel: micro_panel,
                                depth,
                                x: x[t0 * cols + k0..].as_ptr(),
                                x_stride: cols,
                                out: output.at(t0, r0),
                                rows: n,
                                accumulate: k0 > 0,
                            };
                            // SAFETY: the level is supported; the tokens and the depth exist,
                            // and the cells of these rows and tokens are this chunk's.
                            unsafe { kernel(tile) }
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

/// The micro-kernel over panels of `form` for `tokens` (1 to [`MICRO_TOKENS`]) at level
/// `isa`.
fn micro_kernel(isa: Isa, form: PanelForm, tokens: usize) -> MicroKernel {
    // `$k` of module `$m`, for the token count
    macro_rules! tokens {
        ($($m:ident)::+, $k:ident) => {
            match tokens {
                1 => $($m)::+::$k::<1> as MicroKernel,
                2 => $($m)::+::$k::<2>,
                3 => $($m)::+::$k::<3>,
                4 => $($m)::+::$k::<4>,
                5 => $($m)::+::$k::<5>,
                _ => $($m)::+::$k::<6>,
            }
        };
    }
    match (isa, form) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, PanelForm::Half) => tokens!(x86::avx512, micro_kernel_half),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, PanelForm::Half) => tokens!(x86::avx2, micro_kernel_half),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, _) => tokens!(x86::avx512, micro_kernel),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, _) => tokens!(x86::avx2, micro_kernel),
        _ => tokens!(scalar, micro_kernel),
    }
}
