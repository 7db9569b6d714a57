//! Whether this machine really runs AMX tile instructions.
//!
//! Some virtual machines list AMX in CPUID while their tile state is not enabled: llama.cpp's
//! AMX kernels then die by SIGILL at their first tile instruction. The probe runs some
//! (`ldtilecfg`, `tilezero`, `tilerelease`) in a forked child, after asking the kernel for the
//! tile state as llama.cpp does, on the child's main thread and then on a thread it creates
//! (llama.cpp's kernels run on its worker threads), and reads how the child ended.

use serde::{Deserialize, Serialize};

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "amx", content = "reason", rename_all = "snake_case")]
pub enum AmxSupport {
    /// CPUID does not list AMX-TILE and AMX-INT8 (or the machine is not x86-64).
    NotListed,
    /// A tile instruction ran.
    Usable,
    /// CPUID lists AMX but it cannot be used; the reason says what failed.
    Refused(String),
}

impl AmxSupport {
    /// Whether llama.cpp's AMX kernels may run.
    pub fn usable(&self) -> bool {
        matches!(self, AmxSupport::Usable)
    }
}

/// Probes AMX: CPUID first, then a tile instruction in a forked child.
pub fn probe() -> AmxSupport {
    if !listed() {
        return AmxSupport::NotListed;
    }
    run_in_child()
}

#[cfg(target_arch = "x86_64")]
fn listed() -> bool {
    // leaf 7 is read only where leaf 0 reports a maximum of at least 7
    let max_leaf = core::arch::x86_64::__cpuid(0).eax;
    let edx = if max_leaf >= 7 {
        core::arch::x86_64::__cpuid_count(7, 0).edx
    } else {
        0
    };
    const AMX_TILE: u32 = 1 << 24;
    const AMX_INT8: u32 = 1 << 25;
    max_leaf >= 7 && edx & AMX_TILE != 0 && edx & AMX_INT8 != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn listed() -> bool {
    false
}

/// Exit status of the child when the kernel refuses the tile state.
#[cfg(target_arch = "x86_64")]
const REFUSED_EXIT: i32 = 3;

#[cfg(target_arch = "x86_64")]
fn run_in_child() -> AmxSupport {
    // SAFETY: the child makes a system call, runs tile instructions on its thread and on one
    // it creates (glibc's fork makes the allocator and thread creation safe in the child),
    // and ends by _exit without touching the parent's state.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return AmxSupport::Refused(format!(
            "cannot fork the AMX probe: {}",
            std::io::Error::last_os_error()
        ));
    }
    if pid == 0 {
        // SAFETY: in the forked child, which it ends.
        unsafe { tile_instructions_then_exit() }
    }
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    if waited != pid {
        return AmxSupport::Refused(format!(
            "waiting for the AMX probe: {}",
            std::io::Error::last_os_error()
        ));
    }
    judge(status)
}

#[cfg(not(target_arch = "x86_64"))]
fn run_in_child() -> AmxSupport {
    AmxSupport::NotListed
}

/// The verdict on the child's wait status.
#[cfg(target_arch = "x86_64")]
fn judge(status: i32) -> AmxSupport {
    if libc::WIFEXITED(status) {
        return match libc::WEXITSTATUS(status) {
            0 => AmxSupport::Usable,
            REFUSED_EXIT => AmxSupport::Refused(
                "CPUID lists AMX but the kernel refuses the tile state (arch_prctl)".into(),
            ),
            code => AmxSupport::Refused(format!("the AMX probe exited with status {code}")),
        };
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let name = if signal == libc::SIGILL {
            "SIGILL".to_string()
        } else {
            format!("signal {signal}")
        };
        return AmxSupport::Refused(format!(
            "CPUID lists AMX but a tile instruction raised {name}"
        ));
    }
    AmxSupport::Refused(format!("the AMX probe ended with wait status {status}"))
}

/// Asks for the tile state, runs tile instructions on this thread and on a new one, exits 0
/// (or [`REFUSED_EXIT`]).
///
/// # Safety
/// Only to be called in a freshly forked child: it never returns.
#[cfg(target_arch = "x86_64")]
unsafe fn tile_instructions_then_exit() -> ! {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes this process's permissions.
    let refused = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    } != 0;
    if refused {
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(REFUSED_EXIT) }
    }
    tile_instructions();
    // glibc's fork leaves the child's allocator and thread creation usable
    let joined = std::thread::spawn(tile_instructions).join().is_ok();
    // SAFETY: ends the child without running the parent's destructors.
    unsafe { libc::_exit(if joined { 0 } else { 1 }) }
}

/// Configures tile 0, zeroes it and releases the tiles; a CPU without usable AMX raises
/// SIGILL, which ends the whole (forked) process.
#[cfg(target_arch = "x86_64")]
fn tile_instructions() {
    // Palette 1, tile 0 of 1 row of 4 bytes: the smallest valid configuration.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);
    let mut config = TileConfig([0; 64]);
    config.0[0] = 1;
    config.0[16] = 4;
    config.0[48] = 1;
    // SAFETY: `config` is a valid 64-byte tile configuration, read only; the instructions
    // touch no memory else and no general register.
    unsafe {
        core::arch::asm!(
            "ldtilecfg [{cfg}]",
            "tilezero tmm0",
            "tilerelease",
            cfg = in(reg) config.0.as_ptr(),
            options(nostack, readonly)
        );
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn a_clean_exit_means_usable_and_sigill_means_refused() {
        assert_eq!(judge(0), AmxSupport::Usable);
        // wait status of a process killed by signal 4 (SIGILL): the signal in the low bits
        match judge(libc::SIGILL) {
            AmxSupport::Refused(reason) => assert!(reason.contains("SIGILL"), "{reason}"),
            other => panic!("{other:?}"),
        }
        match judge(REFUSED_EXIT << 8) {
            AmxSupport::Refused(reason) => assert!(reason.contains("arch_prctl"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_probe_agrees_with_cpuid() {
        let support = probe();
        if listed() {
            eprintln!("AMX listed: {support:?}");
            assert_ne!(support, AmxSupport::NotListed);
        } else {
            assert_eq!(support, AmxSupport::NotListed);
        }
    }
}
