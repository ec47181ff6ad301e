//! The SQL text of the projection's [`Op`]s, for both dialects. Statements are
//! generated from the op's shape (which columns, how they change), so the two
//! stores run the same logic and differ only in placeholders and types.

use crate::project::{Change, Op, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter. `I32` is for PostgreSQL `INTEGER` columns (`idx`),
/// which its driver does not fill from an `i64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    I64(i64),
    I32(i32),
    Text(String),
    OptText(Option<String>),
}

/// One statement with its parameters.
#[derive(Debug)]
pub(crate) struct Stmt {
    pub sql: String,
    pub params: Vec<Param>,
}

pub(crate) const INSERT_APPLIED: [&str; 2] = [
    "INSERT INTO applied_events (seq, at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    "INSERT INTO applied_events (seq, at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
];

pub(crate) const MAX_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";

/// Collects parameters and writes their placeholders.
struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Builder {
    fn new(dialect: Dialect) -> Builder {
        Builder {
            dialect,
            params: Vec::new(),
        }
    }

    /// Adds `p` and returns its placeholder; PostgreSQL gets a cast so an
    /// `i64` fits `INTEGER` columns too (assignment cast).
    fn bind(&mut self, p: Param) -> String {
        let cast = match (&p, self.dialect) {
            (_, Dialect::Sqlite) => "",
            (Param::I64(_), Dialect::Postgres) => "::BIGINT",
            (Param::I32(_), Dialect::Postgres) => "::INTEGER",
            (Param::Text(_) | Param::OptText(_), Dialect::Postgres) => "::TEXT",
        };
        self.params.push(p);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}{cast}"),
        }
    }

    fn value(&mut self, v: &Value) -> String {
        match v {
            Value::Null => "NULL".to_owned(),
            Value::Int(i) => self.bind(Param::I64(*i)),
            Value::Text(t) => self.bind(Param::Text(t.clone())),
        }
    }

    fn finish(self, sql: String) -> Stmt {
        Stmt {
            sql,
            params: self.params,
        }
    }
}

/// The statements that carry out `op`, in order.
pub(crate) fn statements(op: &Op, dialect: Dialect) -> Vec<Stmt> {
    match op {
        Op::Call {
            call_id,
            create,
            changes,
        } => {
            let mut out = Vec::with_capacity(2);
            if *create {
                let mut b = Builder::new(dialect);
                let id = b.bind(Param::Text(call_id.clone()));
                out.push(b.finish(format!(
                    "INSERT INTO calls (call_id) VALUES ({id}) ON CONFLICT (call_id) DO NOTHING"
                )));
            }
            if !changes.is_empty() {
                out.push(update_call(call_id, changes, dialect));
            }
            out
        }
        Op::CallEvent { idx, row } => {
            let mut b = Builder::new(dialect);
            let vals = [
                b.bind(Param::I64(row.seq)),
                b.bind(Param::I64(row.at)),
                b.bind(Param::I32(*idx)),
                b.bind(Param::Text(row.call_id.clone())),
                b.bind(Param::Text(row.kind.clone())),
                b.bind(Param::OptText(row.queue.clone())),
                b.bind(Param::OptText(row.agent.clone())),
                b.bind(Param::Text(row.detail.clone())),
            ]
            .join(", ");
            vec![b.finish(format!(
                "INSERT INTO call_events (seq, at, idx, call_id, kind, queue, agent, detail) VALUES ({vals})"
            ))]
        }
        Op::AgentEvent { idx, row } => {
            let mut b = Builder::new(dialect);
            let vals = [
                b.bind(Param::I64(row.seq)),
                b.bind(Param::I64(row.at)),
                b.bind(Param::I32(*idx)),
                b.bind(Param::Text(row.agent.clone())),
                b.bind(Param::Text(row.state.clone())),
                b.bind(Param::OptText(row.reason.clone())),
                b.bind(Param::OptText(row.call_id.clone())),
            ]
            .join(", ");
            vec![b.finish(format!(
                "INSERT INTO agent_events (seq, at, idx, agent, state, reason, call_id) VALUES ({vals})"
            ))]
        }
        Op::CloseWrapUp { agent, at } => {
            let mut b = Builder::new(dialect);
            let at = b.bind(Param::I64(*at));
            let agent = b.bind(Param::Text(agent.clone()));
            vec![b.finish(format!(
                "UPDATE calls SET wrap_ended_at = {at} WHERE agent = {agent} \
                 AND talk_ended_at IS NOT NULL AND wrap_ended_at IS NULL"
            ))]
        }
        Op::ReleaseRinging {
            call_id,
            seq,
            at,
            idx_from,
        } => {
            let mut b = Builder::new(dialect);
            let seq = b.bind(Param::I64(*seq));
            let at = b.bind(Param::I64(*at));
            let idx = b.bind(Param::I64(i64::from(*idx_from)));
            let call = b.bind(Param::Text(call_id.clone()));
            // Agents whose LAST state change is "reserved for this call".
            // `l.at >= e.at` on its own lets the (agent, at) index seek to
            // the later changes instead of scanning the agent's whole day.
            vec![b.finish(format!(
                "INSERT INTO agent_events (seq, at, idx, agent, state, reason, call_id) \
                 SELECT {seq}, {at}, {idx} + ROW_NUMBER() OVER (ORDER BY e.agent), e.agent, 'ready', NULL, NULL \
                 FROM agent_events e WHERE e.call_id = {call} AND e.state = 'reserved' \
                 AND NOT EXISTS (SELECT 1 FROM agent_events l WHERE l.agent = e.agent AND l.at >= e.at AND \
                 (l.at > e.at OR l.seq > e.seq OR (l.seq = e.seq AND l.idx > e.idx)))"
            ))]
        }
    }
}

fn update_call(call_id: &str, changes: &[Change], dialect: Dialect) -> Stmt {
    let mut b = Builder::new(dialect);
    let sets: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Set(col, v) => format!("{} = {}", col.name(), b.value(v)),
            Change::First(col, v) => {
                let n = col.name();
                format!("{n} = COALESCE({n}, {})", b.value(v))
            }
            Change::IfBlank(col, t) => {
                let n = col.name();
                let p = b.bind(Param::Text(t.clone()));
                format!("{n} = CASE WHEN {n} = '' THEN {p} ELSE {n} END")
            }
            Change::Increment(col) => {
                let n = col.name();
                format!("{n} = {n} + 1")
            }
        })
        .collect();
    let id = b.bind(Param::Text(call_id.to_owned()));
    b.finish(format!(
        "UPDATE calls SET {} WHERE call_id = {id}",
        sets.join(", ")
    ))
}
