//! Threads pinned one per PU, their memory bound to given nodes, running timed passes in lock
//! step: the frame of the bandwidth and peak measurements.

use crate::machine::MachineError;
use hwlocality::bitmap::BitmapIndex;
use hwlocality::cpu::binding::CpuBindingFlags;
use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::memory::binding::{MemoryBindingFlags, MemoryBindingPolicy};
use hwlocality::memory::nodeset::NodeSet;
use hwlocality::Topology;
use std::sync::Barrier;
use std::time::Instant;

/// Pins the calling thread to `pu` and its allocations to `nodes`.
fn pin(topology: &Topology, pu: usize, nodes: &[usize]) -> Result<(), MachineError> {
    let index = |i: usize| BitmapIndex::try_from(i).expect("OS indices fit a bitmap");
    let set: CpuSet = std::iter::once(index(pu)).collect();
    let nodeset: NodeSet = nodes.iter().map(|&n| index(n)).collect();
    topology
        .bind_cpu(&set, CpuBindingFlags::THREAD)
        .map_err(|e| {
            MachineError::Binding(format!("pinning a calibration thread to cpu {pu}: {e}"))
        })?;
    topology
        .bind_memory(
            &nodeset,
            MemoryBindingPolicy::Bind,
            MemoryBindingFlags::THREAD,
        )
        .map_err(|e| {
            MachineError::Binding(format!(
                "binding calibration buffers to nodes {nodeset}: {e}"
            ))
        })
}

/// Runs one thread per PU of `pus`, each pinned to its PU with memory bound to `nodes`: each
/// makes its state with `setup(pu)` after pinning (so its buffers are first touched on the
/// right node), then all run `work` on it `passes` times, starting each pass together. The
/// seconds of each pass, from the first thread's start to the last one's end, and each
/// thread's state after its passes.
pub fn timed_passes<S: Send>(
    pus: &[usize],
    nodes: &[usize],
    passes: usize,
    setup: impl Fn(usize) -> S + Sync,
    work: impl Fn(&mut S) + Sync,
) -> Result<(Vec<f64>, Vec<S>), MachineError> {
    let topology = Topology::new().map_err(|e| MachineError::Binding(e.to_string()))?;
    let start = Barrier::new(pus.len() + 1);
    let done = Barrier::new(pus.len() + 1);
    let spans = std::thread::scope(|scope| {
        let handles: Vec<_> = pus
            .iter()
            .map(|&pu| {
                let (topology, start, done, setup, work) =
                    (&topology, &start, &done, &setup, &work);
                scope.spawn(
                    move || -> Result<(Vec<(Instant, Instant)>, S), MachineError> {
                        let pinned = pin(topology, pu, nodes);
                        let mut state = setup(pu);
                        let mut spans = Vec::with_capacity(passes);
                        for _ in 0..passes {
                            start.wait();
                            let begin = Instant::now();
                            work(&mut state);
                            spans.push((begin, Instant::now()));
                            done.wait();
                        }
                        pinned.map(|()| (spans, state))
                    },
                )
            })
            .collect();
        // The threads time themselves: this thread may not get a core while they work.
        for _ in 0..passes {
            start.wait();
            done.wait();
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| MachineError::Binding("a calibration thread panicked".into()))?
            })
            .collect::<Result<Vec<_>, MachineError>>()
    })?;
    let (spans, states): (Vec<_>, Vec<S>) = spans.into_iter().unzip();
    let seconds = (0..passes)
        .map(|p| {
            let begin = spans.iter().map(|s| s[p].0).min().expect("threads");
            let end = spans.iter().map(|s| s[p].1).max().expect("threads");
            (end - begin).as_secs_f64()
        })
        .collect();
    Ok((seconds, states))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_works_every_pass_on_its_own_state() {
        let count = std::sync::atomic::AtomicUsize::new(0);
        let (spans, states) = timed_passes(
            &[0, 0, 0],
            &[0],
            4,
            |pu| pu + 1,
            |s: &mut usize| {
                *s += 1;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .unwrap();
        assert_eq!(spans.len(), 4);
        assert!(spans.iter().all(|s| *s >= 0.0));
        assert_eq!(count.into_inner(), 12);
        assert_eq!(states, [5, 5, 5]);
    }
}
