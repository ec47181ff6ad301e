//! Today's figures for the wallboard, kept in memory and fed record by record
//! from the distributor's committed events (primary and standby alike), so the
//! board needs no database round trip per update.
//!
//! ```text
//! seed(Dataset of today, once at start) ─┐
//! committed EventRecord ── apply() ──────┴▶ DayBoard ── view(now, live core figures) ─▶ BoardView (JSON)
//! ```
//!
//! Counting rules (the same as the core's queue counters, per day):
//! - a call is *offered* to every queue it enters (queued, overflowed or
//!   transferred into, a callback booked into), in the interval it entered;
//! - its answer, abandon and handle time count in that same queue and
//!   interval, so an interval's service level is "of the calls offered then,
//!   the share answered within the target" (answered within the target ÷
//!   offered, as the core's `service_level_permille`, except that calls still
//!   waiting within the target are left out until they are settled);
//! - *answered within the target*: connected no later than the queue's
//!   `service_level.within_ms` after the call first queued;
//! - *handle time*: talk (connect to end or transfer) plus the agent's
//!   wrap-up after it (until the agent next leaves wrap-up);
//! - the day is the calendar day in the board's time zone (UTC by default);
//!   at midnight the figures start from zero, and outcomes of calls that
//!   entered a queue before midnight are not counted in the new day.
//!
//! Records may reach the board twice around a restart (seeded from the
//! database and streamed live): a call id is counted once, by whichever came
//! first, and every step checks the call's phase, so a repeat changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use acd_routing::{
    callback_id, AgentId, AgentState, CallId, Event, EventRecord, OverflowAction, QueueId,
    QueueView, RoutingConfig, ServiceLevel, Timestamp, TransferTarget,
};
use serde::{Deserialize, Serialize};

use crate::rows::{CallRow, Dataset, TimeRange};
use crate::staffing;

const MINUTE_MS: i64 = 60_000;

/// How the board cuts the day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardSettings {
    /// Interval length of the chart and the staffing figure (`[staffing] interval_mins`).
    pub interval_mins: u32,
    /// IANA zone whose midnight starts the day; `None`: UTC.
    pub time_zone: Option<String>,
}

impl Default for BoardSettings {
    fn default() -> Self {
        BoardSettings {
            interval_mins: 30,
            time_zone: None,
        }
    }
}

/// One queue's counts in one interval (or a whole day, summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub offered: u64,
    pub answered: u64,
    pub answered_in_sl: u64,
    pub abandoned: u64,
    /// Calls whose talk ended (their handle time is in `handle_ms`).
    pub handled: u64,
    /// Talk plus wrap-up, milliseconds.
    pub handle_ms: u64,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_in_sl += o.answered_in_sl;
        self.abandoned += o.abandoned;
        self.handled += o.handled;
        self.handle_ms += o.handle_ms;
    }

    /// Answered within the target of those offered, in percent.
    pub fn sl_percent(&self) -> Option<f64> {
        self.sl_percent_settled(0)
    }

    /// As [`Figures::sl_percent`], leaving out `pending` calls still waiting
    /// within the target: they may yet be answered in time, so one call that
    /// just arrived does not paint the board red.
    pub fn sl_percent_settled(&self, pending: u64) -> Option<f64> {
        let settled = self.offered.saturating_sub(pending);
        (settled > 0).then(|| 100.0 * self.answered_in_sl as f64 / settled as f64)
    }

    /// Average handle time in seconds.
    pub fn aht_secs(&self) -> Option<f64> {
        (self.handled > 0).then(|| self.handle_ms as f64 / 1000.0 / self.handled as f64)
    }
}

/// Agents by state, from the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounts {
    pub ready: u32,
    pub reserved: u32,
    pub on_call: u32,
    pub wrap_up: u32,
    pub not_ready: u32,
    pub logged_out: u32,
}

impl AgentCounts {
    pub fn of<'a>(states: impl IntoIterator<Item = &'a AgentState>) -> AgentCounts {
        let mut c = AgentCounts::default();
        for s in states {
            *match s {
                AgentState::Ready => &mut c.ready,
                AgentState::Reserved { .. } => &mut c.reserved,
                AgentState::OnCall { .. } => &mut c.on_call,
                AgentState::WrapUp { .. } => &mut c.wrap_up,
                AgentState::NotReady => &mut c.not_ready,
                AgentState::LoggedOut => &mut c.logged_out,
            } += 1;
        }
        c
    }

    pub fn logged_in(&self) -> u32 {
        self.ready + self.reserved + self.on_call + self.wrap_up + self.not_ready
    }
}

/// The live part of the board, read from the core when a view is made.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// `primary` or `standby`.
    pub role: String,
    /// In display order.
    pub queues: Vec<QueueView>,
    pub agents: AgentCounts,
}

/// The board as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoardView {
    pub at_ms: u64,
    /// `YYYY-MM-DD` in `time_zone`.
    pub day: String,
    pub time_zone: String,
    pub interval_mins: u32,
    pub role: String,
    pub queues: Vec<QueueTile>,
    pub agents: AgentCounts,
    pub staffing: StaffingNow,
    /// Every queue together, from the day's first interval to the current one.
    pub intervals: Vec<IntervalPoint>,
}

/// One queue's tile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueTile {
    pub id: String,
    pub waiting: u32,
    /// Of `waiting`, being offered to an agent now.
    pub offering: u32,
    /// Since when the longest-waiting call waits (0: none waits).
    pub longest_wait_since_ms: u64,
    pub longest_wait_secs: u64,
    pub agents_ready: u32,
    pub agents_logged_in: u32,
    /// Today.
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub answered_in_sl: u64,
    pub sl_percent: Option<f64>,
    pub target_percent: u8,
    pub target_secs: u64,
    /// SL today below the target (the tile turns red).
    pub below_target: bool,
    pub aht_secs: Option<f64>,
    /// Operators needed on the phones this interval (Erlang C); `None` while
    /// calls come but no handle time is known yet.
    pub required: Option<u32>,
}

/// Required versus logged-in operators for the current interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaffingNow {
    /// Start of the current interval, `HH:MM`.
    pub interval: String,
    /// Sum over the queues that have a figure; `None`: none has.
    pub required: Option<u32>,
    pub logged_in: u32,
}

/// Service level of one interval, every queue together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalPoint {
    pub start_ms: i64,
    /// `HH:MM` in the board's zone.
    pub label: String,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub sl_percent: Option<f64>,
}

/// Where a call is, as far as the board needs it.
#[derive(Clone, Debug)]
struct Track {
    queue: QueueId,
    /// When it entered `queue` (chooses the interval it counts in).
    entered: i64,
    /// When it first queued (service level counts from here, as the core does).
    since: i64,
    /// When it was connected; `None` while waiting.
    connected: Option<i64>,
}

/// Wrap-up under way, to be added to the handle time when it ends.
#[derive(Clone, Debug)]
struct Wrap {
    queue: QueueId,
    entered: i64,
    from: i64,
}

/// The day's start and end, Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Day {
    start: i64,
    end: i64,
}

/// Today's figures per queue and interval.
pub struct DayBoard {
    interval_ms: i64,
    interval_mins: u32,
    zone: jiff::tz::TimeZone,
    zone_name: String,
    day: Option<Day>,
    targets: HashMap<QueueId, ServiceLevel>,
    /// Per queue, per interval of the day (index from the day's start).
    figures: BTreeMap<QueueId, Vec<Figures>>,
    calls: HashMap<CallId, Track>,
    wraps: HashMap<AgentId, Wrap>,
    /// Call ids counted today (see the module docs on repeats).
    seen: HashSet<CallId>,
}

impl DayBoard {
    /// An empty board; `config` gives the queues' service-level targets (later
    /// `ConfigChanged` events replace them). An unknown zone falls back to UTC
    /// (the error says so; config checking should refuse it first).
    pub fn new(settings: &BoardSettings, config: &RoutingConfig) -> (DayBoard, Option<String>) {
        let (zone, zone_name, error) = match &settings.time_zone {
            None => (jiff::tz::TimeZone::UTC, "UTC".to_string(), None),
            Some(name) => match jiff::tz::TimeZone::get(name) {
                Ok(z) => (z, name.clone(), None),
                Err(e) => (
                    jiff::tz::TimeZone::UTC,
                    "UTC".to_string(),
                    Some(format!("time zone `{name}`: {e}; the wallboard uses UTC")),
                ),
            },
        };
        let interval_mins = match settings.interval_mins {
            0 => 30,
            m => m.min(24 * 60),
        };
        let mut board = DayBoard {
            interval_ms: i64::from(interval_mins) * MINUTE_MS,
            interval_mins,
            zone,
            zone_name,
            day: None,
            targets: HashMap::new(),
            figures: BTreeMap::new(),
            calls: HashMap::new(),
            wraps: HashMap::new(),
            seen: HashSet::new(),
        };
        board.set_targets(config);
        (board, error)
    }

    fn set_targets(&mut self, config: &RoutingConfig) {
        self.targets = config
            .queues
            .iter()
            .map(|q| (q.id.clone(), q.service_level))
            .collect();
    }

    /// The day containing `at` in the board's zone.
    fn day_of(&self, at: i64) -> Day {
        let fallback = Day {
            start: at - at.rem_euclid(86_400_000),
            end: at - at.rem_euclid(86_400_000) + 86_400_000,
        };
        let Ok(ts) = jiff::Timestamp::from_millisecond(at) else {
            return fallback;
        };
        let zoned = ts.to_zoned(self.zone.clone());
        let (Ok(start), Ok(next)) = (zoned.start_of_day(), zoned.tomorrow()) else {
            return fallback;
        };
        match next.start_of_day() {
            Ok(end) => Day {
                start: start.timestamp().as_millisecond(),
                end: end.timestamp().as_millisecond(),
            },
            Err(_) => fallback,
        }
    }

    /// Today's range (for seeding from the records database).
    pub fn today(&self, now: Timestamp) -> TimeRange {
        let d = self.day_of(ms(now));
        TimeRange {
            from: d.start,
            to: d.end,
        }
    }

    /// Starts a new day when `at` is past the current one. Earlier instants
    /// (a record from before midnight arriving late) leave the day alone.
    fn roll(&mut self, at: i64) {
        if self.day.is_some_and(|d| at < d.end) {
            return;
        }
        self.day = Some(self.day_of(at));
        self.figures.clear();
        self.seen.clear();
        // Calls still waiting or talking stay tracked (their handle time is
        // real) but no longer count: they entered before the day began.
        self.seen.extend(self.calls.keys().cloned());
    }

    /// The interval of `at` today; `None` outside today.
    fn slot(&self, at: i64) -> Option<usize> {
        let d = self.day?;
        (d.start..d.end)
            .contains(&at)
            .then(|| usize::try_from((at - d.start) / self.interval_ms).unwrap_or(0))
    }

    /// The figures `queue` has for the interval of `at`, if `at` is today.
    fn cell(&mut self, queue: &QueueId, at: i64) -> Option<&mut Figures> {
        let slot = self.slot(at)?;
        let row = self.figures.entry(queue.clone()).or_default();
        if row.len() <= slot {
            row.resize(slot + 1, Figures::default());
        }
        row.get_mut(slot)
    }

    fn target(&self, queue: &QueueId) -> ServiceLevel {
        self.targets.get(queue).copied().unwrap_or_default()
    }

    /// Counts one committed record.
    pub fn apply(&mut self, rec: &EventRecord) {
        let at = ms(rec.at);
        self.roll(at);
        match &rec.event {
            Event::CallQueued {
                call,
                queue,
                enqueued_at,
                ..
            } => self.queued(call, queue, ms(*enqueued_at)),
            Event::CallConnected { call, .. } => self.connected(call, at),
            Event::CallAbandoned { call, .. } => {
                if let Some(t) = self.calls.remove(call).filter(|t| t.connected.is_none()) {
                    if let Some(f) = self.cell(&t.queue, t.entered) {
                        f.abandoned += 1;
                    }
                }
            }
            Event::CallTimedOut { call, .. } => {
                self.calls.remove(call);
            }
            Event::CallOverflowed { call, action, .. } => match action {
                OverflowAction::Queue(to) => self.moved(call, to, at),
                _ => {
                    self.calls.remove(call);
                }
            },
            Event::CallEnded { call, agent, .. } => self.ended(call, agent, at),
            Event::CallTransferred {
                call,
                from_agent,
                target,
                ..
            } => self.transferred(call, from_agent, target, at),
            Event::CallbackRequested { call, record } => self.callback(call, &record.queue, at),
            Event::CallbackAttemptFailed {
                call,
                retry_at: None,
                ..
            } => {
                self.calls.remove(call);
            }
            Event::AgentStateChanged { agent, state, .. }
                if !matches!(state, AgentState::WrapUp { .. }) =>
            {
                self.wrap_ended(agent, at)
            }
            Event::AgentLoggedOut { agent } | Event::AgentLoggedIn { agent, .. } => {
                self.wrap_ended(agent, at)
            }
            Event::ConfigChanged { config, .. } => self.set_targets(config),
            _ => {}
        }
    }

    fn queued(&mut self, call: &CallId, queue: &QueueId, since: i64) {
        if !self.seen.insert(call.clone()) {
            return;
        }
        self.calls.insert(
            call.clone(),
            Track {
                queue: queue.clone(),
                entered: since,
                since,
                connected: None,
            },
        );
        if let Some(f) = self.cell(queue, since) {
            f.offered += 1;
        }
    }

    fn connected(&mut self, call: &CallId, at: i64) {
        let Some(t) = self.calls.get_mut(call).filter(|t| t.connected.is_none()) else {
            return;
        };
        t.connected = Some(at);
        let (queue, entered, waited) = (t.queue.clone(), t.entered, at - t.since);
        let within = waited <= i64::try_from(self.target(&queue).within_ms).unwrap_or(i64::MAX);
        if let Some(f) = self.cell(&queue, entered) {
            f.answered += 1;
            f.answered_in_sl += u64::from(within);
        }
    }

    fn ended(&mut self, call: &CallId, agent: &AgentId, at: i64) {
        if self.talk_ended(call, agent, at) {
            self.calls.remove(call);
        }
    }

    /// The agent's part ends; the call waits again (in `target`'s queue).
    fn transferred(&mut self, call: &CallId, agent: &AgentId, target: &TransferTarget, at: i64) {
        if !self.talk_ended(call, agent, at) {
            return;
        }
        if let Some(t) = self.calls.get_mut(call) {
            t.connected = None;
        }
        if let TransferTarget::Queue(q) = target {
            self.moved(call, q, at);
        }
    }

    /// A waiting call enters `to` (overflow, transfer, callback moved).
    fn moved(&mut self, call: &CallId, to: &QueueId, at: i64) {
        let Some(t) = self.calls.get_mut(call).filter(|t| t.connected.is_none()) else {
            return;
        };
        if t.queue == *to {
            return;
        }
        t.queue = to.clone();
        t.entered = at;
        if let Some(f) = self.cell(to, at) {
            f.offered += 1;
        }
    }

    /// Adds the talk time of `call` and starts `agent`'s wrap-up; false when
    /// the call was not connected (unknown, or a repeat).
    fn talk_ended(&mut self, call: &CallId, agent: &AgentId, at: i64) -> bool {
        let Some((queue, entered, from)) = self
            .calls
            .get(call)
            .and_then(|t| Some((t.queue.clone(), t.entered, t.connected?)))
        else {
            return false;
        };
        if let Some(f) = self.cell(&queue, entered) {
            f.handled += 1;
            f.handle_ms += u64::try_from(at - from).unwrap_or(0);
        }
        self.wraps.insert(
            agent.clone(),
            Wrap {
                queue,
                entered,
                from: at,
            },
        );
        true
    }

    fn wrap_ended(&mut self, agent: &AgentId, at: i64) {
        let Some(w) = self.wraps.remove(agent) else {
            return;
        };
        if let Some(f) = self.cell(&w.queue, w.entered) {
            f.handle_ms += u64::try_from(at - w.from).unwrap_or(0);
        }
    }

    /// The callback call `<call>:cb` waits in `queue`: the inbound call
    /// converted (when it was waiting), else a new call.
    fn callback(&mut self, call: &CallId, queue: &QueueId, at: i64) {
        let cb = callback_id(call);
        if !self.seen.insert(cb.clone()) {
            return;
        }
        match self.calls.remove(call).filter(|t| t.connected.is_none()) {
            Some(t) => {
                self.calls.insert(cb.clone(), t);
                self.moved(&cb, queue, at);
            }
            None => {
                self.seen.remove(&cb);
                self.queued(&cb, queue, at);
            }
        }
    }

    /// Counts what the records database holds for today (a distributor that
    /// restarted), skipping calls the live stream already brought.
    pub fn seed(&mut self, data: &Dataset, now: Timestamp) {
        self.roll(ms(now));
        for row in &data.calls {
            self.seed_call(row);
        }
    }

    fn seed_call(&mut self, row: &CallRow) {
        let Some(queued) = row.queued_at else {
            return;
        };
        let (Some(last), first) = (
            row.queue.clone().or(row.first_queue.clone()).map(QueueId),
            row.first_queue.clone().or(row.queue.clone()).map(QueueId),
        ) else {
            return;
        };
        let call = CallId(row.call_id.clone());
        if !self.seen.insert(call.clone()) {
            return;
        }
        let target = i64::try_from(self.target(&last).within_ms).unwrap_or(i64::MAX);
        let mut counts = Figures {
            offered: 1,
            ..Figures::default()
        };
        if let Some(answered) = row.answered_at {
            counts.answered = 1;
            counts.answered_in_sl = u64::from(answered - queued <= target);
        }
        counts.abandoned = u64::from(row.abandoned_at.is_some() && row.answered_at.is_none());
        if let (Some(answered), Some(ended)) = (row.answered_at, row.talk_ended_at) {
            counts.handled = 1;
            let wrap_end = row.wrap_ended_at.unwrap_or(ended);
            counts.handle_ms = u64::try_from(wrap_end - answered).unwrap_or(0);
            if let (None, Some(agent)) = (row.wrap_ended_at, &row.agent) {
                self.wraps.insert(
                    AgentId(agent.clone()),
                    Wrap {
                        queue: last.clone(),
                        entered: queued,
                        from: ended,
                    },
                );
            }
        }
        if let Some(first) = first.filter(|f| *f != last) {
            if let Some(f) = self.cell(&first, queued) {
                f.offered += 1;
            }
        }
        if let Some(f) = self.cell(&last, queued) {
            f.add(&counts);
        }
        let open =
            row.outcome == "waiting" || (row.outcome == "answered" && row.talk_ended_at.is_none());
        if open {
            self.calls.insert(
                call,
                Track {
                    queue: last,
                    entered: queued,
                    since: queued,
                    connected: row
                        .talk_ended_at
                        .is_none()
                        .then_some(row.answered_at)
                        .flatten(),
                },
            );
        }
    }

    /// The queue's figures today.
    pub fn today_of(&self, queue: &QueueId) -> Figures {
        let mut sum = Figures::default();
        for f in self.figures.get(queue).into_iter().flatten() {
            sum.add(f);
        }
        sum
    }

    /// The snapshot the page shows at `now`.
    pub fn view(&mut self, now: Timestamp, live: &Live) -> BoardView {
        let at = ms(now);
        self.roll(at);
        let day = self.day.unwrap_or_else(|| self.day_of(at));
        let current = self.slot(at).unwrap_or(0);
        let elapsed =
            (at - day.start - current as i64 * self.interval_ms) as f64 / self.interval_ms as f64;
        let queues: Vec<QueueTile> = live
            .queues
            .iter()
            .map(|q| self.tile(q, now, current, elapsed))
            .collect();
        let known: Vec<u32> = queues.iter().filter_map(|q| q.required).collect();
        BoardView {
            at_ms: now.0,
            day: self.label(day.start, "%Y-%m-%d"),
            time_zone: self.zone_name.clone(),
            interval_mins: self.interval_mins,
            role: live.role.clone(),
            queues,
            agents: live.agents,
            staffing: StaffingNow {
                interval: self.label(day.start + current as i64 * self.interval_ms, "%H:%M"),
                required: (!known.is_empty()).then(|| known.iter().sum()),
                logged_in: live.agents.logged_in(),
            },
            intervals: self.intervals(day, current, now),
        }
    }

    fn tile(&self, q: &QueueView, now: Timestamp, current: usize, elapsed: f64) -> QueueTile {
        let today = self.today_of(&q.id);
        let target = self.target(&q.id);
        let sl = today.sl_percent_settled(self.pending_within_target(Some(&q.id), None, now));
        QueueTile {
            id: q.id.0.clone(),
            waiting: q.waiting as u32,
            offering: q.offering as u32,
            longest_wait_since_ms: q.longest_wait_since.map_or(0, |t| t.0),
            longest_wait_secs: q.longest_wait_since.map_or(0, |t| now.ms_since(t) / 1000),
            agents_ready: q.agents_ready as u32,
            agents_logged_in: q.agents_logged_in as u32,
            offered: today.offered,
            answered: today.answered,
            abandoned: today.abandoned,
            answered_in_sl: today.answered_in_sl,
            sl_percent: sl,
            target_percent: target.percent,
            target_secs: target.within_ms / 1000,
            below_target: sl.is_some_and(|p| p < f64::from(target.percent)),
            aht_secs: today.aht_secs(),
            required: self.required(&q.id, today.aht_secs(), target, current, elapsed),
        }
    }

    /// Operators `queue` needs in the current interval: its traffic over the
    /// last interval's length (this interval's calls plus the previous one's
    /// share not yet elapsed) at today's handle time, by Erlang C.
    fn required(
        &self,
        queue: &QueueId,
        aht_secs: Option<f64>,
        target: ServiceLevel,
        current: usize,
        elapsed: f64,
    ) -> Option<u32> {
        let row = self.figures.get(queue);
        let offered = |i: usize| row.and_then(|r| r.get(i)).map_or(0, |f| f.offered) as f64;
        let previous = current.checked_sub(1).map_or(0.0, offered);
        let calls = offered(current) + previous * (1.0 - elapsed.clamp(0.0, 1.0));
        if calls <= 0.0 {
            return Some(0);
        }
        let aht = aht_secs?;
        Some(staffing::agents_needed_c(
            calls,
            self.interval_ms as f64 / 1000.0,
            aht,
            f64::from(target.percent) / 100.0,
            target.within_ms as f64 / 1000.0,
        ))
    }

    /// Calls still waiting (of `queue`, entered in interval `slot`) that have
    /// not yet waited past their queue's target.
    fn pending_within_target(
        &self,
        queue: Option<&QueueId>,
        slot: Option<usize>,
        now: Timestamp,
    ) -> u64 {
        let at = ms(now);
        let n = self
            .calls
            .values()
            .filter(|t| t.connected.is_none())
            .filter(|t| queue.is_none_or(|q| *q == t.queue))
            .filter(|t| slot.is_none_or(|s| self.slot(t.entered) == Some(s)))
            .filter(|t| {
                at - t.since <= i64::try_from(self.target(&t.queue).within_ms).unwrap_or(i64::MAX)
            })
            .count();
        n as u64
    }

    fn intervals(&self, day: Day, current: usize, now: Timestamp) -> Vec<IntervalPoint> {
        (0..=current)
            .map(|i| {
                let mut sum = Figures::default();
                for row in self.figures.values() {
                    if let Some(f) = row.get(i) {
                        sum.add(f);
                    }
                }
                let start = day.start + i as i64 * self.interval_ms;
                IntervalPoint {
                    start_ms: start,
                    label: self.label(start, "%H:%M"),
                    offered: sum.offered,
                    answered: sum.answered,
                    abandoned: sum.abandoned,
                    sl_percent: sum.sl_percent_settled(self.pending_within_target(
                        None,
                        Some(i),
                        now,
                    )),
                }
            })
            .collect()
    }

    fn label(&self, at: i64, format: &str) -> String {
        jiff::Timestamp::from_millisecond(at)
            .map(|ts| ts.to_zoned(self.zone.clone()).strftime(format).to_string())
            .unwrap_or_default()
    }
}

fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
