//! A matrix's part of a parallel product: the closure each thread calls for its chunks of the
//! matrix's rows.

/// One matrix's part of a parallel product: `share(c, chunks)` computes chunk `c` of `chunks`
/// of its rows.
pub(super) type Share<'a> = Box<dyn Fn(usize, usize) + Sync + 'a>;
