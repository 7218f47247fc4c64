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

/// The `q` quantile (0..=1) by linear interpolation between closest ranks (numpy's default).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let v = clean(xs);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Result of a two-sided Mann–Whitney U test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample.
    pub u: f64,
    pub z: f64,
    /// Two-sided p-value, normal approximation with tie and continuity corrections.
    pub p: f64,
}

/// Two-sided Mann–Whitney U of `a` against `b` (NaNs dropped); `None` when either is empty.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
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

    /// Reference values computed independently with Python's `math.erfc` and the same
    /// formula (average ranks, tie-corrected variance, continuity correction), which is what
    /// `scipy.stats.mannwhitneyu(method="asymptotic")` computes.
    #[test]
    fn mann_whitney_matches_reference_values() {
        type Case<'a> = (&'a [f64], &'a [f64], f64, f64, f64);
        let cases: [Case; 3] = [
            (
                &[1., 2., 3., 4., 5.],
                &[6., 7., 8., 9., 10.],
                0.0,
                2.506_718_245_762_048_7,
                0.012_185_780_355_344_818,
            ),
            (
                &[1.1, 2.2, 2.2, 3.5, 4.0, 5.1, 6.3],
                &[2.2, 3.0, 4.4, 5.5, 6.6, 7.7, 8.8, 9.9],
                12.0,
                1.800_217_313_021_047,
                0.071_826_331_141_572_6,
            ),
            (
                &[0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.11, 0.10, 0.09, 0.10],
                &[0.40, 0.42, 0.39, 0.41, 0.40, 0.44, 0.38, 0.40, 0.41, 0.43],
                0.0,
                3.780_417_694_277_707_7,
                0.000_156_565_471_754_345_52,
            ),
        ];
        for (a, b, u, z, p) in cases {
            let r = mann_whitney(a, b).unwrap();
            assert_eq!(r.u, u);
            assert!(close(r.z, z, 1e-9), "{r:?}");
            assert!(close(r.p, p, 1e-6), "{r:?} vs {p}");
        }
        assert_eq!(mann_whitney(&[1.0, 1.0], &[1.0, 1.0]).unwrap().p, 1.0);
        assert!(mann_whitney(&[], &[1.0]).is_none());
    }

    proptest! {
        #[test]
        fn p_is_a_probability_and_symmetric(a in prop::collection::vec(-1e6f64..1e6, 1..40), b in prop::collection::vec(-1e6f64..1e6, 1..40)) {
            let ab = mann_whitney(&a, &b).unwrap();
            let ba = mann_whitney(&b, &a).unwrap();
            prop_assert!((0.0..=1.0).contains(&ab.p));
            prop_assert!((ab.p - ba.p).abs() < 1e-12);
        }

        #[test]
        fn a_large_shift_is_significant(a in prop::collection::vec(0.0f64..1.0, 12..40)) {
            let b: Vec<f64> = a.iter().map(|x| x + 10.0).collect();
            prop_assert!(mann_whitney(&a, &b).unwrap().p < 0.001);
        }
    }
}
