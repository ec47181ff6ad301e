//! `command_durable` from many tasks at once on a multi-threaded runtime:
//! each waits for the commit watch, then takes the distributor lock, while
//! the others' commands hold that lock and write the watch. A borrow of the
//! watch kept across the lock deadlocked here.

use std::time::Duration;

use acd_routing::{AgentDef, AgentId, Command, Extension, RoutingConfig};

use crate::{Distributor, Role};

const AGENTS: usize = 8;
const TOGGLES: usize = 400;

fn config() -> RoutingConfig {
    RoutingConfig {
        queues: Vec::new(),
        agents: (0..AGENTS)
            .map(|i| AgentDef {
                id: AgentId(format!("a{i}")),
                name: format!("Agent {i}"),
                skills: Vec::new(),
                auto_answer: false,
            })
            .collect(),
        default_wrap_up_ms: 0,
        offer_timeout_ms: 1000,
        extensions: Default::default(),
        not_ready_reasons: Vec::new(),
    }
}

/// Runs the workload on its own runtime and thread: a deadlock blocks every
/// worker (and with them the runtime's timers), so the test thread watches
/// the clock itself.
#[test]
fn durable_commands_from_many_tasks_finish() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let _ = done.send(rt.block_on(workload()));
    });
    let result = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("durable commands deadlocked: not all finished within 60 s");
    result.expect("a command was refused");
}

async fn workload() -> Result<(), String> {
    let d = Distributor::new(config(), Role::Primary);
    let tasks: Vec<_> = (0..AGENTS)
        .map(|i| tokio::spawn(toggle(d.clone(), i)))
        .collect();
    for r in futures::future::join_all(tasks).await {
        r.map_err(|e| format!("task: {e}"))??;
    }
    Ok(())
}

/// Logs agent `i` in, then makes it ready and not ready by turns.
async fn toggle(d: Distributor, i: usize) -> Result<(), String> {
    let agent = AgentId(format!("a{i}"));
    d.command_durable(Command::AgentLogin {
        agent: agent.clone(),
        extension: Extension(format!("10{i:02}")),
    })
    .await
    .map_err(|e| format!("login {agent}: {e}"))?;
    for n in 0..TOGGLES {
        let cmd = if n % 2 == 0 {
            Command::AgentReady {
                agent: agent.clone(),
            }
        } else {
            Command::AgentNotReady {
                agent: agent.clone(),
                reason: "break".into(),
            }
        };
        d.command_durable(cmd)
            .await
            .map_err(|e| format!("{agent} toggle {n}: {e}"))?;
    }
    Ok(())
}
