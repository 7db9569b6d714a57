//! SIGINT and SIGTERM as one process-wide flag that long loops poll: scenario parsing, matrix
//! expansion, planning, synthesis, calibration and sweeps stop at their next check, and the
//! command exits 130. Before [`install`] the signals keep their default action (the process ends).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The flag SIGINT and SIGTERM set once [`install`] ran (never set before).
pub fn flag() -> &'static AtomicBool {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Makes SIGINT and SIGTERM set [`flag`] instead of ending the process (once per process).
pub fn install() -> std::io::Result<()> {
    let shared = Arc::clone(FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&shared))?;
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// A loop stopped because SIGINT or SIGTERM arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by SIGINT or SIGTERM")]
pub struct Interrupted;

/// `Err(Interrupted)` once SIGINT or SIGTERM arrived: the check a long loop makes.
pub fn check() -> Result<(), Interrupted> {
    if requested() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}
