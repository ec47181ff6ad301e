//! Staffing: operators needed per interval by Erlang C and Erlang A, with
//! shrinkage. (To be written: reports work. The signature below is the
//! contract the wallboard uses.)

/// The fewest operators on the phones (before shrinkage) for `calls` arriving
/// in `interval_secs` with `aht_secs` average handle time to answer
/// `sl_fraction` (0..1) of them within `target_secs`, by Erlang C.
/// 0 when there is no traffic.
pub fn agents_needed_c(
    calls: f64,
    interval_secs: f64,
    aht_secs: f64,
    sl_fraction: f64,
    target_secs: f64,
) -> u32 {
    let _ = (calls, interval_secs, aht_secs, sl_fraction, target_secs);
    0
}
