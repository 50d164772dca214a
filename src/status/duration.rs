//! GitLab's duration syntax (the `chronic_duration` words GitLab accepts in
//! `timeout:` and `expire_in:`), for `mirrorer check --warn-age/--crit-age`:
//! numbers, each followed by an optional unit, separated by blanks, commas
//! or `and`: `26h`, `1d 2h`, `90m`, `1 day and 2 hours`, `1.5h`. A number
//! without unit is seconds.
//!
//! Units: `s`/`sec`/`secs`/`second`/`seconds`, `m`/`min`/`mins`/`minute`/
//! `minutes`, `h`/`hr`/`hrs`/`hour`/`hours`, `d`/`day`/`days`,
//! `w`/`wk`/`wks`/`week`/`weeks`, `mo`/`mos`/`month`/`months` (30 days),
//! `y`/`yr`/`yrs`/`year`/`years` (365 days).

use std::time::Duration;

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "wk" | "wks" | "week" | "weeks" => 7.0 * 86_400.0,
        "mo" | "mos" | "month" | "months" => 30.0 * 86_400.0,
        "y" | "yr" | "yrs" | "year" | "years" => 365.0 * 86_400.0,
        _ => return None,
    })
}

/// Parses a GitLab duration (module docs).
///
/// # Errors
/// A sentence naming the text and what was wrong with it: an unknown unit,
/// a unit without a number, no number at all, or more than 100 years.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!("{text:?} is not a GitLab duration such as `26h`, `1d 2h` or `90m`: {why}")
    };
    let lower = text.to_ascii_lowercase();
    let mut total = 0.0_f64;
    let mut saw_number = false;
    let mut pending: Option<f64> = None;
    let words = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty() && *w != "and");
    for word in words {
        // A word holds number/unit pairs (`1h30m`), a number, or a unit.
        let mut rest = word;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (number, tail) = rest.split_at(digits);
            let letters = tail
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(tail.len());
            let (unit, after) = tail.split_at(letters);
            if number.is_empty() && unit.is_empty() {
                return Err(bad(&format!("unexpected {:?}", &tail[..1])));
            }
            if !number.is_empty() {
                if let Some(n) = pending.take() {
                    total += n;
                }
                let n: f64 = number
                    .parse()
                    .map_err(|_| bad(&format!("{number:?} is not a number")))?;
                saw_number = true;
                if unit.is_empty() {
                    pending = Some(n);
                } else {
                    let s =
                        unit_seconds(unit).ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
                    total += n * s;
                }
            } else {
                let n = pending
                    .take()
                    .ok_or_else(|| bad(&format!("{unit:?} follows no number")))?;
                let s = unit_seconds(unit).ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
                total += n * s;
            }
            rest = after;
        }
    }
    if let Some(n) = pending {
        total += n;
    }
    if !saw_number {
        return Err(bad("no number"));
    }
    if !total.is_finite() || total > 100.0 * 365.0 * 86_400.0 {
        return Err(bad("more than 100 years"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// A duration for messages: `1d2h`, `3h5m`, `45m`, `12s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_durations() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(parse("26h").unwrap(), h(26));
        assert_eq!(parse("1d 2h").unwrap(), h(26));
        assert_eq!(parse("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1 day and 2 hours").unwrap(), h(26));
        assert_eq!(parse("2 hrs 20 min").unwrap(), Duration::from_secs(8400));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("3 weeks, 2 days").unwrap(), h(23 * 24));
        assert_eq!(parse("120").unwrap(), Duration::from_secs(120));
        for bad in ["", "h", "26 parsecs", "1x", "-1h", "1e9y"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(human(h(26)), "1d2h");
        assert_eq!(human(Duration::from_secs(5400)), "1h30m");
    }
}
