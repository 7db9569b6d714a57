//! Which SIMD instruction set the kernels use, chosen once per process at run time.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::OnceLock;

/// Environment variable that caps the instruction set (`scalar`, `avx2`, `avx512`), so the
/// slower paths can be measured and tested on a machine that has the faster ones.
pub const ISA_ENV: &str = "LLAMAPERF_ISA";

/// An instruction-set level of the matrix kernels, from slowest to fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isa {
    /// Portable Rust; runs anywhere.
    Scalar,
    /// AVX2 with FMA and F16C: 8-lane f32, `vpmaddubsw` integer dots.
    Avx2,
    /// AVX-512 (F, BW, VL) with VNNI: `vpdpbusd` integer dots, 32 vector registers.
    Avx512,
}

impl Isa {
    /// Every level, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// Name used in `LLAMAPERF_ISA` and in run records.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The CPU features the level needs that this CPU lacks (as `is_x86_feature_detected!`
    /// names them), empty when it can execute the level.
    pub fn missing_features(self) -> Vec<&'static str> {
        #[cfg(target_arch = "x86_64")]
        {
            let needs: &[(&str, bool)] = match self {
                Isa::Scalar => &[],
                Isa::Avx2 => &[
                    ("avx2", is_x86_feature_detected!("avx2")),
                    ("fma", is_x86_feature_detected!("fma")),
                    ("f16c", is_x86_feature_detected!("f16c")),
                ],
                Isa::Avx512 => &[
                    ("avx2", is_x86_feature_detected!("avx2")),
                    ("fma", is_x86_feature_detected!("fma")),
                    ("f16c", is_x86_feature_detected!("f16c")),
                    ("avx512f", is_x86_feature_detected!("avx512f")),
                    ("avx512bw", is_x86_feature_detected!("avx512bw")),
                    ("avx512vl", is_x86_feature_detected!("avx512vl")),
                    ("avx512vnni", is_x86_feature_detected!("avx512vnni")),
                ],
            };
            needs
                .iter()
                .filter(|(_, has)| !has)
                .map(|(name, _)| *name)
                .collect()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            match self {
                Isa::Scalar => Vec::new(),
                _ => vec!["x86_64"],
            }
        }
    }

    /// Whether this CPU can execute the level (whatever `LLAMAPERF_ISA` says).
    pub fn supported(self) -> bool {
        self.missing_features().is_empty()
    }

    /// The level `LLAMAPERF_ISA` caps the kernels at, read once per process; `None` when it is
    /// unset or names no level.
    pub fn cap() -> Option<Isa> {
        static CAP: OnceLock<Option<Isa>> = OnceLock::new();
        *CAP.get_or_init(|| {
            let value = std::env::var(ISA_ENV).ok()?;
            Isa::ALL.into_iter().find(|isa| isa.name() == value)
        })
    }

    /// Why this process does not run the level: the features this CPU lacks, or the cap of
    /// `LLAMAPERF_ISA`; `None` when the level is [available](Isa::available).
    pub fn unavailable_reason(self) -> Option<String> {
        let missing = self.missing_features();
        if !missing.is_empty() {
            return Some(format!("this CPU lacks {}", missing.join(", ")));
        }
        match Isa::cap() {
            Some(cap) if self > cap => Some(format!("{ISA_ENV}={cap} caps the level below {self}")),
            _ => None,
        }
    }

    /// Whether prefill at this level multiplies BF16 weights as pair panels with `vdpbf16ps`
    /// ([`Isa::has_bf16_dot`]) rather than widening them to f32 for FMA: on AMD, whose
    /// `vdpbf16ps` does twice an FMA's products per instruction at the FMA's rate. Intel's
    /// (Sapphire/Emerald Rapids) does not, so there widening is faster.
    pub fn packs_bf16_pairs(self) -> bool {
        self.has_bf16_dot() && !cpu_is_intel()
    }

    /// Whether this level multiplies BF16 weights with BF16 activations (`vdpbf16ps`, two
    /// products per lane and instruction): AVX-512 on a CPU with AVX512-BF16.
    pub fn has_bf16_dot(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self == Isa::Avx512 && self.supported() && is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The levels this process may run, slowest first: those this CPU can execute, up to the
    /// cap of `LLAMAPERF_ISA` when it names a level (an unknown name is ignored). Tests loop over
    /// these, so a capped process tests the slower levels only.
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.unavailable_reason().is_none())
            .collect()
    }

    /// The level the kernels use in this process: the fastest [available](Isa::available) one.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| Isa::available().into_iter().max().unwrap_or(Isa::Scalar))
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the CPU's vendor is Intel (CPUID leaf 0 reads "GenuineIntel"), read once per
/// process: `cpuid` traps to the hypervisor in a VM, and prefill asks once per product.
pub(super) fn cpu_is_intel() -> bool {
    static INTEL: OnceLock<bool> = OnceLock::new();
    *INTEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let leaf = std::arch::x86_64::__cpuid(0);
            [leaf.ebx, leaf.edx, leaf.ecx] == [0x756e_6547, 0x4965_6e69, 0x6c65_746e]
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}
