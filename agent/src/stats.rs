//! Statistics over per-step samples of an SLO query: summary values for baselines and the
//! Mann–Whitney U test that tells a real shift from noise (as Kayenta judges canaries).

/// Samples without NaN, sorted.
fn clean(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Mean of the non-NaN samples; NaN when there are none.
pub fn mean(xs: &[f64]) -> f64 {
    let v = clean(xs);
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (n − 1); 0 for a single sample, NaN for none.
pub fn stddev(xs: &[f64]) -> f64 {
    let v = clean(xs);
    match v.len() {
        0 => f64::NAN,
        1 => 0.0,
        n => {
            let m = v.iter().sum::<f64>() / n as f64;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        }
    }
}

/// The `q` quantile (0..=1, clamped) by linear interpolation between the closest ranks:
/// position `q × (n − 1)` in the sorted samples, as NumPy's default (`method="linear"`,
/// Hyndman–Fan type 7) and Prometheus' `quantile_over_time` compute it. Chosen over nearest
/// rank because baselines are often short (20–40 steps), where nearest rank jumps between
/// samples. NaN when there are no samples.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let v = clean(xs);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// A robust standard deviation: the median absolute deviation from the median, times 1.4826
/// (so it estimates σ for normal data, as `scipy.stats.median_abs_deviation(x,
/// scale="normal")`), NaNs dropped; NaN when there are no samples. One outlier among the
/// samples moves it little, where it would inflate the standard deviation.
pub fn robust_sd(xs: &[f64]) -> f64 {
    let v = clean(xs);
    let m = quantile(&v, 0.5);
    let dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    1.482_602_218_505_602 * quantile(&dev, 0.5)
}

/// Result of a two-sided Mann–Whitney U test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: R₁ − n₁(n₁+1)/2, with R₁ its rank sum (ties get average ranks).
    pub u: f64,
    /// |U − n₁n₂/2| − ½ over the tie-corrected standard deviation, never below 0.
    pub z: f64,
    /// Two-sided p-value, normal approximation with tie and continuity corrections.
    pub p: f64,
}

/// Two-sided Mann–Whitney U of `a` against `b` (NaNs dropped); `None` when either is empty.
///
/// Normal approximation, as `scipy.stats.mannwhitneyu(method="asymptotic")`: variance
/// n₁n₂/12 · ((n+1) − Σ(t³−t)/(n(n−1))) over tie groups of size t, a continuity correction of ½,
/// p = erfc(z/√2). The exact distribution would be sharper for a handful of samples, but
/// windows here are 20+ steps and full of ties (flat gauges), where the exact test needs the
/// same correction anyway. All samples equal: p = 1 (no evidence either way).
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let a = clean(a);
    let b = clean(b);
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|x| (*x, true))
        .chain(b.iter().map(|x| (*x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut r1 = 0.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        r1 += all[i..=j].iter().filter(|(_, first)| *first).count() as f64 * rank;
        i = j + 1;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = r1 - n1f * (n1f + 1.0) / 2.0;
    let mu = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)).max(1.0));
    if var <= 0.0 {
        // Every sample equal: no evidence of a difference.
        return Some(MannWhitney { u, z: 0.0, p: 1.0 });
    }
    let z = ((u - mu).abs() - 0.5).max(0.0) / var.sqrt();
    let p = erfc(z / std::f64::consts::SQRT_2).clamp(0.0, 1.0);
    Some(MannWhitney { u, z, p })
}

/// Complementary error function, fractional error below 1.2e-7 (Chebyshev fit, Numerical
/// Recipes' `erfcc`), enough for p-values near the usual 0.05 and 0.01 levels.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(X ≤ k) for X Poisson with mean `lambda` (summed in log space); 1 when `lambda` is 0.
/// The budget judge asks it whether a window's error count is significantly *below* what
/// burning exactly the budget would give.
pub fn poisson_cdf(k: u64, lambda: f64) -> f64 {
    if lambda <= 0.0 || !lambda.is_finite() {
        return 1.0;
    }
    let mut log_term = -lambda; // log P(X = 0)
    let mut sum = log_term.exp();
    for i in 1..=k {
        log_term += lambda.ln() - (i as f64).ln();
        sum += log_term.exp();
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_sd_matches_scipy_and_shrugs_off_an_outlier() {
        // scipy.stats.median_abs_deviation([1, 2, 3, 4, 100], scale="normal") = 1.482602218505602
        assert!((robust_sd(&[1.0, 2.0, 3.0, 4.0, 100.0]) - 1.482_602_218_505_602).abs() < 1e-12);
        // ... and [0.2, 0.21, 0.19, 0.2, f64::NAN] (NaN dropped): median 0.2, deviations
        // 0, 0.01, 0.01, 0 -> 0.005 × 1.4826.
        let sd = robust_sd(&[0.2, 0.21, 0.19, 0.2, f64::NAN]);
        assert!((sd - 0.005 * 1.482_602_218_505_602).abs() < 1e-12, "{sd}");
        assert!(robust_sd(&[]).is_nan());
        assert_eq!(robust_sd(&[3.0; 4]), 0.0);
    }

    #[test]
    fn poisson_cdf_matches_known_values() {
        // (k, lambda, P(X <= k)) from the closed form.
        for (k, l, want) in [
            (0, 0.6, (-0.6f64).exp()),
            (1, 2.0, 3.0 * (-2.0f64).exp()),
            (2, 1.0, 2.5 * (-1.0f64).exp()),
        ] {
            assert!((poisson_cdf(k, l) - want).abs() < 1e-12, "{k} {l}");
        }
        assert_eq!(poisson_cdf(3, 0.0), 1.0);
        assert!(poisson_cdf(0, 30.0) < 1e-12 && poisson_cdf(500, 30.0) > 0.999_999);
    }
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }

    /// NumPy 2.4 reference: `np.quantile(xs, q)` (its default, linear) and `np.std(xs, ddof=1)`.
    #[test]
    fn summaries_match_numpy() {
        let xs = [3.0, 1.0, 2.0, 4.0, 10.0, 7.5, 6.0];
        assert!(close(mean(&xs), 4.785_714_285_714_286, 1e-12));
        assert!(close(stddev(&xs), 3.212_698_020_578_431_5, 1e-12));
        for (q, want) in [
            (0.0, 1.0),
            (0.5, 4.0),
            (0.9, 8.5),
            (0.99, 9.85),
            (1.0, 10.0),
        ] {
            assert!(close(quantile(&xs, q), want, 1e-12), "q {q}");
        }
    }

    #[test]
    fn summaries() {
        let xs = [3.0, 1.0, f64::NAN, 2.0, 4.0];
        assert_eq!(mean(&xs), 2.5);
        assert!(close(stddev(&xs), 1.290_994_448_735_805_6, 1e-12));
        assert_eq!(quantile(&xs, 0.5), 2.5);
        assert_eq!(quantile(&xs, 1.0), 4.0);
        assert!(close(quantile(&xs, 0.9), 3.7, 1e-12));
        assert!(mean(&[]).is_nan() && quantile(&[f64::NAN], 0.5).is_nan());
    }

    /// Reference values from SciPy 1.17.1 (`pip install scipy`), computed once with
    /// `r = scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic",
    /// use_continuity=True)`: U is `r.statistic` (U of `a`), p is `r.pvalue`, |z| is
    /// `scipy.stats.norm.isf(r.pvalue / 2)`. The cases cover no ties, ties across the samples,
    /// heavy ties, p near 0.01 and 0.005 (where a coarse erfc would move the verdict), and
    /// identical samples.
    #[test]
    fn mann_whitney_matches_scipy() {
        type Case<'a> = (&'a [f64], &'a [f64], f64, f64, f64);
        let cases: [Case; 6] = [
            (
                &[1., 2., 3., 4., 5.],
                &[6., 7., 8., 9., 10.],
                0.0,
                2.506_718_245_762_048_7,
                0.012_185_780_355_344_813,
            ),
            (
                &[1.1, 2.2, 2.2, 3.5, 4.0, 5.1, 6.3],
                &[2.2, 3.0, 4.4, 5.5, 6.6, 7.7, 8.8, 9.9],
                12.0,
                1.800_217_313_021_047_3,
                0.071_826_331_141_572_58,
            ),
            (
                &[0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.11, 0.10, 0.09, 0.10],
                &[0.40, 0.42, 0.39, 0.41, 0.40, 0.44, 0.38, 0.40, 0.41, 0.43],
                0.0,
                3.780_417_694_277_708,
                0.000_156_565_471_754_345_17,
            ),
            (
                &[3., 3., 3., 4., 4., 5., 5., 5., 5., 6., 7.],
                &[4., 5., 5., 6., 6., 6., 7., 7., 8., 8., 9., 9.],
                20.5,
                2.810_829_656_663_425,
                0.004_941_393_955_488_454_5,
            ),
            (
                &[
                    0.21, 0.25, 0.19, 0.30, 0.22, 0.27, 0.24, 0.26, 0.23, 0.28, 0.20, 0.29,
                ],
                &[
                    0.24, 0.31, 0.26, 0.33, 0.28, 0.30, 0.27, 0.35, 0.29, 0.32, 0.25, 0.34,
                ],
                24.5,
                2.717_685_024_292_415,
                0.006_574_038_745_434_426,
            ),
            (&[1., 2., 3.], &[1., 2., 3.], 4.5, 0.0, 1.0),
        ];
        for (a, b, u, z, p) in cases {
            let r = mann_whitney(a, b).unwrap();
            assert_eq!(r.u, u, "{a:?} {b:?}");
            assert!(
                close(r.z, z, 1e-6) || (z == 0.0 && r.z == 0.0),
                "{r:?} vs z {z}"
            );
            assert!(close(r.p, p, 1e-6), "{r:?} vs p {p}");
        }
        assert_eq!(mann_whitney(&[1.0, 1.0], &[1.0, 1.0]).unwrap().p, 1.0);
        assert!(mann_whitney(&[], &[1.0]).is_none());
        assert!(mann_whitney(&[f64::NAN], &[1.0]).is_none());
    }

    /// `scipy.special.erfc` at the same points (SciPy 1.17.1); the fit promises a fractional
    /// error below 1.2e-7.
    #[test]
    fn erfc_matches_scipy() {
        let table = [
            (0.0, 1.0),
            (0.1, 0.887_537_083_981_715_2),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_16),
            (1.5, 0.033_894_853_524_689_27),
            (1.8, 0.010_909_498_364_269_283),
            (2.0, 0.004_677_734_981_047_266),
            (2.5, 0.000_406_952_017_444_958_86),
            (3.0, 2.209_049_699_858_544_5e-5),
            (4.0, 1.541_725_790_028_002e-8),
            (5.0, 1.537_459_794_428_034_7e-12),
            (-1.0, 1.842_700_792_949_714_8),
        ];
        for (x, want) in table {
            assert!(
                close(erfc(x), want, 1.2e-7),
                "erfc({x}) = {} vs {want}",
                erfc(x)
            );
        }
    }

    proptest! {
        #[test]
        fn p_is_a_probability_and_symmetric(a in prop::collection::vec(-1e6f64..1e6, 1..40), b in prop::collection::vec(-1e6f64..1e6, 1..40)) {
            let ab = mann_whitney(&a, &b).unwrap();
            let ba = mann_whitney(&b, &a).unwrap();
            prop_assert!((0.0..=1.0).contains(&ab.p));
            prop_assert!((ab.p - ba.p).abs() < 1e-12);
            // U of one side and U of the other add up to n1 × n2.
            prop_assert!((ab.u + ba.u - (a.len() * b.len()) as f64).abs() < 1e-9);
            prop_assert!(ab.z >= 0.0 && (ab.z - ba.z).abs() < 1e-9);
        }

        #[test]
        fn a_sample_against_itself_is_never_significant(a in prop::collection::vec(-1e3f64..1e3, 1..40)) {
            prop_assert_eq!(mann_whitney(&a, &a).unwrap().p, 1.0);
        }

        /// Ranks only: any increasing transform of both samples gives the same answer.
        #[test]
        fn ranks_only(a in prop::collection::vec(0.0f64..1.0, 2..30), b in prop::collection::vec(0.0f64..1.0, 2..30)) {
            let t = |xs: &[f64]| xs.iter().map(|x| 3.0 * x.exp() - 7.0).collect::<Vec<_>>();
            let plain = mann_whitney(&a, &b).unwrap();
            let moved = mann_whitney(&t(&a), &t(&b)).unwrap();
            prop_assert!((plain.p - moved.p).abs() < 1e-12);
        }

        #[test]
        fn nan_is_ignored(a in prop::collection::vec(0.0f64..1.0, 2..30), b in prop::collection::vec(0.0f64..1.0, 2..30)) {
            let mut with_nan = a.clone();
            with_nan.push(f64::NAN);
            prop_assert_eq!(mann_whitney(&a, &b), mann_whitney(&with_nan, &b));
            prop_assert_eq!(mean(&a), mean(&with_nan));
        }

        #[test]
        fn quantiles_are_ordered_and_bounded(a in prop::collection::vec(-1e6f64..1e6, 1..50), q in 0.0f64..1.0) {
            let (lo, hi) = (quantile(&a, 0.0), quantile(&a, 1.0));
            let v = quantile(&a, q);
            prop_assert!(lo <= v && v <= hi);
            prop_assert!(quantile(&a, q / 2.0) <= v);
        }

        #[test]
        fn a_large_shift_is_significant(a in prop::collection::vec(0.0f64..1.0, 12..40)) {
            let b: Vec<f64> = a.iter().map(|x| x + 10.0).collect();
            prop_assert!(mann_whitney(&a, &b).unwrap().p < 0.001);
        }
    }
}
