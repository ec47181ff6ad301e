//! Latency histogram: one bucket per microsecond up to [`MAX_US`], one
//! overflow bucket above, and the exact maximum. Allocated once; recording
//! is an index increment (no allocation on the packet path).

use serde::Serialize;

/// Highest latency with its own bucket (200 ms); above it the overflow bucket.
pub const MAX_US: usize = 200_000;

pub struct Histogram {
    buckets: Vec<u32>,
    overflow: u64,
    count: u64,
    sum_us: u64,
    max_us: u64,
}

/// Percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            buckets: vec![0; MAX_US + 1],
            overflow: 0,
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }

    pub fn record(&mut self, us: u64) {
        match self.buckets.get_mut(us as usize) {
            Some(b) => *b += 1,
            None => self.overflow += 1,
        }
        self.count += 1;
        self.sum_us += us;
        self.max_us = self.max_us.max(us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.overflow += other.overflow;
        self.count += other.count;
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The smallest latency at or below which a fraction `q` of samples lie
    /// (the overflow bucket reads as the maximum).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let want = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (us, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= want {
                return us as u64;
            }
        }
        self.max_us
    }

    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count,
            mean_us: if self.count == 0 {
                0.0
            } else {
                self.sum_us as f64 / self.count as f64
            },
            p50_us: self.quantile(0.50),
            p99_us: self.quantile(0.99),
            p999_us: self.quantile(0.999),
            max_us: self.max_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::new();
        for us in 1..=1000 {
            h.record(us);
        }
        h.record(1_000_000); // overflow
        let s = h.summary();
        assert_eq!(s.count, 1001);
        assert_eq!(s.p50_us, 501);
        assert_eq!(s.p99_us, 991);
        assert_eq!(s.max_us, 1_000_000);
        assert_eq!(h.quantile(1.0), 1_000_000);
    }

    #[test]
    fn merge_adds_counts() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        a.record(10);
        b.record(30);
        a.merge(&b);
        assert_eq!(a.summary().count, 2);
        assert_eq!(a.summary().max_us, 30);
    }
}
