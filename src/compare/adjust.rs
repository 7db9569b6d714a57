//! Adjusting p-values for the number of tests of one comparison (Benjamini–Hochberg).
//!
//! A comparison runs one test per run and metric: dozens of tests. At a significance level of
//! 5% each, an A/A comparison of 30 unchanged metrics would raise a false alarm most of the
//! time. Benjamini–Hochberg adjusted p-values keep the expected share of false discoveries at
//! alpha; when nothing changed (the A/A case) that bounds the chance of any false alarm by
//! alpha too, while a real regression among many tests is still found.

/// Benjamini–Hochberg adjusted p-values of `p`, in the same order: `p_(i) * m / i` for the
/// i-th smallest of m, made monotone from the largest down, at most 1.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        // Sorted: 0.01 x 4/1 = 0.04, 0.02 x 4/2 = 0.04, 0.03 x 4/3 = 0.04, 0.5 x 4/4 = 0.5.
        let adjusted = benjamini_hochberg(&[0.5, 0.01, 0.03, 0.02]);
        let want = [0.5, 0.04, 0.04, 0.04];
        for (a, w) in adjusted.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adjusted:?}");
        }
    }

    #[test]
    fn keeps_order_and_caps_at_one() {
        let adjusted = benjamini_hochberg(&[0.9, 0.8, 0.001]);
        assert!((adjusted[2] - 0.003).abs() < 1e-12);
        assert_eq!(adjusted[0], 0.9);
        assert!((adjusted[1] - 0.9).abs() < 1e-12, "monotone: {adjusted:?}");
        assert!(benjamini_hochberg(&[]).is_empty());
        assert!(benjamini_hochberg(&[1.0, 1.0]).iter().all(|&a| a <= 1.0));
    }
}
