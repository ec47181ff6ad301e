//! Routing scenarios as data: each `tests/scenarios/*.json` file holds a configuration,
//! a list of steps (a command, or a clock tick when `command` is absent) and, per step,
//! the exact events expected or the kind of error. An offer's `explanation` is
//! compared only where the scenario gives one.
//!
//! ```json
//! { "config": { …RoutingConfig… },
//!   "steps": [ { "at": 0, "command": { "type": "agent_login", … }, "expect": [ …events… ] },
//!              { "at": 5000, "expect": [ … ] },                  // tick
//!              { "at": 6000, "command": { … }, "error": "not_found" } ] }
//! ```

use acd_routing::*;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Scenario {
    config: RoutingConfig,
    steps: Vec<ScenarioStep>,
}

#[derive(Deserialize)]
struct ScenarioStep {
    at: u64,
    #[serde(default)]
    command: Option<Command>,
    #[serde(default)]
    expect: Vec<Event>,
    /// `not_found`, `already_exists` or `failed_precondition`.
    #[serde(default)]
    error: Option<String>,
}

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::FailedPrecondition => "failed_precondition",
        ErrorKind::Internal => "internal",
        ErrorKind::Unimplemented => "unimplemented",
        ErrorKind::InvalidArgument => "invalid_argument",
    }
}

/// Offers carry an explanation; a scenario that states none does not check it.
fn unexplained(mut got: Event, want: Option<&Event>) -> Event {
    if let (
        Event::CallOffered { explanation, .. },
        Some(Event::CallOffered {
            explanation: wanted,
            ..
        }),
    ) = (&mut got, want)
    {
        if *wanted == Explanation::default() {
            *explanation = Explanation::default();
        }
    }
    got
}

fn run_scenario(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let sc: Scenario = serde_json::from_str(&text).map_err(|e| format!("parse: {e}"))?;
    let mut core = Core::new(sc.config.clone(), Term(1));
    let mut follower = Core::new(sc.config, Term(1));
    for (i, step) in sc.steps.into_iter().enumerate() {
        let now = Timestamp(step.at);
        let got = match step.command {
            Some(cmd) => match core.handle(cmd, now) {
                Ok(recs) => recs,
                Err(e) => {
                    let kind = kind_name(e.kind());
                    if step.error.as_deref() != Some(kind) {
                        return Err(format!("step {i}: unexpected error {e} ({kind})"));
                    }
                    continue;
                }
            },
            None => core.handle_timeout(now),
        };
        if let Some(kind) = step.error {
            return Err(format!("step {i}: expected a {kind} error, got {got:?}"));
        }
        for r in &got {
            follower
                .apply(r)
                .map_err(|e| format!("step {i}: follower refused {r:?}: {e}"))?;
        }
        let events: Vec<Event> = got
            .into_iter()
            .zip(step.expect.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(r, want)| unexplained(r.event, want))
            .collect();
        if events != step.expect {
            return Err(format!(
                "step {i} at {}:\n expected {}\n      got {}",
                step.at,
                serde_json::to_string(&step.expect).unwrap_or_default(),
                serde_json::to_string(&events).unwrap_or_default()
            ));
        }
    }
    if follower.state_digest() != core.state_digest() {
        return Err("follower diverged".into());
    }
    Ok(())
}

#[test]
fn scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenario dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scenarios in {}", dir.display());
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            run_scenario(p)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
