//! Harnesses for the routing engine's text inputs: skill expressions come from
//! config files and from the supervisor API (`UpsertQueue`).

use acd_routing::{SkillExpr, SkillId};

/// Any text either parses or is refused with a column inside it; what parses
/// prints as canonical text that parses back to the same expression, and
/// evaluating it never panics.
pub fn skill_expr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SkillExpr::parse(text) {
        Err(e) => assert!(
            e.at <= text.len(),
            "error column {} past the end of {:?}",
            e.at,
            crate::escape(data)
        ),
        Ok(expr) => {
            let printed = expr.to_string();
            let again = SkillExpr::parse(&printed)
                .unwrap_or_else(|e| panic!("canonical text {printed:?} does not parse: {e}"));
            assert_eq!(again, expr, "{printed:?} from {:?}", crate::escape(data));
            let skills: Vec<(SkillId, u8)> = expr
                .skills()
                .into_iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), (i % 11) as u8))
                .collect();
            let _ = expr.eval(&skills);
        }
    }
}
