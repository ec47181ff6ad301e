//! Checks a flow before it is used: every problem names the node (and the
//! top-level key within it) so the config loader can point at the file and line.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sha2::{Digest, Sha256};

use crate::calendar;
use crate::flow::{Flow, Node, SayItem};
use crate::{say, template};

/// What a flow may refer to outside itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// Queue names; empty means "not checked".
    pub queues: BTreeSet<String>,
    /// Prompt names as the edge knows them: `moh`, `en/welcome`, `ru/welcome`…;
    /// empty means "not checked".
    pub prompts: BTreeSet<String>,
    /// Languages with a prompt set (`en`, `ru`); the first is the default.
    /// Empty: the flow's default language and those its `language` nodes offer.
    pub languages: Vec<String>,
}

/// One problem in a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowIssue {
    /// The node at fault; `None` for the flow's own keys (`start`, …).
    pub node: Option<String>,
    /// The key within the node (or flow) at fault, e.g. `next`, `options`.
    pub key: Option<String>,
    pub message: String,
}

/// Every problem found in `flow`; empty when it can run.
pub fn validate(flow: &Flow, known: &Known) -> Vec<FlowIssue> {
    let mut check = Check {
        flow,
        known,
        languages: languages(flow, known),
        issues: Vec::new(),
    };
    check.flow_keys();
    for (name, node) in &flow.nodes {
        check.node(name, node);
    }
    check.unreachable();
    check.loops_without_input();
    check.issues
}

/// The flow's version: a hash of its content, equal on every runner that
/// loaded the same flow, different after any change.
pub fn version(flow: &Flow) -> String {
    let canonical = serde_json::to_vec(flow).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn languages(flow: &Flow, known: &Known) -> Vec<String> {
    if !known.languages.is_empty() {
        return known.languages.clone();
    }
    let mut langs = BTreeSet::from([flow.default_language.clone()]);
    for node in flow.nodes.values() {
        if let Node::Language { options, .. } = node {
            langs.extend(options.values().cloned());
        }
    }
    langs.into_iter().collect()
}

struct Check<'a> {
    flow: &'a Flow,
    known: &'a Known,
    languages: Vec<String>,
    issues: Vec<FlowIssue>,
}

impl Check<'_> {
    fn push(&mut self, node: Option<&str>, key: Option<&str>, message: String) {
        self.issues.push(FlowIssue {
            node: node.map(str::to_string),
            key: key.map(str::to_string),
            message,
        });
    }

    fn flow_keys(&mut self) {
        let flow = self.flow;
        if !flow.nodes.contains_key(&flow.start) {
            self.push(None, Some("start"), format!("no node `{}`", flow.start));
        }
        self.queue(None, "fallback_queue", &flow.fallback_queue);
        if !self.languages.contains(&flow.default_language) {
            self.push(
                None,
                Some("default_language"),
                format!("no prompt set for language `{}`", flow.default_language),
            );
        }
        if !self.known.prompts.is_empty() {
            for p in &flow.neutral_prompts {
                if !self.known.prompts.contains(p) {
                    self.push(None, Some("neutral_prompts"), format!("no prompt `{p}`"));
                }
            }
        }
    }

    fn queue(&mut self, node: Option<&str>, key: &str, queue: &str) {
        if !self.known.queues.is_empty() && !self.known.queues.contains(queue) {
            self.push(node, Some(key), format!("no queue `{queue}`"));
        }
    }

    fn node(&mut self, name: &str, node: &Node) {
        let at = Some(name);
        for (key, next) in node.edges() {
            if !self.flow.nodes.contains_key(next) {
                self.push(
                    at,
                    Some(key),
                    format!("leads to `{next}`, which is not a node of this flow"),
                );
            }
        }
        for (key, prompt) in node.prompts() {
            self.prompt(name, key, prompt);
        }
        for (key, tpl) in node.templates() {
            if let Err(e) = template::check(tpl) {
                self.push(at, Some(key), e);
            }
        }
        self.specific(name, node);
    }

    fn prompt(&mut self, node: &str, key: &str, prompt: &str) {
        if prompt.is_empty() {
            self.push(Some(node), Some(key), "empty prompt name".into());
            return;
        }
        if self.known.prompts.is_empty() {
            return;
        }
        let neutral = prompt.contains('/') || self.flow.neutral_prompts.iter().any(|n| n == prompt);
        // The edge plays the plain name when a language's set lacks it.
        if !neutral && self.known.prompts.contains(prompt) {
            return;
        }
        if neutral {
            if !self.known.prompts.contains(prompt) {
                self.push(Some(node), Some(key), format!("no prompt `{prompt}`"));
            }
            return;
        }
        let missing: Vec<String> = self
            .languages
            .iter()
            .map(|l| format!("{l}/{prompt}"))
            .filter(|p| !self.known.prompts.contains(p))
            .collect();
        if !missing.is_empty() {
            self.push(
                Some(node),
                Some(key),
                format!(
                    "no prompt {} (nor a language-neutral `{prompt}`)",
                    quoted(&missing)
                ),
            );
        }
    }

    /// Checks of one node type's own keys.
    fn specific(&mut self, name: &str, node: &Node) {
        let at = Some(name);
        match node {
            Node::Play {
                prompt, prompts, ..
            } if prompt.is_empty() && prompts.is_empty() => {
                self.push(
                    at,
                    Some("prompt"),
                    "nothing to play: set `prompt` or `prompts`".into(),
                );
            }
            Node::Menu { options, .. } => self.options(name, options),
            Node::Language { options, .. } => {
                self.options(name, options);
                for lang in options.values() {
                    if !self.languages.contains(lang) {
                        self.push(
                            at,
                            Some("options"),
                            format!("no prompt set for language `{lang}`"),
                        );
                    }
                }
            }
            Node::Collect {
                var,
                min_length,
                max_length,
                terminator,
                pattern,
                ..
            } => self.collect(
                name,
                var,
                *min_length,
                *max_length,
                terminator,
                pattern.as_deref(),
            ),
            Node::Hours {
                timezone,
                weekly,
                holidays,
                ..
            } => {
                self.timezone(name, timezone);
                self.days(name, "weekly", weekly.keys(), false);
                for range in weekly.values().flatten() {
                    if let Err(e) = calendar::parse_range(range) {
                        self.push(at, Some("weekly"), e);
                    }
                }
                for h in holidays {
                    if let Err(e) = calendar::parse_holiday(h) {
                        self.push(at, Some("holidays"), e);
                    }
                }
            }
            Node::Weekday { timezone, days, .. } => {
                self.timezone(name, timezone);
                self.days(name, "days", days.keys(), true);
            }
            Node::Branch { var, lists, .. } => {
                if var.is_empty() {
                    self.push(at, Some("var"), "no variable to branch on".into());
                }
                for list in lists.keys() {
                    if !self.flow.lists.contains_key(list) {
                        self.push(
                            at,
                            Some("lists"),
                            format!("no list `{list}` in the flow's `lists`"),
                        );
                    }
                }
            }
            Node::Set {
                var, value, vars, ..
            } if var.is_empty() && (vars.is_empty() || !value.is_empty()) => {
                self.push(
                    at,
                    Some("var"),
                    "set needs `var` (with `value`) or `vars`".into(),
                );
            }
            Node::Lookup { url, on_status, .. } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.push(at, Some("url"), format!("`{url}` is not an http(s) URL"));
                }
                for status in on_status.keys() {
                    if !status
                        .parse::<u16>()
                        .is_ok_and(|s| (100..=599).contains(&s))
                    {
                        self.push(
                            at,
                            Some("on_status"),
                            format!("`{status}` is not an HTTP status"),
                        );
                    }
                }
            }
            Node::Say { items, .. } => {
                if items.is_empty() {
                    self.push(at, Some("items"), "nothing to say".into());
                }
                for item in items {
                    self.fragments(name, item);
                }
            }
            Node::Enqueue { queue, .. } | Node::Callback { queue, .. } => {
                self.queue(at, "queue", queue);
            }
            Node::Voicemail { var, .. } if var.is_empty() => {
                self.push(at, Some("var"), "no variable for the recording".into());
            }
            _ => {}
        }
    }

    fn options(&mut self, node: &str, options: &BTreeMap<String, String>) {
        if options.is_empty() {
            self.push(Some(node), Some("options"), "no options".into());
        }
        for key in options.keys() {
            if key.is_empty() || !key.chars().all(is_dtmf) {
                self.push(
                    Some(node),
                    Some("options"),
                    format!("option `{key}` is not a digit string"),
                );
            }
        }
    }

    fn collect(
        &mut self,
        node: &str,
        var: &str,
        min: u32,
        max: u32,
        terminator: &str,
        pattern: Option<&str>,
    ) {
        let at = Some(node);
        if var.is_empty() {
            self.push(at, Some("var"), "no variable to collect into".into());
        }
        if min == 0 || min > max {
            self.push(
                at,
                Some("min_length"),
                format!("want 1 <= min_length <= max_length, have {min}..{max}"),
            );
        }
        let mut t = terminator.chars();
        if !(terminator.is_empty() || (t.next().is_some_and(is_dtmf) && t.next().is_none())) {
            self.push(
                at,
                Some("terminator"),
                format!("`{terminator}` is not one DTMF key"),
            );
        }
        if let Some(p) = pattern {
            if let Err(e) = regex::Regex::new(&format!("^(?:{p})$")) {
                self.push(at, Some("pattern"), format!("bad pattern `{p}`: {e}"));
            }
        }
    }

    fn timezone(&mut self, node: &str, zone: &str) {
        if let Err(e) = calendar::local(zone, 0) {
            self.push(Some(node), Some("timezone"), e);
        }
    }

    /// Day keys must parse; for branches (`exclusive`) no day may be in two keys.
    fn days<'k>(
        &mut self,
        node: &str,
        key: &str,
        days: impl Iterator<Item = &'k String>,
        exclusive: bool,
    ) {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for spec in days {
            let parsed = match calendar::parse_days(spec) {
                Ok(d) => d,
                Err(e) => {
                    self.push(Some(node), Some(key), e);
                    continue;
                }
            };
            for day in parsed {
                match seen.insert(day, spec) {
                    Some(other) if exclusive => self.push(
                        Some(node),
                        Some(key),
                        format!("`{day}` is in both `{other}` and `{spec}`"),
                    ),
                    _ => {}
                }
            }
        }
    }

    /// Numbers, digits and dates need their fragments in every language.
    fn fragments(&mut self, node: &str, item: &SayItem) {
        if self.known.prompts.is_empty() {
            return;
        }
        for lang in self.languages.clone() {
            let missing: Vec<String> = fragments_for(item, &lang)
                .into_iter()
                .map(|f| format!("{lang}/{f}"))
                .filter(|p| !self.known.prompts.contains(p))
                .collect();
            if !missing.is_empty() {
                self.push(
                    Some(node),
                    Some("items"),
                    format!("missing say fragments {}", quoted(&missing)),
                );
            }
        }
    }

    fn unreachable(&mut self) {
        let flow = self.flow;
        if !flow.nodes.contains_key(&flow.start) {
            return;
        }
        let mut seen = BTreeSet::from([flow.start.as_str()]);
        let mut todo = VecDeque::from([flow.start.as_str()]);
        while let Some(name) = todo.pop_front() {
            let Some(node) = flow.nodes.get(name) else {
                continue;
            };
            for next in node.successors() {
                if seen.insert(next) {
                    todo.push_back(next);
                }
            }
        }
        for name in flow.nodes.keys() {
            if !seen.contains(name.as_str()) {
                self.push(
                    Some(name),
                    None,
                    format!("unreachable from `{}`", flow.start),
                );
            }
        }
    }

    /// Cycles through nodes that never wait (set, branch, hours, lookup,
    /// callback…) would spin within one step; each is reported once.
    fn loops_without_input(&mut self) {
        let flow = self.flow;
        let passes = |n: &str| flow.nodes.get(n).is_some_and(|node| !node.waits());
        // 0 unseen, 1 on the current path, 2 done.
        let mut colour: BTreeMap<&str, u8> = BTreeMap::new();
        let mut found: Vec<Vec<&str>> = Vec::new();
        for root in flow.nodes.keys().map(String::as_str).filter(|n| passes(n)) {
            if colour.get(root).copied().unwrap_or(0) != 0 {
                continue;
            }
            // Iterative DFS: (node, its successors, next successor index).
            let mut path: Vec<(&str, Vec<&str>, usize)> = Vec::new();
            colour.insert(root, 1);
            path.push((root, successors(flow, root), 0));
            while let Some((name, succ, i)) = path.last_mut() {
                let Some(next) = succ.get(*i).copied() else {
                    colour.insert(name, 2);
                    path.pop();
                    continue;
                };
                *i += 1;
                if !passes(next) {
                    continue;
                }
                match colour.get(next).copied().unwrap_or(0) {
                    0 => {
                        colour.insert(next, 1);
                        path.push((next, successors(flow, next), 0));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _, _)| *n == next).unwrap_or(0);
                        found.push(path[from..].iter().map(|(n, _, _)| *n).collect());
                    }
                    _ => {}
                }
            }
        }
        for cycle in found {
            let shown: Vec<&str> = cycle
                .iter()
                .copied()
                .chain(cycle.first().copied())
                .collect();
            self.push(
                cycle.first().copied(),
                None,
                format!("loop without input: {}", shown.join(" -> ")),
            );
        }
    }
}

fn successors<'f>(flow: &'f Flow, name: &str) -> Vec<&'f str> {
    flow.nodes
        .get(name)
        .map(Node::successors)
        .unwrap_or_default()
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fragments a say item may need in `lang`.
fn fragments_for(item: &SayItem, lang: &str) -> Vec<String> {
    match item {
        SayItem::Prompt(_) => vec![],
        SayItem::Digits(_) => say::digit_fragments(),
        SayItem::Date(_) => say::date_fragments(),
        SayItem::Number(_) => say::number_fragments(lang),
    }
}
