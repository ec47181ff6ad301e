//! Numbers, digit strings and dates as prompt fragments (names without the
//! language prefix; see the fragment naming in the project notes). Russian
//! gets its own grammar (feminine одна/две before тысяча, тысяча/тысячи/тысяч,
//! day before genitive month); every other language is said the English way.

/// Largest number said in words; the fragment set has no `million`.
pub const MAX_NUMBER: u64 = 999_999;

/// `value` digit by digit; characters other than `0-9*#` are skipped.
pub fn digits(value: &str) -> Vec<String> {
    value
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(format!("digit_{c}")),
            '*' => Some("star".into()),
            '#' => Some("pound".into()),
            _ => None,
        })
        .collect()
}

/// `value` (a whole number) in words; digit by digit above [`MAX_NUMBER`];
/// nothing when it is not a number.
pub fn number(lang: &str, value: &str) -> Vec<String> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(n) if n <= MAX_NUMBER => words(lang, n),
        Ok(_) => digits(value),
        Err(_) => Vec::new(),
    }
}

fn words(lang: &str, n: u64) -> Vec<String> {
    if n == 0 {
        return vec!["num_0".into()];
    }
    let russian = lang == "ru";
    let (thousands, rest) = (n / 1000, n % 1000);
    let mut out = Vec::new();
    if thousands > 0 {
        out.extend(below_1000(thousands, russian));
        out.push(if russian {
            thousand_form(thousands).into()
        } else {
            "thousand".into()
        });
    }
    out.extend(below_1000(rest, false));
    out
}

/// 1..=999 (nothing for 0); `feminine` for Russian before тысяча.
fn below_1000(n: u64, feminine: bool) -> Vec<String> {
    let mut out = Vec::new();
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        out.push(format!("num_{}", hundreds * 100));
    }
    let last = if rest < 20 {
        rest
    } else {
        out.push(format!("num_{}", rest / 10 * 10));
        rest % 10
    };
    match last {
        0 => {}
        1 | 2 if feminine => out.push(format!("num_{last}_f")),
        _ => out.push(format!("num_{last}")),
    }
    out
}

/// тысяча after 1 (21, 101…), тысячи after 2-4, тысяч after the rest and 11-14.
fn thousand_form(n: u64) -> &'static str {
    match (n % 100, n % 10) {
        (11..=14, _) => "thousand_5",
        (_, 1) => "thousand_1",
        (_, 2..=4) => "thousand_2",
        _ => "thousand_5",
    }
}

/// A date `YYYY-MM-DD` as month and ordinal day (en "December 25th",
/// ru "двадцать пятое декабря"); nothing when it is not a date.
pub fn date(lang: &str, value: &str) -> Vec<String> {
    let Ok(d) = value.trim().parse::<jiff::civil::Date>() else {
        return Vec::new();
    };
    let (day, month) = (format!("day_{}", d.day()), format!("month_{}", d.month()));
    if lang == "ru" {
        vec![day, month]
    } else {
        vec![month, day]
    }
}

/// `digit_0`…`digit_9` (what a digit string needs; `star`/`pound` only if it has them).
pub fn digit_fragments() -> Vec<String> {
    (0..=9).map(|d| format!("digit_{d}")).collect()
}

/// What numbers in words need in `lang`.
pub fn number_fragments(lang: &str) -> Vec<String> {
    let mut v: Vec<String> = (0..=19).map(|n| format!("num_{n}")).collect();
    v.extend((2..=9).map(|t| format!("num_{}", t * 10)));
    v.extend((1..=9).map(|h| format!("num_{}", h * 100)));
    if lang == "ru" {
        v.extend(
            [
                "num_1_f",
                "num_2_f",
                "thousand_1",
                "thousand_2",
                "thousand_5",
            ]
            .map(String::from),
        );
    } else {
        v.push("thousand".into());
    }
    v
}

/// What dates need: `month_1`…`month_12`, `day_1`…`day_31`.
pub fn date_fragments() -> Vec<String> {
    let mut v: Vec<String> = (1..=12).map(|m| format!("month_{m}")).collect();
    v.extend((1..=31).map(|d| format!("day_{d}")));
    v
}

/// Every say fragment a prompt set for `lang` should have (names without
/// the `<lang>/` prefix), for prompt loaders and tests.
pub fn all_fragments(lang: &str) -> Vec<String> {
    let mut v = digit_fragments();
    v.extend(["star", "pound"].map(String::from));
    v.extend(number_fragments(lang));
    v.extend(date_fragments());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(lang: &str, n: &str) -> String {
        number(lang, n).join(" ")
    }

    #[test]
    fn english_numbers() {
        let cases = [
            ("0", "num_0"),
            ("1", "num_1"),
            ("2", "num_2"),
            ("5", "num_5"),
            ("11", "num_11"),
            ("21", "num_20 num_1"),
            ("101", "num_100 num_1"),
            ("1000", "num_1 thousand"),
            ("2001", "num_2 thousand num_1"),
            ("5000", "num_5 thousand"),
            (
                "123456",
                "num_100 num_20 num_3 thousand num_400 num_50 num_6",
            ),
            ("40", "num_40"),
            (
                "999999",
                "num_900 num_90 num_9 thousand num_900 num_90 num_9",
            ),
        ];
        for (n, want) in cases {
            assert_eq!(say("en", n), want, "en {n}");
        }
    }

    #[test]
    fn russian_numbers() {
        let cases = [
            ("0", "num_0"),
            ("1", "num_1"),
            ("2", "num_2"),
            ("5", "num_5"),
            ("11", "num_11"),
            ("21", "num_20 num_1"),
            ("101", "num_100 num_1"),
            ("1000", "num_1_f thousand_1"),
            ("2001", "num_2_f thousand_2 num_1"),
            ("5000", "num_5 thousand_5"),
            (
                "123456",
                "num_100 num_20 num_3 thousand_2 num_400 num_50 num_6",
            ),
            ("11000", "num_11 thousand_5"),
            ("21000", "num_20 num_1_f thousand_1"),
            ("22000", "num_20 num_2_f thousand_2"),
            ("112000", "num_100 num_12 thousand_5"),
            ("4000", "num_4 thousand_2"),
        ];
        for (n, want) in cases {
            assert_eq!(say("ru", n), want, "ru {n}");
        }
    }

    #[test]
    fn odd_numbers_fall_back() {
        assert_eq!(
            say("en", "1234567"),
            "digit_1 digit_2 digit_3 digit_4 digit_5 digit_6 digit_7"
        );
        assert!(number("en", "abc").is_empty());
        assert!(number("en", "-5").is_empty());
        assert!(number("en", "").is_empty());
    }

    #[test]
    fn digit_strings() {
        assert_eq!(
            digits("10*#x9").join(" "),
            "digit_1 digit_0 star pound digit_9"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(date("en", "2026-12-25").join(" "), "month_12 day_25");
        assert_eq!(date("ru", "2026-12-25").join(" "), "day_25 month_12");
        assert_eq!(date("ru", "2027-01-01").join(" "), "day_1 month_1");
        assert!(date("en", "2026-02-30").is_empty());
        assert!(date("en", "25.12.2026").is_empty());
    }
}
