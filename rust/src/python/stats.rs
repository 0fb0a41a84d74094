//! Bindings for `crate::stats`: borrow float64 / uint32 numpy arrays, release the GIL, return
//! tuples that `tradeoff.stats` turns into result objects. Argument checks live in the core.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::{contiguous, to_py};
use crate::stats::bootstrap::{self, Method, Options, Statistic};
use crate::stats::correlation::{self, Correlation, Regression};
use crate::stats::moments::check_same_len;
use crate::stats::resample::{Pool, Table};
use crate::stats::resampled_ranks;
use crate::stats::simpson as simpson_core;
use crate::stats::{best_of_n as best_of_n_core, imh as imh_core, resample, segments};
use crate::stats::{tradeoff_line as line_core, typicality as typicality_core};

type Vector<'py> = PyReadonlyArray1<'py, f64>;
type Pair = (f64, f64);

fn pair(c: Correlation) -> Pair {
    (c.statistic, c.pvalue)
}

fn correlate(
    py: Python<'_>,
    x: &Vector<'_>,
    y: &Vector<'_>,
    f: fn(&[f64], &[f64]) -> crate::Result<Correlation>,
) -> PyResult<Pair> {
    let (x, y) = (contiguous("x", x)?, contiguous("y", y)?);
    py.detach(|| f(x, y)).map(pair).map_err(to_py)
}

#[pyfunction]
fn pearson(py: Python<'_>, x: Vector<'_>, y: Vector<'_>) -> PyResult<Pair> {
    correlate(py, &x, &y, correlation::pearson)
}

#[pyfunction]
fn spearman(py: Python<'_>, x: Vector<'_>, y: Vector<'_>) -> PyResult<Pair> {
    correlate(py, &x, &y, correlation::spearman)
}

#[pyfunction]
fn kendall(py: Python<'_>, x: Vector<'_>, y: Vector<'_>) -> PyResult<Pair> {
    correlate(py, &x, &y, correlation::kendall)
}

type RegressionTuple = (f64, f64, f64, f64, f64, f64);

fn regression(r: Regression) -> RegressionTuple {
    (
        r.slope,
        r.intercept,
        r.rvalue,
        r.pvalue,
        r.stderr,
        r.intercept_stderr,
    )
}

/// `(slope, intercept, rvalue, pvalue, stderr, intercept_stderr)`.
#[pyfunction]
fn linregress(py: Python<'_>, x: Vector<'_>, y: Vector<'_>) -> PyResult<RegressionTuple> {
    let (x, y) = (contiguous("x", &x)?, contiguous("y", &y)?);
    py.detach(|| correlation::linregress(x, y))
        .map(regression)
        .map_err(to_py)
}

type IntervalTuple<'py> = (f64, f64, f64, f64, Bound<'py, PyArray1<f64>>);

fn interval<'py>(py: Python<'py>, i: bootstrap::Interval) -> IntervalTuple<'py> {
    (
        i.statistic,
        i.low,
        i.high,
        i.standard_error,
        i.distribution.into_pyarray(py),
    )
}

/// `(statistic, low, high, standard_error, bootstrap_distribution)`.
#[pyfunction]
#[pyo3(signature = (x, y, statistic, n_resamples, level, seed, method))]
#[allow(clippy::too_many_arguments)]
fn bootstrap_ci<'py>(
    py: Python<'py>,
    x: Vector<'py>,
    y: Option<Vector<'py>>,
    statistic: &str,
    n_resamples: usize,
    level: f64,
    seed: u64,
    method: &str,
) -> PyResult<IntervalTuple<'py>> {
    let options = Options {
        statistic: Statistic::from_name(statistic).map_err(to_py)?,
        n_resamples,
        level,
        seed,
        method: Method::from_name(method).map_err(to_py)?,
    };
    let x = contiguous("x", &x)?;
    let y = match &y {
        Some(y) => Some(contiguous("y", y)?),
        None => None,
    };
    let result = py
        .detach(|| bootstrap::bootstrap_ci(x, y, options))
        .map_err(to_py)?;
    Ok(interval(py, result))
}

type ArrayPair<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// `(spearman, kendall)`: each resample's statistics in a bootstrap over groups.
#[pyfunction]
fn grouped_rank_replicates<'py>(
    py: Python<'py>,
    x: Vector<'py>,
    y: Vector<'py>,
    groups: PyReadonlyArray1<'py, u32>,
    group_counts: PyReadonlyArray1<'py, u32>,
    n_groups: usize,
) -> PyResult<ArrayPair<'py>> {
    let (x, y) = (contiguous("x", &x)?, contiguous("y", &y)?);
    let groups = contiguous("groups", &groups)?;
    let counts = contiguous("group_counts", &group_counts)?;
    let (rho, tau) = py
        .detach(|| resampled_ranks::grouped_rank_replicates(x, y, groups, counts, n_groups))
        .map_err(to_py)?;
    Ok((rho.into_pyarray(py), tau.into_pyarray(py)))
}

/// `(indices, acceptance_rate, ess, cramers_v)`.
#[pyfunction]
fn imh<'py>(
    py: Python<'py>,
    log_target: Vector<'py>,
    log_proposal: Vector<'py>,
    n_steps: usize,
    seed: u64,
) -> PyResult<(Bound<'py, PyArray1<u32>>, f64, f64, f64)> {
    let target = contiguous("log_target", &log_target)?;
    let proposal = contiguous("log_proposal", &log_proposal)?;
    let chain = py
        .detach(|| imh_core::imh(target, proposal, n_steps, seed))
        .map_err(to_py)?;
    Ok((
        chain.indices.into_pyarray(py),
        chain.acceptance_rate,
        chain.ess,
        chain.cramers_v,
    ))
}

#[pyfunction]
fn cramers_v(
    py: Python<'_>,
    a: PyReadonlyArray1<'_, u32>,
    b: PyReadonlyArray1<'_, u32>,
) -> PyResult<f64> {
    let (a, b) = (contiguous("a", &a)?, contiguous("b", &b)?);
    check_same_len("b", b.len(), "a", a.len()).map_err(to_py)?;
    Ok(py.detach(|| imh_core::cramers_v(a, b)))
}

#[pyfunction]
fn effective_sample_size(py: Python<'_>, trace: Vector<'_>) -> PyResult<Option<f64>> {
    let trace = contiguous("trace", &trace)?;
    Ok(py.detach(|| imh_core::effective_sample_size(trace)))
}

/// Corpus means, `[n_corpora, m]` for `values` `[N, m]`; `indices` or `weights` (or neither).
#[pyfunction]
#[pyo3(signature = (values, n_corpora, corpus_size, seed, indices, weights))]
#[allow(clippy::too_many_arguments)]
fn resample_means<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    n_corpora: usize,
    corpus_size: usize,
    seed: u64,
    indices: Option<PyReadonlyArray1<'py, u32>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let n_columns = values.shape()[1];
    let data = values
        .as_slice()
        .map_err(|_| PyValueError::new_err("`values` must be a C-contiguous float64 array"))?;
    let pool = match (&indices, &weights) {
        (Some(i), None) => Pool::Indices(contiguous("indices", i)?),
        (None, Some(w)) => Pool::Weights(contiguous("weights", w)?),
        (None, None) => Pool::Rows,
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "`indices` and `weights` cannot both be given; pick one pool",
            ))
        }
    };
    let table = Table { data, n_columns };
    let means = py
        .detach(|| resample::resample_means(table, n_corpora, corpus_size, seed, pool))
        .map_err(to_py)?;
    let rows = means.len().checked_div(n_columns).unwrap_or(0);
    let table = numpy::ndarray::Array2::from_shape_vec((rows, n_columns), means)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(table.into_pyarray(py))
}

type SegmentReduction = fn(&[f64], &[u64]) -> crate::Result<Vec<f64>>;

fn reduce_segments<'py>(
    py: Python<'py>,
    values: &Vector<'py>,
    offsets: &PyReadonlyArray1<'py, u64>,
    reduction: SegmentReduction,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let v = contiguous("values", values)?;
    let o = contiguous("offsets", offsets)?;
    let out = py.detach(|| reduction(v, o)).map_err(to_py)?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
fn best_of_n_weights<'py>(
    py: Python<'py>,
    rewards: Vector<'py>,
    offsets: PyReadonlyArray1<'py, u64>,
    n: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let r = contiguous("rewards", &rewards)?;
    let o = contiguous("offsets", &offsets)?;
    let out = py
        .detach(|| best_of_n_core::best_of_n_weights(r, o, n))
        .map_err(to_py)?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
fn segment_sum<'py>(
    py: Python<'py>,
    values: Vector<'py>,
    offsets: PyReadonlyArray1<'py, u64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    reduce_segments(py, &values, &offsets, segments::segment_sum)
}

#[pyfunction]
fn segment_mean<'py>(
    py: Python<'py>,
    values: Vector<'py>,
    offsets: PyReadonlyArray1<'py, u64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    reduce_segments(py, &values, &offsets, segments::segment_mean)
}

#[pyfunction]
fn segment_count<'py>(
    py: Python<'py>,
    offsets: PyReadonlyArray1<'py, u64>,
    n_values: usize,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let o = contiguous("offsets", &offsets)?;
    let out = segments::segment_count(o, n_values).map_err(to_py)?;
    Ok(out.into_pyarray(py))
}

type TypicalityArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
);

/// `(sample_entropy, deviation, typical)`.
#[pyfunction]
fn typicality<'py>(
    py: Python<'py>,
    mean_log_probs: Vector<'py>,
    entropy: f64,
    tolerance: f64,
) -> PyResult<TypicalityArrays<'py>> {
    let m = contiguous("mean_log_probs", &mean_log_probs)?;
    let t = typicality_core::typicality(m, entropy, tolerance).map_err(to_py)?;
    Ok((
        t.sample_entropy.into_pyarray(py),
        t.deviation.into_pyarray(py),
        t.typical.into_pyarray(py),
    ))
}

type SimpsonTuple<'py> = (
    Pair,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Pair,
    bool,
);

/// `(pooled, within_statistic, within_pvalue, group_sizes, mean_x, mean_y, between, reversal)`.
#[pyfunction]
fn simpson<'py>(
    py: Python<'py>,
    x: Vector<'py>,
    y: Vector<'py>,
    groups: PyReadonlyArray1<'py, u32>,
    method: &str,
) -> PyResult<SimpsonTuple<'py>> {
    let method = simpson_core::Method::from_name(method).map_err(to_py)?;
    let (xs, ys) = (contiguous("x", &x)?, contiguous("y", &y)?);
    let g = contiguous("groups", &groups)?;
    let s = py
        .detach(|| simpson_core::simpson(xs, ys, g, method))
        .map_err(to_py)?;
    Ok((
        pair(s.pooled),
        s.within
            .iter()
            .map(|c| c.statistic)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        s.within
            .iter()
            .map(|c| c.pvalue)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        s.group_sizes
            .iter()
            .map(|&n| n as u64)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        s.mean_x.into_pyarray(py),
        s.mean_y.into_pyarray(py),
        pair(s.between),
        s.reversal,
    ))
}

/// `(regression tuple, slope interval tuple)`.
#[pyfunction]
fn tradeoff_line<'py>(
    py: Python<'py>,
    mean_log_prior: Vector<'py>,
    mean_reward: Vector<'py>,
    n_resamples: usize,
    level: f64,
    seed: u64,
) -> PyResult<(RegressionTuple, IntervalTuple<'py>)> {
    let x = contiguous("mean_log_prior", &mean_log_prior)?;
    let y = contiguous("mean_reward", &mean_reward)?;
    let line = py
        .detach(|| line_core::tradeoff_line(x, y, n_resamples, level, seed))
        .map_err(to_py)?;
    Ok((regression(line.regression), interval(py, line.slope)))
}

/// `(inverse_beta, beta, intercept, r_squared, stderr, n)`.
#[pyfunction]
#[pyo3(signature = (log_aligned, log_prior, reward, groups))]
fn implied_beta<'py>(
    py: Python<'py>,
    log_aligned: Vector<'py>,
    log_prior: Vector<'py>,
    reward: Vector<'py>,
    groups: Option<PyReadonlyArray1<'py, u32>>,
) -> PyResult<(f64, f64, f64, f64, f64, usize)> {
    let a = contiguous("log_aligned", &log_aligned)?;
    let p = contiguous("log_prior", &log_prior)?;
    let r = contiguous("reward", &reward)?;
    let g = match &groups {
        Some(g) => Some(contiguous("groups", g)?),
        None => None,
    };
    let fit = py
        .detach(|| line_core::implied_beta(a, p, r, g))
        .map_err(to_py)?;
    Ok((
        fit.inverse_beta,
        fit.beta,
        fit.intercept,
        fit.r_squared,
        fit.stderr,
        fit.n,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pearson, m)?)?;
    m.add_function(wrap_pyfunction!(spearman, m)?)?;
    m.add_function(wrap_pyfunction!(kendall, m)?)?;
    m.add_function(wrap_pyfunction!(linregress, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_ci, m)?)?;
    m.add_function(wrap_pyfunction!(grouped_rank_replicates, m)?)?;
    m.add_function(wrap_pyfunction!(imh, m)?)?;
    m.add_function(wrap_pyfunction!(cramers_v, m)?)?;
    m.add_function(wrap_pyfunction!(effective_sample_size, m)?)?;
    m.add_function(wrap_pyfunction!(resample_means, m)?)?;
    m.add_function(wrap_pyfunction!(best_of_n_weights, m)?)?;
    m.add_function(wrap_pyfunction!(segment_sum, m)?)?;
    m.add_function(wrap_pyfunction!(segment_mean, m)?)?;
    m.add_function(wrap_pyfunction!(segment_count, m)?)?;
    m.add_function(wrap_pyfunction!(typicality, m)?)?;
    m.add_function(wrap_pyfunction!(simpson, m)?)?;
    m.add_function(wrap_pyfunction!(tradeoff_line, m)?)?;
    m.add_function(wrap_pyfunction!(implied_beta, m)?)?;
    Ok(())
}
