//! A team of the compute pool's threads that stay awake through a forward pass: the parallel
//! steps of a pass (about 5 per layer) are handed to spinning threads instead of waking
//! sleeping ones each time, as llama.cpp's thread pool does.
//!
//! [`Team::scope`] enlists the pool's other threads for the duration of a closure; inside it,
//! [`parallel`] runs `count` shares of a step on the team (the calling thread takes shares too,
//! so a step finishes even when no helper has arrived). Outside a team, [`parallel`] is a
//! rayon broadcast.
//!
//! A share must not start parallel work of its own: the helpers spin in the team, not in the
//! pool, so a rayon broadcast from inside a share would wait for them forever.

use std::cell::RefCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// Spins of a waiting thread before it starts yielding its CPU on every further check, so an
/// oversubscribed machine still makes progress.
const SPINS_BEFORE_YIELD: u32 = 1 << 14;

/// One step: `f(share, count)` for every share.
#[derive(Clone, Copy)]
struct Step {
    f: *const (dyn Fn(usize, usize) + Sync),
    count: usize,
}

/// What the calling thread and its helpers share.
struct Shared {
    /// Even: `step` is published; odd: the caller is replacing it.
    epoch: AtomicUsize,
    step: std::cell::UnsafeCell<Option<Step>>,
    /// Next share to claim.
    next: AtomicUsize,
    /// Shares finished.
    done: AtomicUsize,
    /// Helpers reading the current step.
    active: AtomicUsize,
    /// A share panicked.
    panicked: AtomicBool,
    /// The team is over: helpers go back to the pool.
    stop: AtomicBool,
    /// The pool index of the calling thread (its own broadcast copy leaves at once).
    caller: Option<usize>,
}

// SAFETY: `step` is written only by the calling thread while `epoch` is odd and no helper is
// active, and read by helpers only while active under an even, unchanged epoch (a seqlock);
// the closure it points to outlives every share (the caller waits for them).
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

thread_local! {
    /// The team of the calling thread, while inside [`Team::scope`].
    static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// The calling thread's team, if any.
fn current() -> Option<Arc<Shared>> {
    CURRENT.with_borrow(Clone::clone)
}

/// Enlists the pool's other threads in a new team led by the calling thread.
fn enlist() {
    let shared = Arc::new(Shared {
        epoch: AtomicUsize::new(0),
        step: std::cell::UnsafeCell::new(None),
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        active: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        caller: rayon::current_thread_index(),
    });
    let helpers = shared.clone();
    rayon::spawn_broadcast(move |ctx| help(&helpers, ctx.index()));
    CURRENT.with_borrow_mut(|c| *c = Some(shared));
}

/// Sends the calling thread's team back to the pool.
fn dismiss() {
    if let Some(shared) = CURRENT.with_borrow_mut(Option::take) {
        shared.stop.store(true, SeqCst);
    }
}

/// Spins until `done()`, yielding the CPU once the wait gets long.
fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins = spins.saturating_add(1);
        if spins > SPINS_BEFORE_YIELD {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The calling thread's team; see the module documentation.
pub struct Team;

impl Team {
    /// Runs `f` with the compute pool's other threads enlisted as spinning helpers; they go back
    /// to the pool when `f` returns. Nested calls run in the outer team.
    pub fn scope<R>(f: impl FnOnce() -> R) -> R {
        if current().is_some() || rayon::current_num_threads() < 2 {
            return f();
        }
        struct Dismiss;
        impl Drop for Dismiss {
            fn drop(&mut self) {
                dismiss();
            }
        }
        enlist();
        let _dismiss = Dismiss;
        f()
    }

    /// Runs `f` with the calling thread's team (if any) back in the pool, for work that uses
    /// the pool itself (candle's kernels), then enlists it again.
    pub fn suspended<R>(f: impl FnOnce() -> R) -> R {
        if current().is_none() {
            return f();
        }
        dismiss();
        struct Enlist;
        impl Drop for Enlist {
            fn drop(&mut self) {
                enlist();
            }
        }
        let _enlist = Enlist;
        f()
    }
}

/// Runs `f(share, count)` for every share in `0..count`, in parallel on the calling thread's
/// team, or as a rayon broadcast (share = thread index) outside a team; returns when all are
/// done.
pub fn parallel(count: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    match current() {
        Some(shared) => run(&shared, count, f),
        None if count == 1 => f(0, 1),
        None => {
            rayon::broadcast(|ctx| {
                for share in (ctx.index()..count).step_by(ctx.num_threads()) {
                    f(share, count)
                }
            });
        }
    }
}

/// Shares of the team's thread count: one per pool thread.
pub fn width() -> usize {
    rayon::current_num_threads().max(1)
}

/// The caller's side of a step.
fn run(shared: &Shared, count: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    // replace the step: odd epoch first, then wait out helpers still reading the last one
    shared.epoch.fetch_add(1, SeqCst);
    wait_until(|| shared.active.load(SeqCst) == 0);
    // SAFETY: the closure's lifetime is erased; this function returns only after every share
    // has run and no helper holds the step any more.
    let f = unsafe {
        std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), *const (dyn Fn(usize, usize) + Sync)>(
            f,
        )
    };
    let step = Step { f, count };
    // SAFETY: the epoch is odd and no helper is active: nobody reads the slot.
    unsafe { *shared.step.get() = Some(step) };
    shared.next.store(0, SeqCst);
    shared.done.store(0, SeqCst);
    shared.epoch.fetch_add(1, SeqCst);
    claim(shared, step);
    wait_until(|| shared.done.load(SeqCst) >= count);
    // no helper may still hold the step when `f` goes out of scope
    wait_until(|| shared.active.load(SeqCst) == 0);
    if shared.panicked.swap(false, SeqCst) {
        resume_unwind(Box::new("a share of a parallel step panicked"));
    }
}

/// Claims and runs shares of `step` until none is left.
fn claim(shared: &Shared, step: Step) {
    loop {
        let share = shared.next.fetch_add(1, SeqCst);
        if share >= step.count {
            return;
        }
        // SAFETY: the step's closure lives until every share is done.
        let f = unsafe { &*step.f };
        if catch_unwind(AssertUnwindSafe(|| f(share, step.count))).is_err() {
            shared.panicked.store(true, SeqCst);
        }
        shared.done.fetch_add(1, SeqCst);
    }
}

/// A helper's loop: wait (spinning) for a new step, claim its shares, until the team stops.
fn help(shared: &Shared, index: usize) {
    if shared.caller == Some(index) {
        return;
    }
    let mut seen = 0;
    loop {
        let fresh = |epoch: usize| epoch != seen && epoch.is_multiple_of(2);
        wait_until(|| shared.stop.load(SeqCst) || fresh(shared.epoch.load(SeqCst)));
        if shared.stop.load(SeqCst) {
            return;
        }
        let epoch = shared.epoch.load(SeqCst);
        if !fresh(epoch) {
            continue;
        }
        shared.active.fetch_add(1, SeqCst);
        if shared.epoch.load(SeqCst) == epoch {
            // SAFETY: active under an even, unchanged epoch: the slot is published and stays.
            if let Some(step) = unsafe { *shared.step.get() } {
                claim(shared, step);
            }
            seen = epoch;
        }
        shared.active.fetch_sub(1, SeqCst);
    }
}

/// A mutable slice shared by the shares of a parallel step, each of which touches only its own
/// part.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: shares reach the values only through `slice`, whose caller guarantees disjoint ranges.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Shares `values` for the duration of its borrow.
    pub fn new(values: &'a mut [T]) -> Self {
        SharedMut {
            ptr: values.as_mut_ptr(),
            len: values.len(),
            _slice: std::marker::PhantomData,
        }
    }

    /// The values in `range`.
    ///
    /// # Safety
    /// No other share may use an overlapping range while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, range: std::ops::Range<usize>) -> &mut [T] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range inside the slice"
        );
        // SAFETY: in bounds (checked), and exclusive by the caller's guarantee.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn every_share_of_every_step_runs_once_inside_a_team() {
        let pool = pool(3);
        pool.install(|| {
            Team::scope(|| {
                for step in 0..2_000usize {
                    let count = 1 + step % 7;
                    let hits: Vec<AtomicU64> = (0..count).map(|_| AtomicU64::new(0)).collect();
                    parallel(count, &|share, n| {
                        assert_eq!(n, count);
                        hits[share].fetch_add(1, SeqCst);
                    });
                    assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "step {step}");
                }
            })
        });
    }

    #[test]
    fn outside_a_team_a_step_is_a_broadcast_and_a_team_ends_with_its_scope() {
        let pool = pool(2);
        pool.install(|| {
            let total = AtomicU64::new(0);
            parallel(2, &|share, _| {
                total.fetch_add(share as u64 + 1, SeqCst);
            });
            assert_eq!(total.load(SeqCst), 3);
            Team::scope(|| ());
            // the helpers left: the pool still runs ordinary work
            assert_eq!(pool.join(|| 1, || 2), (1, 2));
        });
    }

    #[test]
    fn a_panicking_share_panics_the_caller_and_the_team_still_works() {
        let pool = pool(2);
        pool.install(|| {
            Team::scope(|| {
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    parallel(4, &|share, _| assert_ne!(share, 2, "share 2 fails"));
                }));
                assert!(caught.is_err());
                let total = AtomicU64::new(0);
                parallel(4, &|_, _| {
                    total.fetch_add(1, SeqCst);
                });
                assert_eq!(total.load(SeqCst), 4);
            })
        });
    }
}
