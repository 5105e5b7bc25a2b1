//! Percentiles and the units the report prints.

use std::time::Duration;

/// Nearest-rank percentile (`p` in 0..=100) of unsorted samples.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The samples' percentiles `ps` in milliseconds, as table cells: `3.42 ms | 5.10 ms`.
pub fn ms_cells(samples: &[Duration], ps: &[f64]) -> String {
    ps.iter()
        .map(|p| ms(percentile(samples, *p)))
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0)
}

pub fn mib_from_kib(kib: u64) -> String {
    mib(kib * 1024)
}

/// `8 454 424` — bytes, grouped by thousands for reading.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Items as a report's sentences list them: `3 succeeded, 1 failed`. One place for the
/// separator the report's prose uses.
pub fn comma_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&s, 50.0), Duration::from_millis(5));
        assert_eq!(percentile(&s, 90.0), Duration::from_millis(9));
        assert_eq!(percentile(&s, 99.0), Duration::from_millis(10));
        assert_eq!(percentile(&s, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn units() {
        assert_eq!(ms(Duration::from_micros(3420)), "3.42 ms");
        assert_eq!(ms(Duration::from_micros(34_200)), "34.2 ms");
        let s: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(ms_cells(&s, &[50.0, 100.0]), "5.00 ms | 10.0 ms");
        assert_eq!(grouped(8_454_424), "8,454,424");
        assert_eq!(grouped(424), "424");
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.50 MiB");
    }
}
