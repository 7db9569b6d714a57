//! The small operating-system layer of llamaperf: the calls into Linux that need `unsafe` or
//! raw mappings, behind safe functions, so the CLI crate can forbid unsafe code.
//!
//! - [`fs`]: free space of a file system.
//! - [`huge_pages`]: buffers on transparent huge pages (decode's weights, the calibration's
//!   streams).
//! - [`lock`]: exclusive advisory locks on lock files that die with their process.
//! - [`process`]: dying with the parent or on a closed pipe, the calling thread's id, signals
//!   to process groups.

pub mod fs;
pub mod huge_pages;
pub mod lock;
pub mod process;

pub use huge_pages::HugeBuffer;
