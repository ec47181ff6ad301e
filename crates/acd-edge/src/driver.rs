//! The edge's one driver loop. It owns the core, the transports' send side,
//! the media tasks' handles, the IVR steps in flight and the channel to the
//! distributor: wait for an input or the core's next deadline, feed the
//! core, carry out what it asks, repeat. Nothing else touches core state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_b2bua::{CallId, EdgeCore, Input as CoreInput, MediaCommand, MediaPorts, Output, Snapshot};
use acd_proto::v1 as pb;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use std::os::fd::OwnedFd;

use crate::convert;
use crate::distributor_link::DistributorLink;
use crate::handover::FdKind;
use crate::ivr_client::IvrClients;
use crate::media::{self, MediaCmd, MediaEvent, MediaHandle, PortPool};
use crate::transport::{Inbound, Transports};
use crate::EdgeShared;

/// What the loop reacts to besides SIP, media and deadlines.
pub enum Input {
    Distributor(Box<pb::DistributorMessage>),
    /// A stream to the leader is up: its sending half.
    DistributorAttached(crate::distributor_link::StreamTx),
    DistributorDetached,
}

/// Every channel the loop reads; each is bounded where a peer can fill it.
pub struct Inputs {
    /// Parsed SIP from the transports (bounded: UDP drops, streams wait).
    pub sip: mpsc::Receiver<Inbound>,
    pub other: mpsc::Receiver<Input>,
    pub control: mpsc::UnboundedReceiver<Control>,
    pub media: mpsc::UnboundedReceiver<MediaEvent>,
}

/// Requests from the process (admin service, hand-over).
pub enum Control {
    Drain,
    /// The drain deadline passed: BYE to every call left.
    EndAll,
    Snapshot(oneshot::Sender<EdgeSnapshot>),
    /// Stop reading and hand everything over (see [`Frozen`]).
    HandOver(oneshot::Sender<Frozen>),
    /// The config was reloaded: numbers, flows and prompts for new calls.
    Reload(Box<Reloaded>),
}

/// What a reload gives the edge: the core's part and the decoded prompts.
pub struct Reloaded {
    pub core: acd_b2bua::Reconfigure,
    pub prompts: std::collections::BTreeMap<String, Arc<acd_media::Prompt>>,
}

/// The edge's whole state: the core's calls, dialogs, transactions and
/// timers, and every call's media streams (SSRC, sequence, timestamp,
/// player position, latches).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EdgeSnapshot {
    pub core: Snapshot,
    pub media: Vec<media::MediaSnapshot>,
    /// Prompts that finished after the media stopped, not yet seen by the
    /// core: (call, token). The next process feeds them in.
    #[serde(default)]
    pub prompts_finished: Vec<(String, u64)>,
    /// Messages to the distributor not yet acknowledged, and the next id:
    /// the next process re-sends them and continues the ids.
    #[serde(default)]
    pub link: crate::outbox::OutboxSnapshot<acd_b2bua::ToDistributor>,
}

/// A stopped edge: its state and copies of its sockets. The driver waits
/// for [`Frozen::finish`] (the next process serves: the loop ends) or
/// [`Frozen::resume`]; dropped without either, it resumes.
pub struct Frozen {
    pub snapshot: EdgeSnapshot,
    pub fds: Vec<(FdKind, OwnedFd)>,
    verdict: Option<oneshot::Sender<bool>>,
}

impl Frozen {
    /// The next process serves: this edge never reads again.
    pub fn finish(mut self) {
        if let Some(v) = self.verdict.take() {
            let _ = v.send(false);
        }
    }

    /// The hand-over failed: serve again.
    pub fn resume(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(v) = self.verdict.take() {
            let _ = v.send(true);
        }
    }
}

pub struct Driver {
    pub core: EdgeCore,
    pub transports: Transports,
    pub ports: Arc<PortPool>,
    pub ivr: IvrClients,
    pub dist: DistributorLink,
    pub shared: Arc<EdgeShared>,
    pub prompts: std::collections::BTreeMap<String, Arc<acd_media::Prompt>>,
    pub media_events: mpsc::UnboundedSender<MediaEvent>,
    pub media_options: media::MediaOptions,
    /// Registration changes seen and when they were last counted.
    pub registrations_counted: (u64, Instant),
    /// Looked up once: the registry lookup is not free per loop turn.
    pub lateness_gauge: metrics::Gauge,
    pub calls_gauge: metrics::Gauge,
}

type IvrResult = (acd_b2bua::IvrStep, Result<pb::StepResponse, String>);

impl Driver {
    /// `media`: streams restored from a hand-over; `prompts_finished`
    /// what the previous process had not yet told its core.
    pub async fn run(
        mut self,
        inputs: Inputs,
        mut media: HashMap<CallId, MediaHandle>,
        prompts_finished: Vec<(String, u64)>,
    ) {
        let Inputs {
            mut sip,
            other: mut inputs,
            mut control,
            media: mut media_rx,
        } = inputs;
        let mut steps: JoinSet<IvrResult> = JoinSet::new();
        self.prompts_finished(prompts_finished);
        // A restored core re-emits its pending IVR steps and stream routes.
        self.drain_outputs(&mut media, &mut steps);
        loop {
            let deadline = Some(crate::wake_at(self.core.poll_timeout()));
            tokio::select! {
                msg = sip.recv() => match msg {
                    Some(m) => self.sip(m),
                    None => return,
                },
                input = inputs.recv() => match input {
                    Some(i) => self.input(i),
                    None => return,
                },
                Some(ev) = media_rx.recv() => self.media_event(ev),
                Some(Ok((step, result))) = steps.join_next(), if !steps.is_empty() => {
                    let reply = result.map(convert::step_reply);
                    self.core.handle(
                        CoreInput::IvrReply { call: step.call, step: step.step, reply },
                        Instant::now(),
                    );
                }
                Some(c) = control.recv() => match c {
                    Control::HandOver(tx) => {
                        let rx = (&mut sip, &mut media_rx);
                        if !self.hand_over(tx, rx, &mut media, &mut steps).await {
                            tracing::info!("handed over: this edge stops");
                            return;
                        }
                    }
                    c => self.control(c, &media).await,
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    self.core.handle_timeout(Instant::now());
                }
            }
            self.drain_outputs(&mut media, &mut steps);
            self.publish_status(Instant::now());
        }
    }

    fn sip(&mut self, m: Inbound) {
        let input = CoreInput::Sip {
            msg: *m.msg,
            from: m.from,
            received: m.received,
        };
        self.core.handle(input, Instant::now());
    }

    fn input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Distributor(m) if is_ack(&m).is_some() => {
                self.dist.ack(is_ack(&m).unwrap_or_default())
            }
            Input::Distributor(m) => match convert::from_distributor(*m) {
                Some((term, cmd)) => self.core.handle(CoreInput::Distributor { term, cmd }, now),
                None => tracing::debug!("distributor message of an unknown kind ignored"),
            },
            Input::DistributorAttached(tx) => {
                self.dist.attached(tx, &self.core.queued_calls());
                let up = self.dist.is_attached();
                self.shared
                    .distributor_connected
                    .store(up, Ordering::Relaxed);
            }
            Input::DistributorDetached => {
                self.dist.detached();
                self.shared
                    .distributor_connected
                    .store(false, Ordering::Relaxed);
            }
        }
    }

    fn media_event(&mut self, ev: MediaEvent) {
        let ev = match ev {
            MediaEvent::PromptFinished { call, token } => acd_b2bua::MediaEvent::PromptFinished {
                call: CallId(call),
                token: acd_b2bua::PlayToken(token),
            },
            MediaEvent::Inactive { call, leg, .. } => acd_b2bua::MediaEvent::Inactive {
                call: CallId(call),
                side: side_of(leg),
            },
            MediaEvent::Digit { call, digit } => acd_b2bua::MediaEvent::Digit {
                call: CallId(call),
                digit,
            },
            MediaEvent::Recorded {
                call,
                token,
                file,
                duration_ms,
            } => acd_b2bua::MediaEvent::Recorded {
                call: CallId(call),
                token: acd_b2bua::PlayToken(token),
                file,
                duration_ms,
            },
            MediaEvent::RecordFailed {
                call,
                token,
                reason,
            } => acd_b2bua::MediaEvent::RecordFailed {
                call: CallId(call),
                token: acd_b2bua::PlayToken(token),
                reason,
            },
        };
        self.core.handle(CoreInput::Media(ev), Instant::now());
    }

    async fn control(&mut self, c: Control, media: &HashMap<CallId, MediaHandle>) {
        match c {
            Control::Drain => self.core.handle(CoreInput::Drain, Instant::now()),
            Control::EndAll => self.core.handle(CoreInput::EndAll, Instant::now()),
            Control::Snapshot(reply) => {
                // Media first: the core's state is then at least as new.
                // Asked all at once: the loop waits one round trip, not one per call.
                let streams: Vec<media::MediaSnapshot> =
                    futures::future::join_all(media.values().map(MediaHandle::snapshot))
                        .await
                        .into_iter()
                        .flatten()
                        .collect();
                let _ = reply.send(self.edge_snapshot(streams, Vec::new()));
            }
            Control::Reload(r) => {
                // Calls already playing hold their prompts (`Arc`); new
                // plays find the new ones by name.
                self.media_options.hold_music =
                    r.prompts.get("moh").map(|p| acd_media::call::NamedPrompt {
                        name: "moh".into(),
                        prompt: p.clone(),
                    });
                self.prompts = r.prompts;
                let core = Box::new(r.core);
                self.core
                    .handle(CoreInput::Reconfigure(core), Instant::now());
            }
            // Handled by the loop, which owns the receivers.
            Control::HandOver(_) => {}
        }
    }

    /// The core's state with `streams`; everything the driver itself holds
    /// joins here, so a snapshot and a hand-over carry the same.
    fn edge_snapshot(
        &self,
        mut streams: Vec<media::MediaSnapshot>,
        prompts_finished: Vec<(String, u64)>,
    ) -> EdgeSnapshot {
        streams.sort_by(|a, b| a.call.cmp(&b.call));
        EdgeSnapshot {
            core: self.core.snapshot(Instant::now()),
            media: streams,
            prompts_finished,
            link: self.dist.snapshot(),
        }
    }

    fn prompts_finished(&mut self, finished: Vec<(String, u64)>) {
        for (call, token) in finished {
            self.media_event(MediaEvent::PromptFinished { call, token });
        }
    }

    /// Stops reading, takes everything in flight into the core, stops the
    /// media tasks and hands the lot over; then waits for the verdict.
    /// Returns whether this edge serves on.
    async fn hand_over(
        &mut self,
        reply: oneshot::Sender<Frozen>,
        (sip, media_rx): (
            &mut mpsc::Receiver<Inbound>,
            &mut mpsc::UnboundedReceiver<MediaEvent>,
        ),
        media: &mut HashMap<CallId, MediaHandle>,
        steps: &mut JoinSet<IvrResult>,
    ) -> bool {
        let started = Instant::now();
        self.transports.pause().await;
        // What was read before the pause: into the core, its media commands
        // to the tasks still running (each task's queue is FIFO, so they
        // are carried out before the hand-over below).
        while let Ok(m) = sip.try_recv() {
            self.sip(m);
        }
        while let Ok(ev) = media_rx.try_recv() {
            self.media_event(ev);
        }
        self.drain_outputs(media, steps);
        let handed: Vec<media::HandedOver> =
            futures::future::join_all(media.drain().map(|(_, h)| h.hand_over()))
                .await
                .into_iter()
                .flatten()
                .collect();
        // Prompts that ended meanwhile travel with the snapshot.
        let mut finished = Vec::new();
        while let Ok(ev) = media_rx.try_recv() {
            if let MediaEvent::PromptFinished { call, token } = ev {
                finished.push((call, token));
            }
        }
        let fds = self.handover_fds(&handed);
        let streams = handed.iter().map(|h| h.snapshot.clone()).collect();
        let snapshot = self.edge_snapshot(streams, finished.clone());
        let (verdict_tx, verdict_rx) = oneshot::channel();
        let serve_on = match fds {
            Ok(fds) => {
                tracing::info!(
                    calls = snapshot.core.calls.len(),
                    media = handed.len(),
                    descriptors = fds.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "stopped for a hand-over"
                );
                let frozen = Frozen {
                    snapshot,
                    fds,
                    verdict: Some(verdict_tx),
                };
                // No taker: serve on.
                reply.send(frozen).is_err() || verdict_rx.await.unwrap_or(true)
            }
            Err(e) => {
                metrics::counter!("acd_edge_handover_failures_total", "reason" => "descriptors")
                    .increment(1);
                tracing::warn!(error = %e, "hand-over: cannot copy the sockets; serving on");
                true
            }
        };
        if serve_on {
            self.resume(handed, finished, media);
        }
        serve_on
    }

    fn handover_fds(
        &self,
        handed: &[media::HandedOver],
    ) -> std::io::Result<Vec<(FdKind, OwnedFd)>> {
        let mut fds = self.transports.descriptors()?;
        for h in handed {
            fds.extend(h.descriptors()?);
        }
        Ok(fds)
    }

    /// A failed hand-over: media tasks again on the same sockets, reading again.
    fn resume(
        &mut self,
        handed: Vec<media::HandedOver>,
        finished: Vec<(String, u64)>,
        media: &mut HashMap<CallId, MediaHandle>,
    ) {
        metrics::counter!("acd_edge_handover_failures_total", "reason" => "resumed").increment(1);
        tracing::warn!("hand-over did not complete: serving again");
        let now = Instant::now();
        for h in handed {
            let call = CallId(h.snapshot.call.clone());
            let handle = media::restore(
                &h.snapshot,
                h.caller,
                h.agent,
                |name| self.prompts.get(name).cloned(),
                self.media_events.clone(),
                now,
            );
            media.insert(call, handle);
        }
        self.prompts_finished(finished);
        self.transports.resume();
    }

    fn drain_outputs(
        &mut self,
        media: &mut HashMap<CallId, MediaHandle>,
        steps: &mut JoinSet<IvrResult>,
    ) {
        // Media allocation answers the core at once; what that produces
        // joins the same queue and is drained by the same loop.
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Transmit { to, bytes } => self.transports.send(to, bytes),
                Output::StreamRoute { connection, target } => {
                    self.transports.route(connection, target)
                }
                Output::Distributor(m) => self.dist.send(m),
                Output::Ivr(step) => {
                    let ivr = self.ivr.clone();
                    let req = convert::step_request(&step);
                    steps.spawn(async move {
                        // A panic in the client must still answer the step
                        // (as a failed runner), or the caller would wait forever.
                        let mut result = std::panic::AssertUnwindSafe(ivr.step(req))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| Err("IVR client panicked".into()));
                        if let Ok(resp) = &mut result {
                            crate::transfer_target::resolve(resp).await;
                        }
                        (step, result)
                    });
                }
                Output::Media { call, cmd } => {
                    if let Some(input) = self.media_command(media, call, cmd) {
                        self.core.handle(input, Instant::now());
                    }
                }
                _ => tracing::debug!("core output of an unknown kind ignored"),
            }
        }
    }

    /// Carries out a media command; allocation answers the core at once.
    fn media_command(
        &mut self,
        media: &mut HashMap<CallId, MediaHandle>,
        call: CallId,
        cmd: MediaCommand,
    ) -> Option<CoreInput> {
        match cmd {
            MediaCommand::Allocate {
                caller_remote,
                caller_codec,
            } => {
                let remote = caller_remote.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                match media::start_with(
                    &self.ports,
                    call.0.clone(),
                    remote,
                    caller_codec,
                    self.media_events.clone(),
                    self.media_options.clone(),
                ) {
                    Ok(h) => {
                        let ports = MediaPorts {
                            caller: h.caller_port,
                            agent: h.agent_port,
                        };
                        media.insert(call.clone(), h);
                        Some(CoreInput::MediaReady { call, ports })
                    }
                    Err(e) => Some(CoreInput::MediaFailed {
                        call,
                        reason: e.to_string(),
                    }),
                }
            }
            MediaCommand::Release => {
                media.remove(&call); // dropping the handle ends the task
                None
            }
            cmd => {
                let h = media.get(&call)?;
                match cmd {
                    MediaCommand::Play {
                        prompt,
                        looping,
                        token,
                    } => match self.prompts.get(&prompt) {
                        Some(p) => h.send(MediaCmd::Play {
                            prompt: p.clone(),
                            name: prompt,
                            looping,
                            token: token.0,
                        }),
                        None => tracing::warn!(call_id = %call, %prompt, "prompt not loaded"),
                    },
                    MediaCommand::StopPlayback => h.send(MediaCmd::StopPlayback),
                    MediaCommand::TelephoneEvent { pt } => h.send(MediaCmd::SetTelephoneEvent(pt)),
                    MediaCommand::Record {
                        max_ms,
                        silence_ms,
                        beep,
                        token,
                    } => match &self.media_options.voicemail_dir {
                        Some(dir) => h.send(MediaCmd::Record {
                            max_ms,
                            silence_ms,
                            beep,
                            token: token.0,
                            dir: dir.clone(),
                        }),
                        None => {
                            return Some(CoreInput::Media(acd_b2bua::MediaEvent::RecordFailed {
                                call,
                                token,
                                reason: "no voicemail directory".into(),
                            }))
                        }
                    },
                    MediaCommand::StopRecording => h.send(MediaCmd::StopRecording),
                    MediaCommand::Bridge {
                        agent_remote,
                        agent_codec,
                    } => h.send(MediaCmd::Bridge {
                        agent_remote,
                        agent_codec,
                    }),
                    MediaCommand::Unbridge => h.send(MediaCmd::Unbridge),
                    MediaCommand::Update {
                        side,
                        remote,
                        codec,
                        direction,
                    } => {
                        let leg = leg_of(side);
                        if let Some(remote) = remote {
                            h.send(MediaCmd::Renegotiate { leg, remote, codec });
                        }
                        // The media wants the peer's declared direction; the
                        // core tells ours (the mirror of it).
                        h.send(MediaCmd::SetDirection {
                            leg,
                            direction: direction.reversed(),
                        });
                    }
                    other => {
                        tracing::debug!(call_id = %call, cmd = ?other, "media command not supported")
                    }
                }
                None
            }
        }
    }

    /// O(1) per loop turn: the registrations are recounted (a walk over
    /// them) only when one changed, or once a second for expiries.
    fn publish_status(&mut self, now: Instant) {
        let s = &self.shared;
        s.loop_turns.fetch_add(1, Ordering::Relaxed);
        let calls = self.core.active_calls();
        s.active_calls.store(calls as u32, Ordering::Relaxed);
        self.calls_gauge.set(calls as f64);
        s.sip_transactions
            .store(self.core.transactions() as u32, Ordering::Relaxed);
        let changes = self.core.registration_changes();
        let (seen, at) = self.registrations_counted;
        if changes != seen || now.saturating_duration_since(at) >= Duration::from_secs(1) {
            s.registrations
                .store(self.core.registrations(now) as u32, Ordering::Relaxed);
            self.registrations_counted = (changes, now);
        }
        self.lateness_gauge.set(self.core.lateness().as_secs_f64());
    }
}

fn leg_of(side: acd_b2bua::Side) -> acd_media::Leg {
    match side {
        acd_b2bua::Side::Caller => acd_media::Leg::A,
        acd_b2bua::Side::Agent => acd_media::Leg::B,
    }
}

fn side_of(leg: acd_media::Leg) -> acd_b2bua::Side {
    match leg {
        acd_media::Leg::A => acd_b2bua::Side::Caller,
        acd_media::Leg::B => acd_b2bua::Side::Agent,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The acknowledged message id, for an `EdgeAck`.
fn is_ack(m: &pb::DistributorMessage) -> Option<u64> {
    match &m.kind {
        Some(pb::distributor_message::Kind::Ack(ack)) => Some(ack.msg_id),
        _ => None,
    }
}
