//! Helpers shared by the unit tests (compiled only for `cargo test`): a small deterministic PRNG,
//! random rows, plain f64 softmax and entropy, and running one chain on one row. The references
//! the tests compare against are written in the tests themselves, in scalar f64 code.

use crate::adaptors::{Adaptor, Chain, Row, Scratch};

/// splitmix64: a tiny deterministic generator, good enough for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// A random row of `v` logits of one of several shapes: flat normal, peaked (a few spikes),
/// coarsely quantised (many exact ties), and with or without `-inf` entries (at least one entry
/// stays finite).
pub fn random_row(rng: &mut Rng, v: usize) -> Vec<f32> {
    let sigma = 0.5 + 3.5 * rng.uniform();
    let mut z: Vec<f32> = (0..v).map(|_| (sigma * rng.normal()) as f32).collect();
    match rng.below(4) {
        0 => {}
        1 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(v);
                z[i] = (6.0 + 6.0 * rng.uniform()) as f32;
            }
        }
        2 => {
            for x in z.iter_mut() {
                *x = (*x * 2.0).round() / 2.0;
            }
        }
        _ => {
            for x in z.iter_mut() {
                *x = (*x * 8.0).round() / 8.0;
            }
        }
    }
    if rng.below(3) == 0 {
        for _ in 0..v / 5 {
            let i = rng.below(v);
            z[i] = f32::NEG_INFINITY;
        }
        if z.iter().all(|x| *x == f32::NEG_INFINITY) {
            z[0] = 0.0;
        }
    }
    z
}

/// Logits whose float32 probabilities are exactly 0.5, 0.25, 0.125, 0.125.
pub fn dyadic_row() -> Vec<f32> {
    [0.5f64, 0.25, 0.125, 0.125]
        .iter()
        .map(|p| p.ln() as f32)
        .collect()
}

/// Probabilities in f64 (0 for `-inf` entries).
pub fn softmax(z: &[f32]) -> Vec<f64> {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = z.iter().map(|&x| (x as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Entropy `-sum p ln p` in f64.
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|&&x| x > 0.0)
        .map(|&x| x * x.ln())
        .sum::<f64>()
}

/// The `min_keep` largest finite values and every value tied with the `min_keep`-th: the tokens a
/// `min_tokens_to_keep` protects in the threshold adaptors.
pub fn protected(z: &[f32], min_keep: usize) -> Vec<bool> {
    let mut finite: Vec<f32> = z.iter().copied().filter(|x| x.is_finite()).collect();
    finite.sort_by(|a, b| b.total_cmp(a));
    let kth = finite[min_keep.min(finite.len()) - 1];
    z.iter().map(|&x| x.is_finite() && x >= kth).collect()
}

/// A chain from `(name, value)` pairs, each with `min_tokens_to_keep = 1`.
pub fn chain(spec: &[(&str, f64)]) -> Chain {
    Chain::new(
        spec.iter()
            .map(|&(name, value)| crate::adaptors::Adaptor::from_name(name, value, 1).unwrap())
            .collect(),
    )
}

/// Run a chain on one (valid) row: the adapted row.
pub fn apply(chain: &Chain, z: &[f32]) -> Vec<f32> {
    let mut scratch = Scratch::new();
    let mut row = Row::new(z, &mut scratch);
    let mut out = vec![0.0f32; z.len()];
    chain.apply_into(&mut row, &mut out).expect("a valid row");
    out
}

/// The tokens a chain keeps.
pub fn kept_by_chain(chain: &Chain, z: &[f32]) -> Vec<bool> {
    apply(chain, z)
        .iter()
        .map(|&x| x > f32::NEG_INFINITY)
        .collect()
}

/// The tokens one adaptor keeps.
pub fn kept(adaptor: Adaptor, z: &[f32]) -> Vec<bool> {
    kept_by_chain(&Chain::new(vec![adaptor]), z)
}

/// The indices where `mask` holds.
pub fn indices(mask: &[bool]) -> Vec<usize> {
    mask.iter()
        .enumerate()
        .filter(|(_, &m)| m)
        .map(|(i, _)| i)
        .collect()
}

/// Compare an adaptor's kept set with a reference on the tokens the reference is sure about.
/// `reference` gives, per token, `(keep, ambiguous)`. Returns (#compared kept, #compared removed).
pub fn compare_kept(
    got: &[bool],
    reference: &[(bool, bool)],
    z: &[f32],
    context: &str,
) -> (usize, usize) {
    let (mut k, mut r) = (0, 0);
    for (i, (&g, &(want, ambiguous))) in got.iter().zip(reference).enumerate() {
        if z[i] == f32::NEG_INFINITY {
            assert!(!g, "{context}: -inf token {i} kept");
            continue;
        }
        if ambiguous {
            continue;
        }
        assert_eq!(
            g, want,
            "{context}: token {i} (logit {}) kept={g}, reference {want}; row {z:?}",
            z[i]
        );
        if want {
            k += 1;
        } else {
            r += 1;
        }
    }
    (k, r)
}

/// The reference for the threshold adaptors: keep a finite token when `score >= threshold` or when
/// it is among the `min_keep` largest logits (ties included); ambiguous when unprotected and
/// `|score - threshold| <= tol`.
pub fn threshold_reference(
    z: &[f32],
    min_keep: usize,
    score: &[f64],
    threshold: f64,
    tol: f64,
) -> Vec<(bool, bool)> {
    let protected = protected(z, min_keep);
    (0..z.len())
        .map(|i| {
            let finite = z[i].is_finite();
            let keep = finite && (protected[i] || score[i] >= threshold);
            (
                keep,
                finite && !protected[i] && (score[i] - threshold).abs() <= tol,
            )
        })
        .collect()
}
