//! Draws a [`ConsoleState`] into a ratatui buffer: header (state, reason,
//! wrap-up countdown), the call pop, and the keys (or the open picker).

use acd_proto::v1::{AgentState, CallOffer};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::state::{ConsoleState, Mode};
use crate::output::state_name;

const KEYS: &str =
    "r ready  n not ready  w end wrap-up  a accept  x reject  t transfer  l logout  q quit";

/// Renders the whole console into `area` at `now_ms` (Unix ms, for countdowns).
pub fn render(s: &ConsoleState, now_ms: u64, area: Rect, buf: &mut Buffer) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(6),
        Constraint::Length(4),
    ])
    .areas(area);
    Paragraph::new(header_lines(s, now_ms))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" acd agent console "),
        )
        .render(header, buf);
    let pop = match &s.offer {
        Some(o) => call_pop(o, s.connected, now_ms),
        None => vec![Line::from("no call")],
    };
    Paragraph::new(pop)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(" call "))
        .render(body, buf);
    Paragraph::new(footer_lines(s))
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL))
        .render(footer, buf);
}

fn header_lines(s: &ConsoleState, now_ms: u64) -> Vec<Line<'static>> {
    let state = s.state();
    let name = s
        .status
        .as_ref()
        .map(|st| st.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| s.agent.clone());
    let first = Line::styled(
        format!(
            "{name} ({}) at {}   {}",
            s.agent,
            s.extension,
            state_name(state as i32)
        ),
        Style::default().add_modifier(Modifier::BOLD),
    );
    let mut detail = Vec::new();
    if let Some(st) = &s.status {
        if state == AgentState::NotReady && !st.reason.is_empty() {
            detail.push(format!("reason: {}", st.reason));
        }
        if state == AgentState::WrapUp && st.wrap_up_until_ms > 0 {
            let left = st.wrap_up_until_ms.saturating_sub(now_ms).div_ceil(1000);
            detail.push(format!("wrap-up: {left} s left"));
        }
    }
    vec![first, Line::from(detail.join("   "))]
}

fn call_pop(o: &CallOffer, connected: bool, now_ms: u64) -> Vec<Line<'static>> {
    let caller = o.caller.clone().unwrap_or_default();
    let number = if caller.number.is_empty() {
        caller.from_uri.clone()
    } else {
        caller.number.clone()
    };
    let waited = if o.enqueued_at_ms > 0 && now_ms >= o.enqueued_at_ms && !connected {
        (now_ms - o.enqueued_at_ms) / 1000
    } else {
        o.waited_ms / 1000
    };
    let phase = match (connected, o.callback) {
        (true, _) => "CONNECTED",
        (false, true) => "CALLBACK (dialling the customer)",
        (false, false) if o.auto_answer => "OFFERED (auto answer)",
        (false, false) => "OFFERED",
    };
    let mut lines = vec![
        Line::styled(
            format!("{phase}  call {}", o.call_id),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Line::from(format!("caller: {number}  {}", caller.display_name)),
        Line::from(format!(
            "DID: {}   queue: {}   priority: {}",
            caller.did, o.queue_id, o.priority
        )),
        Line::from(format!("waited: {waited} s")),
    ];
    if !o.skills.is_empty() {
        let mut skills: Vec<String> = o.skills.iter().map(|(k, v)| format!("{k}>={v}")).collect();
        skills.sort();
        lines.push(Line::from(format!("needs: {}", skills.join(" "))));
    }
    let mut vars: Vec<(&String, &String)> = caller.variables.iter().collect();
    vars.sort();
    for (k, v) in vars {
        lines.push(Line::from(format!("  {k} = {v}")));
    }
    if !o.explanation.is_empty() {
        lines.push(Line::from(format!("why you: {}", o.explanation)));
    }
    lines
}

fn footer_lines(s: &ConsoleState) -> Vec<Line<'static>> {
    let first = match &s.mode {
        Mode::Normal => Line::from(KEYS),
        Mode::PickReason { selected } => {
            let items: Vec<String> = s
                .reasons
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mark = if i == *selected { ">" } else { " " };
                    format!("{mark}{} {r}", i + 1)
                })
                .collect();
            Line::from(format!(
                "not ready: {}   (Enter, digit, Esc)",
                items.join("  ")
            ))
        }
        Mode::Transfer { input } => Line::from(format!(
            "transfer to (queue or agent id): {input}_   (Enter, Esc)"
        )),
    };
    vec![first, Line::from(s.message.clone())]
}
