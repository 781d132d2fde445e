//! Which CPU code path runs Tiny Lidar Net's matrix products (the packed network and the
//! hand-written backward pass): the AVX-512, AVX2/FMA or NEON (aarch64) micro-kernel, portable
//! loops, or Burn's own operations.
//!
//! The default is the first path in [`Kernel::PREFERENCE`] that the CPU supports, an order
//! fixed by measurement (`raceloop bench infer` prints every path side by side) rather than by
//! timing at start-up, so that a machine always takes the same path and its results are
//! reproducible. The AVX-512, AVX2 and NEON kernels do the same fused multiply-adds in the same
//! order and give bit-identical products; the portable loops round differently (no FMA).
//! `RACELOOP_KERNEL=avx512|avx2|neon|portable|burn` forces a path (for tests and benchmarks).

use std::fmt;
use std::str::FromStr;

/// A CPU code path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Register-blocked AVX-512F micro-kernel (16-lane vectors).
    Avx512,
    /// Register-blocked AVX2 + FMA micro-kernel (8-lane vectors).
    Avx2,
    /// Register-blocked NEON micro-kernel (aarch64, 4-lane vectors).
    Neon,
    /// Portable loops (any CPU).
    Portable,
    /// Burn's own forward pass and autodiff on `flex` (no packed network).
    Burn,
}

impl Kernel {
    /// Every path, fastest first as measured for Tiny Lidar Net's batch-1 inference and
    /// training: the AVX kernels beat Burn's operations, which beat the portable loops (on an
    /// AVX2-only AMD EPYC: Burn's forward pass 242–263 µs, the portable loops 471–474 µs). NEON
    /// has been run only under emulation (qemu), where speed says nothing; it is put before
    /// Burn like the AVX kernels, whose design it shares.
    pub const PREFERENCE: [Kernel; 5] = [
        Self::Avx512,
        Self::Avx2,
        Self::Neon,
        Self::Burn,
        Self::Portable,
    ];
    /// The environment variable that forces a path.
    pub const ENV: &'static str = "RACELOOP_KERNEL";

    /// The name used by [`Kernel::ENV`] and in benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Neon => "neon",
            Self::Portable => "portable",
            Self::Burn => "burn",
        }
    }

    /// The rounding class of the path's matrix products: the AVX and NEON kernels give
    /// bit-identical products (`fma`); the portable loops and Burn each round their own way.
    /// Caches of results that a model's outputs produced are keyed on it and on the CPU
    /// architecture, whose C library computes the output layer's `tanh` (x86-64's and aarch64's
    /// glibc `tanhf` differ in the last bit for some inputs).
    pub fn numerics(self) -> &'static str {
        match self {
            Self::Avx512 | Self::Avx2 | Self::Neon => "fma",
            Self::Portable => "portable",
            Self::Burn => "burn",
        }
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        match self {
            Self::Avx512 => cpu_has("avx512f"),
            Self::Avx2 => cpu_has("avx2") && cpu_has("fma"),
            Self::Neon => cpu_has("neon"),
            Self::Portable | Self::Burn => true,
        }
    }

    /// Every path that this CPU supports, fastest first.
    pub fn available() -> Vec<Kernel> {
        Self::PREFERENCE
            .into_iter()
            .filter(|k| k.supported())
            .collect()
    }

    /// The path to use: [`Kernel::ENV`] when it names a supported path, else the fastest
    /// supported one. An unknown or unsupported value is reported on stderr (once per
    /// process) and ignored, since running an unsupported instruction set would crash.
    pub fn choose() -> Kernel {
        static WARNED: std::sync::Once = std::sync::Once::new();
        match Self::from_env() {
            Ok(Some(k)) => k,
            Ok(None) => Self::available()[0],
            Err(message) => {
                let best = Self::available()[0];
                WARNED.call_once(|| eprintln!("warning: {message}; using {best}"));
                best
            }
        }
    }

    /// The path that [`Kernel::ENV`] forces, if it is set.
    ///
    /// # Errors
    /// An unknown name, or a path that this CPU does not support.
    pub fn from_env() -> Result<Option<Kernel>, String> {
        let Ok(value) = std::env::var(Self::ENV) else {
            return Ok(None);
        };
        let kernel: Kernel = value.parse()?;
        if !kernel.supported() {
            return Err(format!(
                "{}={value}: this CPU does not support it (supported: {})",
                Self::ENV,
                Self::available()
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(Some(kernel))
    }

    /// The CPU features that decide the paths, as `name: bool` pairs for reports.
    pub fn cpu_features() -> Vec<(&'static str, bool)> {
        ["avx512f", "avx2", "fma", "neon"]
            .into_iter()
            .map(|f| (f, cpu_has(f)))
            .collect()
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kernel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::PREFERENCE
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "{}=`{s}` is not a kernel: use avx512, avx2, neon, portable or burn",
                    Self::ENV
                )
            })
    }
}

fn cpu_has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            _ => false,
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        feature == "neon" && std::arch::is_aarch64_feature_detected!("neon")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = feature;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_portable_paths_are_always_there() {
        for k in Kernel::PREFERENCE {
            assert_eq!(k.name().parse::<Kernel>(), Ok(k));
        }
        assert!("AVX2".parse::<Kernel>().is_ok());
        assert!(
            "sse"
                .parse::<Kernel>()
                .unwrap_err()
                .contains("avx512, avx2")
        );
        let available = Kernel::available();
        assert!(available.ends_with(&[Kernel::Burn, Kernel::Portable]));
        println!("kernels on this CPU: {available:?}");
    }
}
