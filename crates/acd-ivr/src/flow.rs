//! The flow file's shape: a graph of typed nodes (`type = "..."` in TOML).
//! Every key has a default where one makes sense, so short flows stay short.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A flow: a graph of nodes, entered at `start`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// How the edge answers the call before the flow's prompts play.
    #[serde(default)]
    pub answer: AnswerMode,
    /// Node the caller enters first.
    pub start: String,
    /// Queue the edge uses when no IVR runner answers.
    pub fallback_queue: String,
    /// Language the variable `language` starts with (the prompt set played
    /// until a `language` or `set` node changes it).
    #[serde(default = "default_language")]
    pub default_language: String,
    /// Prompts that exist once for all languages (`choose_language`, `moh`):
    /// played under their own name, never prefixed with `<lang>/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neutral_prompts: Vec<String>,
    /// Named lists of values (VIP caller numbers…) for `branch` nodes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, Vec<String>>,
    pub nodes: BTreeMap<String, Node>,
}

/// An empty flow (no nodes) in the default language; handy with `..Default::default()`.
impl Default for Flow {
    fn default() -> Flow {
        Flow {
            answer: AnswerMode::default(),
            start: String::new(),
            fallback_queue: String::new(),
            default_language: default_language(),
            neutral_prompts: Vec::new(),
            lists: BTreeMap::new(),
            nodes: BTreeMap::new(),
        }
    }
}

/// When the caller's leg is answered.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// 200 OK at once, prompts and music after it.
    #[default]
    Immediate,
    /// Prompts and music as early media (183); 200 OK only when an agent answers.
    Early,
}

/// One step of a flow. Prompt keys name prompts as the flow's author knows
/// them (`welcome`); see [`crate::prompt_name`] for what the edge gets.
/// Values called templates may contain `${var}` (empty when unset).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Node {
    /// Play one prompt (`prompt`) or several (`prompts`, after `prompt`), then go to `next`.
    Play {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        prompt: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        prompts: Vec<String>,
        #[serde(default)]
        barge_in: bool,
        next: String,
    },
    /// Play a prompt and collect a choice; branch on it.
    Menu {
        prompt: String,
        /// Digit string → next node.
        options: BTreeMap<String, String>,
        /// Wait for the first digit (and between digits of longer options).
        #[serde(default = "default_menu_timeout_ms")]
        timeout_ms: u32,
        /// Node for no input or an unknown choice once retries are used up.
        default: String,
        #[serde(default = "default_retries")]
        retries: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_input_prompt: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid_prompt: Option<String>,
        #[serde(default = "yes")]
        barge_in: bool,
    },
    /// Collect a number (account, order…) into `var`.
    Collect {
        prompt: String,
        var: String,
        #[serde(default = "one")]
        min_length: u32,
        #[serde(default = "default_max_length")]
        max_length: u32,
        /// Key that ends the input early; empty for none.
        #[serde(default = "default_terminator")]
        terminator: String,
        /// Wait for the first digit.
        #[serde(default = "default_menu_timeout_ms")]
        timeout_ms: u32,
        #[serde(default = "default_inter_digit_timeout_ms")]
        inter_digit_timeout_ms: u32,
        /// Regular expression the whole input must match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        #[serde(default = "default_retries")]
        retries: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_input_prompt: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid_prompt: Option<String>,
        #[serde(default = "yes")]
        barge_in: bool,
        next: String,
        /// Node once retries are used up.
        fallback: String,
    },
    /// A language choice: digit → language code, stored in `language`.
    /// Without a valid choice (retries used up) the language stays as it was.
    Language {
        prompt: String,
        options: BTreeMap<String, String>,
        #[serde(default = "default_menu_timeout_ms")]
        timeout_ms: u32,
        #[serde(default = "default_retries")]
        retries: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_input_prompt: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid_prompt: Option<String>,
        #[serde(default = "yes")]
        barge_in: bool,
        next: String,
    },
    /// Opening hours in a time zone: `open`, `closed`, or `holiday`.
    Hours {
        /// IANA zone, e.g. `Europe/Moscow`.
        timezone: String,
        /// Day (`mon`…`sun`) or days (`mon-fri`) → opening ranges `HH:MM-HH:MM`
        /// (end exclusive, `24:00` allowed); keys may overlap (ranges add up).
        #[serde(default)]
        weekly: BTreeMap<String, Vec<String>>,
        /// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (inclusive).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        holidays: Vec<String>,
        open: String,
        closed: String,
        /// Defaults to `closed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        holiday: Option<String>,
    },
    /// Branch on the day of the week in a time zone.
    Weekday {
        timezone: String,
        /// Day (`mon`…`sun`) or days (`sat-sun`) → node; a day in one key only.
        days: BTreeMap<String, String>,
        default: String,
    },
    /// Branch on a variable's value, or on its membership in a flow list.
    Branch {
        var: String,
        /// Value → node (checked first).
        #[serde(default)]
        cases: BTreeMap<String, String>,
        /// List name (in the flow's `lists`) → node, when the value is in it.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        lists: BTreeMap<String, String>,
        default: String,
    },
    /// Set variables (`var` = `value`, and/or `vars`) and go on; values are templates.
    Set {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        var: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        value: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        vars: BTreeMap<String, String>,
        next: String,
    },
    /// HTTP GET (done by the runner); maps JSON fields of a 2xx answer to variables.
    Lookup {
        /// Template; variables are URL-encoded.
        url: String,
        #[serde(default = "default_lookup_timeout_ms")]
        timeout_ms: u32,
        /// Response field → variable (missing fields set the variable empty).
        #[serde(default)]
        fields: BTreeMap<String, String>,
        /// HTTP status (`"404"`) → node, checked before `next`/`fallback`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        on_status: BTreeMap<String, String>,
        next: String,
        /// Timeout, connection error, bad body, non-2xx status.
        fallback: String,
    },
    /// Play prompts and spoken values (numbers, digits, dates) built from fragments.
    Say {
        items: Vec<SayItem>,
        #[serde(default)]
        barge_in: bool,
        next: String,
    },
    /// Put the caller in a queue; the flow ends here.
    Enqueue {
        queue: String,
        /// Overridden by the variable `priority` when it is set.
        #[serde(default)]
        priority: i32,
        /// Skills the call needs beyond the queue's (skill → minimum level).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        skills: BTreeMap<String, u8>,
        /// Language → extra skills for callers in that language.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        language_skills: BTreeMap<String, BTreeMap<String, u8>>,
        /// Call-pop data: key → template (empty values are left out); `language` is always added.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        data: BTreeMap<String, String>,
    },
    /// Book a callback with the distributor and go on at once.
    Callback {
        queue: String,
        /// Template; defaults to the caller's number.
        #[serde(default = "default_callback_number")]
        number: String,
        /// Overridden by the variable `priority` when it is set.
        #[serde(default)]
        priority: i32,
        /// Template naming a recorded voicemail (`${voicemail}`); empty for none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voicemail: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        data: BTreeMap<String, String>,
        next: String,
    },
    /// Record a message (after an optional prompt) into variable `var`.
    Voicemail {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        #[serde(default = "default_record_max_ms")]
        max_ms: u32,
        #[serde(default = "default_record_silence_ms")]
        silence_ms: u32,
        #[serde(default = "yes")]
        beep: bool,
        #[serde(default = "default_voicemail_var")]
        var: String,
        next: String,
        /// Recording failed.
        fallback: String,
    },
    /// Connect the caller to an external SIP URI (after an optional prompt).
    Transfer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        /// Template.
        uri: String,
        #[serde(default = "default_transfer_timeout_ms")]
        timeout_ms: u32,
        /// Node when the transfer is not answered.
        on_fail: String,
    },
    /// End the call (after an optional prompt).
    Hangup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        #[serde(default)]
        reason: String,
    },
}

/// One part of a `say` node; values are templates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SayItem {
    /// A prompt, resolved like any other (`{ prompt = "order_is" }`).
    Prompt(String),
    /// A whole number 0..=999999 in words (`{ number = "${amount}" }`);
    /// larger ones are said digit by digit.
    Number(String),
    /// Digit by digit, `*` and `#` included (`{ digits = "${order}" }`).
    Digits(String),
    /// A date `YYYY-MM-DD`: "December 25th" / "25 декабря" (`{ date = "${eta}" }`).
    Date(String),
}

fn default_language() -> String {
    "en".into()
}
fn default_menu_timeout_ms() -> u32 {
    5000
}
fn default_inter_digit_timeout_ms() -> u32 {
    3000
}
fn default_retries() -> u32 {
    2
}
fn default_max_length() -> u32 {
    16
}
fn default_terminator() -> String {
    "#".into()
}
fn default_lookup_timeout_ms() -> u32 {
    2000
}
fn default_callback_number() -> String {
    "${caller}".into()
}
fn default_record_max_ms() -> u32 {
    60_000
}
fn default_record_silence_ms() -> u32 {
    5000
}
fn default_voicemail_var() -> String {
    "voicemail".into()
}
fn default_transfer_timeout_ms() -> u32 {
    30_000
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}

impl Node {
    /// Every node name this node can lead to, for validating a flow.
    pub fn successors(&self) -> Vec<&str> {
        self.edges().into_iter().map(|(_, n)| n).collect()
    }

    /// Every (key, node name) this node can lead to.
    pub fn edges(&self) -> Vec<(&'static str, &str)> {
        let mut out = match self {
            Node::Play { next, .. }
            | Node::Set { next, .. }
            | Node::Say { next, .. }
            | Node::Callback { next, .. }
            | Node::Language { next, .. } => vec![("next", next.as_str())],
            Node::Menu {
                options, default, ..
            } => {
                let mut v = values("options", options);
                v.push(("default", default));
                v
            }
            Node::Collect { next, fallback, .. } | Node::Voicemail { next, fallback, .. } => {
                vec![("next", next.as_str()), ("fallback", fallback.as_str())]
            }
            Node::Hours {
                open,
                closed,
                holiday,
                ..
            } => {
                let mut v = vec![("open", open.as_str()), ("closed", closed.as_str())];
                v.extend(holiday.as_deref().map(|h| ("holiday", h)));
                v
            }
            Node::Weekday { days, default, .. } => {
                let mut v = values("days", days);
                v.push(("default", default));
                v
            }
            Node::Branch {
                cases,
                lists,
                default,
                ..
            } => {
                let mut v = values("cases", cases);
                v.extend(values("lists", lists));
                v.push(("default", default));
                v
            }
            Node::Lookup {
                on_status,
                next,
                fallback,
                ..
            } => {
                let mut v = values("on_status", on_status);
                v.push(("next", next));
                v.push(("fallback", fallback));
                v
            }
            Node::Transfer { on_fail, .. } => vec![("on_fail", on_fail.as_str())],
            Node::Enqueue { .. } | Node::Hangup { .. } => vec![],
        };
        out.dedup();
        out
    }

    /// Every (key, prompt name) the node plays, say fragments left out.
    pub fn prompts(&self) -> Vec<(&'static str, &str)> {
        match self {
            Node::Play {
                prompt, prompts, ..
            } => std::iter::once(prompt)
                .filter(|p| !p.is_empty())
                .chain(prompts)
                .map(|p| ("prompt", p.as_str()))
                .collect(),
            Node::Menu {
                prompt,
                no_input_prompt,
                invalid_prompt,
                ..
            }
            | Node::Collect {
                prompt,
                no_input_prompt,
                invalid_prompt,
                ..
            }
            | Node::Language {
                prompt,
                no_input_prompt,
                invalid_prompt,
                ..
            } => ask_prompts(prompt, no_input_prompt, invalid_prompt),
            Node::Say { items, .. } => items
                .iter()
                .filter_map(|i| match i {
                    SayItem::Prompt(p) => Some(("items", p.as_str())),
                    _ => None,
                })
                .collect(),
            Node::Voicemail { prompt, .. }
            | Node::Transfer { prompt, .. }
            | Node::Hangup { prompt, .. } => prompt
                .as_deref()
                .map(|p| ("prompt", p))
                .into_iter()
                .collect(),
            _ => vec![],
        }
    }

    /// Every (key, template) the node expands at run time.
    pub fn templates(&self) -> Vec<(&'static str, &str)> {
        match self {
            Node::Set { value, vars, .. } => {
                let mut v = vec![("value", value.as_str())];
                v.extend(values("vars", vars));
                v
            }
            Node::Lookup { url, .. } => vec![("url", url.as_str())],
            Node::Say { items, .. } => items
                .iter()
                .filter(|i| !matches!(i, SayItem::Prompt(_)))
                .map(|i| ("items", i.value()))
                .collect(),
            Node::Enqueue { data, .. } => values("data", data),
            Node::Callback {
                number,
                voicemail,
                data,
                ..
            } => {
                let mut v = vec![("number", number.as_str())];
                v.extend(voicemail.as_deref().map(|t| ("voicemail", t)));
                v.extend(values("data", data));
                v
            }
            Node::Transfer { uri, .. } => vec![("uri", uri.as_str())],
            _ => vec![],
        }
    }

    /// Whether entering this node waits for the caller (or the caller's
    /// time: a prompt playing) before the flow moves on; a cycle of nodes
    /// that do not would spin without input.
    pub fn waits(&self) -> bool {
        match self {
            Node::Play { .. }
            | Node::Menu { .. }
            | Node::Collect { .. }
            | Node::Language { .. }
            | Node::Voicemail { .. }
            | Node::Transfer { .. }
            | Node::Enqueue { .. }
            | Node::Hangup { .. } => true,
            // Numbers, digits and dates may expand to nothing (an unset variable).
            Node::Say { items, .. } => items.iter().any(|i| matches!(i, SayItem::Prompt(_))),
            Node::Hours { .. }
            | Node::Weekday { .. }
            | Node::Branch { .. }
            | Node::Set { .. }
            | Node::Lookup { .. }
            | Node::Callback { .. } => false,
        }
    }
}

impl SayItem {
    /// The item's prompt name or value template.
    pub fn value(&self) -> &str {
        match self {
            SayItem::Prompt(s) | SayItem::Number(s) | SayItem::Digits(s) | SayItem::Date(s) => s,
        }
    }
}

fn values<'a>(key: &'static str, m: &'a BTreeMap<String, String>) -> Vec<(&'static str, &'a str)> {
    m.values().map(|v| (key, v.as_str())).collect()
}

fn ask_prompts<'a>(
    prompt: &'a str,
    no_input: &'a Option<String>,
    invalid: &'a Option<String>,
) -> Vec<(&'static str, &'a str)> {
    let mut v = vec![("prompt", prompt)];
    v.extend(no_input.as_deref().map(|p| ("no_input_prompt", p)));
    v.extend(invalid.as_deref().map(|p| ("invalid_prompt", p)));
    v
}
