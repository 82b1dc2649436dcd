//! CPU twin of shaders/health.wgsl.

/// 0 when every element of `x` is finite, else `x.len()` minus the index of the first element
/// that is an infinity or a NaN (the kernel's encoding, which the executor decodes).
pub fn first_nonfinite(x: &[f32]) -> u32 {
    x.iter()
        .position(|v| !v.is_finite())
        .map_or(0, |i| (x.len() - i) as u32)
}

/// The index of the first non-finite element, from [`first_nonfinite`]'s value for `n` elements.
pub fn decode_first_nonfinite(flag: u32, n: usize) -> Option<usize> {
    (flag != 0 && flag as usize <= n).then(|| n - flag as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_first_infinity_or_nan() {
        assert_eq!(first_nonfinite(&[1.0, 2.0]), 0);
        let x = [1.0, 0.0, f32::INFINITY, f32::NAN];
        assert_eq!(decode_first_nonfinite(first_nonfinite(&x), 4), Some(2));
        assert_eq!(
            decode_first_nonfinite(first_nonfinite(&[f32::NAN]), 1),
            Some(0)
        );
        assert_eq!(decode_first_nonfinite(0, 4), None);
    }
}
