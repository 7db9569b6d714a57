//! The machine a run executes on.

/// Number of CPUs this process may run on (its affinity mask, which taskset and cgroups
/// narrow); falls back to the available parallelism where the mask cannot be read.
pub fn allowed_cpus() -> usize {
    core_affinity::get_core_ids()
        .map(|ids| ids.len())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}
