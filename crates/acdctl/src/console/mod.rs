//! `acdctl agent console <agent> --extension 1001`: an interactive terminal
//! client for an operator.
//!
//! Data flow: Watch stream ─┐
//!            keys (thread) ─┼─▶ ConsoleState (pure) ─▶ view::render ─▶ terminal
//!            tick (1 s) ────┘          │
//!                                      └─ Request ─▶ AgentService ─▶ result back into the state
//!
//! The Watch stream is re-attached after the last event seen (`after_seq`)
//! when it breaks, so a distributor fail-over shows nothing twice.

pub mod state;
pub mod view;

use std::time::Duration;

use acd_proto::v1::agent_service_client::AgentServiceClient;
use acd_proto::v1::transfer_request::Target;
use acd_proto::v1::{
    AgentEvent, AgentStatus, EndWrapUpRequest, ListQueuesRequest, ListReasonsRequest, LoginRequest,
    LogoutRequest, OfferRequest, SetNotReadyRequest, SetReadyRequest, TransferRequest,
};
use anyhow::Result;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;
use tonic::Streaming;

use crate::request;
use crate::servers::{backoff, Servers};
use state::{ConsoleState, Key, Request};

/// Runs the console until `q` (or Ctrl-C).
pub async fn run(servers: &mut Servers, agent: &str, extension: &str) -> Result<()> {
    let mut s = ConsoleState::new(agent, extension);
    let login = LoginRequest {
        agent_id: agent.to_string(),
        extension: extension.to_string(),
    };
    let status = servers
        .call(|ch| {
            let req = login.clone();
            async move { AgentServiceClient::new(ch).login(request(req)).await }
        })
        .await?;
    s.apply_result(Ok(status.into_inner()));
    s.reasons = list_reasons(servers).await.unwrap_or_default();
    s.queues = list_queues(servers).await.unwrap_or_default();

    let (keys_tx, keys) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("console-keys".into())
        .spawn(move || read_keys(keys_tx))?;
    let mut terminal = ratatui::init();
    let result = drive(servers, &mut s, keys, &mut terminal).await;
    ratatui::restore();
    result
}

/// The drive loop: wait for an event, a key or the tick; update; draw.
async fn drive(
    servers: &mut Servers,
    s: &mut ConsoleState,
    mut keys: mpsc::Receiver<Key>,
    terminal: &mut ratatui::DefaultTerminal,
) -> Result<()> {
    let mut stream: Option<Streaming<AgentEvent>> = None;
    let mut attempt = 0u32;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        terminal.draw(|f| view::render(s, now_ms(), f.area(), f.buffer_mut()))?;
        if stream.is_none() {
            match crate::agent::open_watch(servers, &s.agent, s.after_seq).await {
                Ok(st) => {
                    stream = Some(st);
                    attempt = 0;
                }
                Err(e) => {
                    s.message = format!("watch: {e:#}; retrying");
                    attempt += 1;
                }
            }
        }
        let retry = tokio::time::sleep(backoff(attempt));
        tokio::select! {
            msg = next_event(&mut stream) => match msg {
                Some(e) => s.apply_event(&e),
                None => stream = None,
            },
            key = keys.recv() => {
                let Some(key) = key else { return Ok(()) };
                match s.apply_key(key) {
                    Some(Request::Quit) => return Ok(()),
                    Some(req) => {
                        let result = send(servers, &s.agent, req).await;
                        s.apply_result(result);
                    }
                    None => {}
                }
            }
            _ = tick.tick() => {}
            _ = retry, if stream.is_none() => {}
        }
    }
}

/// The next event; `None` when the stream ended or broke (or there is none).
async fn next_event(stream: &mut Option<Streaming<AgentEvent>>) -> Option<AgentEvent> {
    match stream {
        Some(st) => st.message().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Terminal keys as console keys, until the receiver goes away.
fn read_keys(tx: mpsc::Sender<Key>) {
    while let Ok(ev) = crossterm::event::read() {
        let TermEvent::Key(k) = ev else { continue };
        if k.kind != KeyEventKind::Press {
            continue;
        }
        let key = match k.code {
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Char('q'),
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc => Key::Esc,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            _ => continue,
        };
        if tx.blocking_send(key).is_err() {
            return;
        }
    }
}

async fn list_reasons(servers: &mut Servers) -> Result<Vec<String>> {
    let resp = servers
        .call(|ch| async move {
            AgentServiceClient::new(ch)
                .list_reasons(request(ListReasonsRequest {}))
                .await
        })
        .await?;
    Ok(resp.into_inner().reasons)
}

async fn list_queues(servers: &mut Servers) -> Result<Vec<String>> {
    let resp = servers
        .call(|ch| async move {
            AgentServiceClient::new(ch)
                .list_queues(request(ListQueuesRequest {}))
                .await
        })
        .await?;
    Ok(resp
        .into_inner()
        .queues
        .into_iter()
        .map(|q| q.queue_id)
        .collect())
}

/// Sends one request on the leader; the agent's new status or the error text.
async fn send(servers: &mut Servers, agent: &str, req: Request) -> Result<AgentStatus, String> {
    let agent_id = agent.to_string();
    let offer = |call: String| OfferRequest {
        agent_id: agent_id.clone(),
        call_id: call,
    };
    let result = servers
        .call(|ch| {
            let mut c = AgentServiceClient::new(ch);
            let req = req.clone();
            let agent_id = agent_id.clone();
            async move {
                let resp = match req {
                    Request::Ready => c.set_ready(request(SetReadyRequest { agent_id })).await,
                    Request::NotReady { reason } => {
                        let r = SetNotReadyRequest { agent_id, reason };
                        c.set_not_ready(request(r)).await
                    }
                    Request::EndWrapUp { reason } => {
                        let r = EndWrapUpRequest {
                            agent_id,
                            not_ready_reason: reason,
                        };
                        c.end_wrap_up(request(r)).await
                    }
                    Request::Accept { call } => c.accept_offer(request(offer(call))).await,
                    Request::Reject { call } => c.reject_offer(request(offer(call))).await,
                    Request::TransferToQueue { call, queue } => {
                        let r = transfer(agent_id, call, Target::QueueId(queue));
                        c.transfer(request(r)).await
                    }
                    Request::TransferToAgent { call, agent } => {
                        let r = transfer(agent_id, call, Target::ToAgentId(agent));
                        c.transfer(request(r)).await
                    }
                    Request::Logout => c.logout(request(LogoutRequest { agent_id })).await,
                    Request::Quit => Err(tonic::Status::cancelled("quit")),
                };
                resp.map(tonic::Response::into_inner)
            }
        })
        .await;
    result.map_err(|e| crate::error_line(&e))
}

fn transfer(agent_id: String, call_id: String, target: Target) -> TransferRequest {
    TransferRequest {
        agent_id,
        call_id,
        target: Some(target),
    }
}

#[cfg(test)]
mod tests;
