//! Which instruction set the kernels use: the widest the CPU has (AVX-512, AVX2 or the baseline),
//! detected once at run time, capped by the environment variable `TRADEOFF_SIMD`:
//!
//! - `auto` (or unset, or empty): the widest the CPU has;
//! - `avx512`: the same as `auto` (a cap, never more than the CPU has);
//! - `avx2`: no AVX-512 kernels, the AVX2 ones (so that the AVX2 path can be measured and tested
//!   on an AVX-512 machine);
//! - `portable`: the baseline x86-64 (or other architecture's) code only.
//!
//! The variable is read once, on first use (case and surrounding spaces aside); any other value
//! is an error naming the accepted values: importing the Python extension raises `ImportError`,
//! and the Rust kernels panic. Every level computes the same bits: the kernels differ in speed
//! only (the tests compare them, and `TRADEOFF_SIMD=avx2 cargo test` runs the whole suite on the
//! AVX2 path).

use std::sync::OnceLock;

/// The environment variable that caps the instruction set.
pub const ENV: &str = "TRADEOFF_SIMD";

/// The values `TRADEOFF_SIMD` accepts.
pub const ACCEPTED: &str = "auto, avx512, avx2, portable";

/// An instruction-set level of the kernels, ordered from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The target's baseline code (SSE2 on x86-64).
    Portable,
    /// AVX2 (with FMA present, though no kernel fuses a multiply and an add).
    Avx2,
    /// AVX-512F for the hand-written kernels, AVX2 for the auto-vectorised rest.
    Avx512,
}

impl Level {
    /// The name `TRADEOFF_SIMD` uses for this level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The widest level this CPU runs.
    pub fn detected() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2 && is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            if avx2 {
                return Level::Avx2;
            }
        }
        Level::Portable
    }
}

/// The level for a value of `TRADEOFF_SIMD` (`None`: unset) on a CPU whose widest level is
/// `detected`: the requested cap, never above `detected`.
pub fn choose(requested: Option<&str>, detected: Level) -> Result<Level, String> {
    let value = requested.map(|v| v.trim().to_ascii_lowercase());
    let cap = match value.as_deref() {
        None | Some("") | Some("auto") | Some("avx512") => Level::Avx512,
        Some("avx2") => Level::Avx2,
        Some("portable") => Level::Portable,
        Some(_) => {
            return Err(format!(
                "{ENV}={:?} is not one of the accepted values: {ACCEPTED}",
                requested.unwrap_or_default()
            ))
        }
    };
    Ok(cap.min(detected))
}

fn configured() -> &'static Result<Level, String> {
    static LEVEL: OnceLock<Result<Level, String>> = OnceLock::new();
    LEVEL.get_or_init(|| {
        let requested = std::env::var_os(ENV).map(|v| v.to_string_lossy().into_owned());
        choose(requested.as_deref(), Level::detected())
    })
}

/// The level in use, or the error for an invalid `TRADEOFF_SIMD` (the Python extension checks
/// this when it is imported).
pub fn checked_level() -> Result<Level, String> {
    configured().clone()
}

/// The level in use.
///
/// # Panics
/// When `TRADEOFF_SIMD` holds a value other than the accepted ones.
#[inline]
pub fn level() -> Level {
    match configured() {
        Ok(level) => *level,
        Err(e) => panic!("{e}"),
    }
}

/// Whether the auto-vectorised kernels run their AVX2 + FMA compilation.
#[inline]
pub fn avx2() -> bool {
    level() >= Level::Avx2
}

/// `multiversion!(fn ...)` compiles the function twice, for the baseline target and for AVX2 +
/// FMA, and calls the AVX2 one when [`avx2`] says so (what the `multiversion` crate did, with the
/// choice following [`level`]). The float operations are the same in both (no kernel uses
/// `mul_add`, and Rust never fuses a multiply and an add by itself): only LLVM's vectorisation
/// differs, so both compute the same bits.
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? $body

            fn portable($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            if $crate::simd::avx2() {
                // SAFETY: the level is at most the detected one, so the CPU has AVX2 and FMA
                return unsafe { avx2($($arg),*) };
            }
            portable($($arg),*)
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_caps_the_detected_level() {
        use Level::*;
        for detected in [Portable, Avx2, Avx512] {
            assert_eq!(choose(None, detected), Ok(detected));
            assert_eq!(choose(Some(""), detected), Ok(detected));
            assert_eq!(choose(Some("auto"), detected), Ok(detected));
            assert_eq!(choose(Some("avx512"), detected), Ok(detected));
            assert_eq!(choose(Some(" avx2 "), detected), Ok(detected.min(Avx2)));
            assert_eq!(choose(Some("AVX2"), detected), Ok(detected.min(Avx2)));
            assert_eq!(choose(Some("portable"), detected), Ok(Portable));
        }
    }

    #[test]
    fn unknown_values_are_errors_naming_the_accepted_ones() {
        for bad in ["sse", "avx-512", "avx512f", "1"] {
            let e = choose(Some(bad), Level::Avx512).unwrap_err();
            assert!(e.contains(ENV) && e.contains(ACCEPTED), "{e}");
        }
    }

    #[test]
    fn the_level_in_use_is_at_most_the_detected_one() {
        if let Ok(level) = checked_level() {
            assert!(level <= Level::detected());
            assert_eq!(level, super::level());
        }
    }
}
