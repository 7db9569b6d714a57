//! The settings of engine `torch` (scenario keys `torch_backend` and `torch_dtype`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What PyTorch does to the Hugging Face model before it runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TorchBackend {
    /// The model as transformers builds it, op by op.
    #[default]
    Eager,
    /// `torch.compile` with its default (Inductor) backend.
    Compile,
    /// Intel Extension for PyTorch: `ipex.llm.optimize`.
    Ipex,
    /// AMD's zentorch: `torch.compile(backend="zentorch")`.
    Zentorch,
}

impl TorchBackend {
    /// Every backend, for error messages.
    pub const ALL: [TorchBackend; 4] = [
        TorchBackend::Eager,
        TorchBackend::Compile,
        TorchBackend::Ipex,
        TorchBackend::Zentorch,
    ];

    /// The name used in scenarios, on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            TorchBackend::Eager => "eager",
            TorchBackend::Compile => "compile",
            TorchBackend::Ipex => "ipex",
            TorchBackend::Zentorch => "zentorch",
        }
    }

    /// The virtual environment the backend runs in (`scripts/setup-torch.sh <family>`): IPEX
    /// and zentorch pin different torch releases, so each has its own; eager and compile run
    /// in IPEX's.
    pub fn family(self) -> &'static str {
        match self {
            TorchBackend::Eager | TorchBackend::Compile | TorchBackend::Ipex => "ipex",
            TorchBackend::Zentorch => "zentorch",
        }
    }
}

/// The data type the weights are cast to (and the KV cache kept in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TorchDtype {
    /// bfloat16: what IPEX and zentorch deployments run.
    #[default]
    Bf16,
    /// 32-bit float.
    F32,
}

impl TorchDtype {
    /// Every data type, for error messages.
    pub const ALL: [TorchDtype; 2] = [TorchDtype::Bf16, TorchDtype::F32];

    /// The name used in scenarios, on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            TorchDtype::Bf16 => "bf16",
            TorchDtype::F32 => "f32",
        }
    }

    /// Bytes of one weight or cached value.
    pub fn bytes(self) -> u64 {
        match self {
            TorchDtype::Bf16 => 2,
            TorchDtype::F32 => 4,
        }
    }
}

/// Engine `torch`'s settings of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorchSettings {
    /// What PyTorch does to the model.
    pub backend: TorchBackend,
    /// The data type it runs in.
    pub dtype: TorchDtype,
}

impl TorchSettings {
    /// Whether both are their defaults (records of other engines leave them out).
    pub fn is_default(&self) -> bool {
        *self == TorchSettings::default()
    }
}

impl fmt::Display for TorchSettings {
    /// `backend:dtype`, as run ids and results name the engine (`torch:ipex:bf16`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.backend, self.dtype)
    }
}

macro_rules! named {
    ($ty:ty, $err:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        #[doc = concat!("Error for a ", $what, " that does not exist.")]
        #[derive(Debug, thiserror::Error)]
        #[error("unknown {} '{given}'; valid: {}", $what,
                                            <$ty>::ALL.map(|v| v.name()).join(", "), given = .0)]
        pub struct $err(pub String);

        impl FromStr for $ty {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::ALL
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| $err(s.to_string()))
            }
        }
    };
}

named!(TorchBackend, UnknownTorchBackend, "torch backend");
named!(TorchDtype, UnknownTorchDtype, "torch dtype");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for b in TorchBackend::ALL {
            assert_eq!(b.name().parse::<TorchBackend>().unwrap(), b);
        }
        for d in TorchDtype::ALL {
            assert_eq!(d.name().parse::<TorchDtype>().unwrap(), d);
        }
        let e = "ipx".parse::<TorchBackend>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown torch backend 'ipx'; valid: eager, compile, ipex, zentorch"
        );
        let e = "fp16".parse::<TorchDtype>().unwrap_err().to_string();
        assert_eq!(e, "unknown torch dtype 'fp16'; valid: bf16, f32");
    }

    #[test]
    fn the_engine_label_names_backend_and_dtype() {
        let s = TorchSettings {
            backend: TorchBackend::Zentorch,
            dtype: TorchDtype::F32,
        };
        assert_eq!(s.to_string(), "zentorch:f32");
        assert!(TorchSettings::default().is_default());
    }
}
