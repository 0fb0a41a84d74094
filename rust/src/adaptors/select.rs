//! Selection kernels shared by the adaptors that need an order: the k-th largest value, and the
//! weighted cut of top-p and typical (the smallest key whose cumulative weight reaches a target),
//! found by a weighted quickselect in expected linear time instead of sorting the vocabulary.

/// The `k`-th largest (1-based) of `values` (reordered in place). `1 <= k <= values.len()`.
pub fn kth_largest(values: &mut [f32], k: usize) -> f32 {
    debug_assert!(k >= 1 && k <= values.len());
    let idx = values.len() - k;
    let (_, kth, _) = values.select_nth_unstable_by(idx, |a, b| a.total_cmp(b));
    *kth
}

/// The smallest key value `v` such that the total weight of the items with `key <= v` is at least
/// `target`; `None` when all weights together stay below it. Ties in the key form one group, so the
/// answer never depends on the order of `items` (which is permuted).
///
/// Weighted quickselect: partition around a pivot into `< | == | >` and keep the side that holds
/// the answer; the weight below the kept side is carried along.
pub fn smallest_key_reaching(items: &mut [(f32, f32)], target: f64) -> Option<f32> {
    let mut slice: &mut [(f32, f32)] = items;
    let mut below = 0.0f64;
    while !slice.is_empty() {
        let pivot = median_of_three(slice);
        let (less, equal) = partition3(slice, pivot);
        let mass_less: f64 = slice[..less].iter().map(|&(_, w)| w as f64).sum();
        let mass_equal: f64 = slice[less..less + equal]
            .iter()
            .map(|&(_, w)| w as f64)
            .sum();
        // `less > 0`: with nothing below the pivot the answer cannot lie below it (target <= 0).
        if less > 0 && below + mass_less >= target {
            slice = &mut slice[..less];
        } else if below + mass_less + mass_equal >= target {
            return Some(pivot);
        } else {
            below += mass_less + mass_equal;
            slice = &mut slice[less + equal..];
        }
    }
    None
}

fn median_of_three(slice: &[(f32, f32)]) -> f32 {
    let a = slice[0].0;
    let b = slice[slice.len() / 2].0;
    let c = slice[slice.len() - 1].0;
    a.max(b.min(c)).min(b.max(c))
}

/// Dutch-flag partition by key: returns (#less, #equal); items end up `< pivot`, `== pivot`, `> pivot`.
fn partition3(slice: &mut [(f32, f32)], pivot: f32) -> (usize, usize) {
    let (mut lt, mut i, mut gt) = (0usize, 0usize, slice.len());
    while i < gt {
        let key = slice[i].0;
        if key < pivot {
            slice.swap(lt, i);
            lt += 1;
            i += 1;
        } else if key > pivot {
            gt -= 1;
            slice.swap(i, gt);
        } else {
            i += 1;
        }
    }
    (lt, gt - lt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(items: &[(f32, f32)], target: f64) -> Option<f32> {
        let mut keys: Vec<f32> = items.iter().map(|&(k, _)| k).collect();
        keys.sort_by(|a, b| a.total_cmp(b));
        keys.dedup();
        keys.into_iter().find(|&v| {
            items
                .iter()
                .filter(|&&(k, _)| k <= v)
                .map(|&(_, w)| w as f64)
                .sum::<f64>()
                >= target
        })
    }

    #[test]
    fn weighted_cut_matches_a_sorted_reference() {
        let mut state = 12345u64;
        for trial in 0..300 {
            let n = 1 + trial % 50;
            let items: Vec<(f32, f32)> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let key = ((state >> 33) % 7) as f32; // many ties
                    let w = ((state >> 20) % 5) as f32 * 0.25;
                    (key, w)
                })
                .collect();
            let total: f64 = items.iter().map(|&(_, w)| w as f64).sum();
            for target in [0.0, 0.25, total * 0.5, total * 0.9, total, total + 1.0] {
                let mut scratch = items.clone();
                assert_eq!(
                    smallest_key_reaching(&mut scratch, target),
                    reference(&items, target)
                );
            }
        }
    }

    #[test]
    fn kth_largest_counts_ties_as_separate_entries() {
        let mut v = vec![1.0, 3.0, 3.0, 2.0];
        assert_eq!(kth_largest(&mut v.clone(), 1), 3.0);
        assert_eq!(kth_largest(&mut v.clone(), 2), 3.0);
        assert_eq!(kth_largest(&mut v, 3), 2.0);
    }
}
