//! The worker pool for row-parallel work. Its size comes from `TRADEOFF_NUM_THREADS` (default: the
//! available cores) or from [`set_num_threads`]. A pool does not survive `fork` (torch's data
//! loaders fork): the pool remembers the process that made it, and a forked child makes its own.

use std::sync::{Arc, Mutex};

struct Pool {
    pid: u32,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn default_threads() -> usize {
    std::env::var("TRADEOFF_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n >= 1)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

fn build(threads: usize) -> Pool {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tradeoff-{i}"))
        .build()
        .expect("building a thread pool");
    Pool {
        pid: std::process::id(),
        threads,
        pool: Arc::new(pool),
    }
}

/// The pool for this process.
pub fn pool() -> Arc<rayon::ThreadPool> {
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    match guard.as_ref() {
        Some(p) if p.pid == pid => p.pool.clone(),
        other => {
            let threads = other.map(|p| p.threads).unwrap_or_else(default_threads);
            let p = build(threads);
            let pool = p.pool.clone();
            *guard = Some(p);
            pool
        }
    }
}

/// Use `threads` workers from now on (results never depend on it).
pub fn set_num_threads(threads: usize) -> crate::error::Result<()> {
    if threads < 1 {
        return Err(crate::error::Error::parameter(
            "threads",
            threads,
            "an integer >= 1",
        ));
    }
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = Some(build(threads));
    Ok(())
}

/// The number of workers in use.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}
