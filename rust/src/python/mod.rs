//! The PyO3 layer, `tradeoff._core`. Thin by design: it extracts arguments, borrows numpy memory
//! without copying, releases the GIL around the core, and maps core errors to `ValueError`. No
//! arithmetic lives here; dtype conversion and broadcasting happen in the Python package.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyImportError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::adaptors::{Adaptor, Chain as CoreChain};
use crate::batch::{self, Chains, Logits};
use crate::error::Error;
use crate::sampling::{self, Draw};
use crate::scoring::{self, TokenScore};

mod stats;

fn to_py(e: Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn contiguous<'a, T: numpy::Element>(
    name: &str,
    a: &'a PyReadonlyArray1<'_, T>,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("`{name}` must be a contiguous 1-d array")))
}

/// A chain of adaptors, validated by the core. Built from `(name, value, min_tokens_to_keep)`.
#[pyclass(frozen, module = "tradeoff._core", name = "Chain")]
pub struct PyChain {
    inner: CoreChain,
}

#[pymethods]
impl PyChain {
    #[new]
    fn new(adaptors: Vec<(String, f64, usize)>) -> PyResult<Self> {
        let adaptors = adaptors
            .iter()
            .map(|(name, value, min_keep)| Adaptor::from_name(name, *value, *min_keep))
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_py)?;
        Ok(Self {
            inner: CoreChain::new(adaptors),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.adaptors.len()
    }
}

fn logits_view<'a>(logits: &'a PyReadonlyArray2<'_, f32>) -> PyResult<Logits<'a>> {
    let shape = logits.shape();
    let data = logits
        .as_slice()
        .map_err(|_| PyValueError::new_err("`logits` must be a C-contiguous float32 array"))?;
    Logits::new(data, shape[0], shape[1]).map_err(to_py)
}

fn chain_refs<'a>(chains: &'a [Bound<'_, PyChain>]) -> Vec<&'a CoreChain> {
    chains.iter().map(|c| &c.get().inner).collect()
}

/// Adapted logits (`log_probs=False`) or normalised adapted log-probabilities (`log_probs=True`)
/// for a `[B, V]` float32 array; `chains` holds one chain or one per row.
#[pyfunction]
#[pyo3(signature = (logits, chains, log_probs))]
fn apply<'py>(
    py: Python<'py>,
    logits: PyReadonlyArray2<'py, f32>,
    chains: Vec<Bound<'py, PyChain>>,
    log_probs: bool,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let view = logits_view(&logits)?;
    let refs = chain_refs(&chains);
    let chains = Chains::new(&refs, view.rows).map_err(to_py)?;
    // numpy allocates the output (it asks for huge pages for large arrays: a plain Vec would
    // page-fault 4 KiB at a time, which costs as much as the work)
    let out = unsafe { PyArray2::<f32>::new(py, [view.rows, view.vocab], false) };
    {
        let mut guard = out.readwrite();
        let slice = guard.as_slice_mut().expect("a new array is contiguous");
        py.detach(|| {
            if log_probs {
                batch::log_probs(view, chains, slice)
            } else {
                batch::apply(view, chains, slice)
            }
        })
        .map_err(to_py)?;
    }
    Ok(out)
}

type SampleArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<i64>>,
);

/// Fused adapt-and-sample: `(tokens, logp_adapted, logp_base, support_size)`.
#[pyfunction]
#[pyo3(signature = (logits, chains, seed, streams, steps))]
fn sample<'py>(
    py: Python<'py>,
    logits: PyReadonlyArray2<'py, f32>,
    chains: Vec<Bound<'py, PyChain>>,
    seed: u64,
    streams: PyReadonlyArray1<'py, u64>,
    steps: PyReadonlyArray1<'py, u64>,
) -> PyResult<SampleArrays<'py>> {
    let view = logits_view(&logits)?;
    let refs = chain_refs(&chains);
    let chains = Chains::new(&refs, view.rows).map_err(to_py)?;
    let streams = contiguous("streams", &streams)?;
    let steps = contiguous("steps", &steps)?;
    let draws = py
        .detach(|| {
            let mut out = vec![Draw::default(); view.rows];
            sampling::sample(view, chains, seed, streams, steps, &mut out).map(|_| out)
        })
        .map_err(to_py)?;
    Ok((
        draws
            .iter()
            .map(|d| d.token as i64)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        draws
            .iter()
            .map(|d| d.logp_adapted)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        draws
            .iter()
            .map(|d| d.logp_base)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        draws
            .iter()
            .map(|d| d.support_size as i64)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    ))
}

type ScoreArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
);

/// Fused teacher-forced scoring: `(logp_base, logp_adapted, in_support)` of `targets[i]` under row i.
#[pyfunction]
#[pyo3(signature = (logits, targets, chains))]
fn score_tokens<'py>(
    py: Python<'py>,
    logits: PyReadonlyArray2<'py, f32>,
    targets: PyReadonlyArray1<'py, i64>,
    chains: Vec<Bound<'py, PyChain>>,
) -> PyResult<ScoreArrays<'py>> {
    let view = logits_view(&logits)?;
    let refs = chain_refs(&chains);
    let chains = Chains::new(&refs, view.rows).map_err(to_py)?;
    let targets = contiguous("targets", &targets)?;
    let scores = py
        .detach(|| {
            let mut out = vec![TokenScore::default(); view.rows];
            scoring::score_tokens(view, chains, targets, &mut out).map(|_| out)
        })
        .map_err(to_py)?;
    Ok((
        scores
            .iter()
            .map(|s| s.logp_base)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        scores
            .iter()
            .map(|s| s.logp_adapted)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        scores
            .iter()
            .map(|s| s.in_support)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    ))
}

/// Use `threads` worker threads for row-parallel work (results never depend on it).
#[pyfunction]
fn set_num_threads(threads: usize) -> PyResult<()> {
    crate::parallel::set_num_threads(threads).map_err(to_py)
}

/// The number of worker threads in use.
#[pyfunction]
fn get_num_threads() -> usize {
    crate::parallel::num_threads()
}

/// The instruction set the kernels use: "avx512", "avx2" or "portable" (the widest the CPU has,
/// capped by the environment variable `TRADEOFF_SIMD`).
#[pyfunction]
fn simd_level() -> &'static str {
    crate::simd::level().name()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // an invalid TRADEOFF_SIMD fails the import, before any kernel runs
    crate::simd::checked_level().map_err(PyImportError::new_err)?;
    m.add_class::<PyChain>()?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(sample, m)?)?;
    m.add_function(wrap_pyfunction!(score_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    stats::register(m)?;
    let names = PyList::new(m.py(), crate::adaptors::ADAPTOR_NAMES)?;
    m.add("ADAPTOR_NAMES", names)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
