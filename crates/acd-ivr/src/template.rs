//! `${var}` templates: expanded against the session's variables (unset
//! variables expand to nothing), checked once when the flow is validated.

use std::collections::BTreeMap;

/// Expands `tpl`, passing each variable's value through `encode`.
pub fn expand_with(
    tpl: &str,
    vars: &BTreeMap<String, String>,
    encode: impl Fn(&str) -> String,
) -> String {
    let mut out = String::with_capacity(tpl.len());
    let mut rest = tpl;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            // Unclosed: kept as written (validation reports it).
            out.push_str(&rest[at..]);
            return out;
        };
        let name = &after[..end];
        out.push_str(&encode(vars.get(name).map(String::as_str).unwrap_or("")));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Expands `tpl` with values as they are.
pub fn expand(tpl: &str, vars: &BTreeMap<String, String>) -> String {
    expand_with(tpl, vars, str::to_string)
}

/// Expands a URL template, percent-encoding every value (RFC 3986 §2.3:
/// only unreserved characters stay as they are), so a caller's input cannot
/// change the URL's path or query.
pub fn expand_url(tpl: &str, vars: &BTreeMap<String, String>) -> String {
    expand_with(tpl, vars, url_encode)
}

fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why `tpl` is not a valid template, if it is not.
pub fn check(tpl: &str) -> Result<(), String> {
    let mut rest = tpl;
    while let Some(at) = rest.find("${") {
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in `{tpl}`"));
        };
        let name = &after[..end];
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            return Err(format!("bad variable name `{name}` in `{tpl}`"));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("order".to_string(), "12 34/5?".to_string()),
            ("x".to_string(), "1".to_string()),
        ])
    }

    #[test]
    fn expands_and_leaves_unset_empty() {
        assert_eq!(expand("a${x}b${nope}c", &vars()), "a1bc");
        assert_eq!(expand("no vars", &vars()), "no vars");
        assert_eq!(expand("open ${x", &vars()), "open ${x");
    }

    #[test]
    fn url_values_are_encoded() {
        assert_eq!(
            expand_url("http://h/orders/${order}?q=${x}", &vars()),
            "http://h/orders/12%2034%2F5%3F?q=1"
        );
    }

    #[test]
    fn check_finds_bad_templates() {
        assert!(check("${a}${b.c}").is_ok());
        assert!(check("plain $ { }").is_ok());
        assert!(check("x ${a").unwrap_err().contains("unclosed"));
        assert!(check("${}").unwrap_err().contains("bad variable"));
        assert!(check("${a b}").unwrap_err().contains("bad variable"));
    }
}
