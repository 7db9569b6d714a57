//! Process and thread calls the standard library does not offer.

/// Asks Linux to kill this process with SIGKILL when its parent exits, so a worker never
/// outlives the sweep that started it. A no-op elsewhere.
pub fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// The kernel's id of the calling thread (what `/proc/self/task/<tid>` and perf-event name).
pub fn thread_id() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

/// CPU time the calling thread has run, seconds (`CLOCK_THREAD_CPUTIME_ID`): the time other
/// tasks had its CPU does not count. 0 where the clock is missing.
pub fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a timespec the call writes and nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    } else {
        0.0
    }
}

/// Clock ticks per second of the CPU times in `/proc/stat` and `/proc/<pid>/stat` (USER_HZ).
pub fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf takes a name and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Sends `signal` (e.g. `libc::SIGINT`) to process `pid`.
pub fn send_signal(pid: u32, signal: i32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: kill takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sends `signal` to every process of the process group `pgid` (a child started with
/// `process_group(0)` leads a group whose id is its pid).
pub fn signal_group(pgid: u32, signal: i32) -> std::io::Result<()> {
    let pgid = i32::try_from(pgid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: killpg takes two integers and touches no memory of ours.
    if unsafe { libc::killpg(pgid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes the process `command` starts die by SIGKILL when the thread that started it ends
/// (Linux's parent-death signal, kept across `exec`), so a launched server never outlives a
/// worker that was killed. A no-op elsewhere.
pub fn kill_child_with_parent(command: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs between fork and exec and only calls prctl, which is
        // async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
}

/// Restores the default action of SIGPIPE, which Rust's runtime ignores: a write to a closed
/// pipe then ends the process quietly, as it ends `cat`, instead of making `println!` panic.
/// For processes that only print: one that writes to its children's pipes would die with a
/// child that exited early.
pub fn die_on_closed_pipe() {
    // SAFETY: signal takes a signal number and a handler constant and touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        let start = thread_cpu_s();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let slept = thread_cpu_s() - start;
        let busy = std::time::Instant::now();
        let mut spins = 0u64;
        while busy.elapsed().as_millis() < 100 {
            spins = std::hint::black_box(spins + 1);
        }
        let worked = thread_cpu_s() - start - slept;
        assert!(slept < 0.02, "{slept} s while sleeping");
        // a busy loop of 100 ms runs for some of them even on a shared host
        assert!(
            (0.005..0.2).contains(&worked),
            "{worked} s of {spins} spins"
        );
    }

    #[test]
    fn thread_ids_are_the_tasks_of_this_process() {
        let this = thread_id();
        let task = format!("/proc/self/task/{this}");
        assert!(
            std::path::Path::new(&task).is_dir(),
            "{task} is a task of this process"
        );
        let other = std::thread::spawn(thread_id).join().unwrap();
        assert_ne!(other, this);
    }

    #[test]
    fn clock_ticks_are_linux_user_hz() {
        assert_eq!(clock_ticks_per_s(), 100.0);
    }

    #[test]
    fn signals_reach_their_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        send_signal(child.id(), libc::SIGTERM).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
        assert!(send_signal(u32::MAX, libc::SIGTERM).is_err());
    }
}
