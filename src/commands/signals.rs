//! The interrupt flag of a command that stops cleanly: set by SIGINT or SIGTERM instead of
//! their default action, read by the long steps (synthesis, the runs of a sweep).

use crate::error::Context;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A flag that SIGINT and SIGTERM set from now on.
pub fn interrupt_flag() -> crate::error::Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("installing the signal handler")?;
    }
    Ok(interrupted)
}
