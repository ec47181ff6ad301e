//! Reads a [`Dataset`] for a time range, one function per dialect; the
//! stores' [`crate::Store::load`] call these. The SQL is the same for both
//! but for the placeholders (`?1` in SQLite, `$1` in PostgreSQL).

use crate::rows::{AgentEventRow, CallEventRow, CallRow, Dataset, TimeRange};
use crate::store::StoreError;

const CALL_COLUMNS: &str = "call_id, arrived_at, left_at, did, caller_number, caller_name, flow, \
     ivr_steps, variables, first_queue, queue, priority, queued_at, first_offered_at, offers, \
     agent, answered_at, talk_ended_at, ended_by, wrap_ended_at, abandoned_at, waited_ms, \
     outcome, edge_outcome, overflow_action, transfers, callback_of, callback_requested_at, \
     survey_score";

/// Calls that arrived (or, without an edge note, queued) in the range.
fn calls_sql() -> String {
    format!(
        "SELECT {CALL_COLUMNS} FROM calls \
         WHERE COALESCE(arrived_at, queued_at) >= ?1 AND COALESCE(arrived_at, queued_at) < ?2 \
         ORDER BY COALESCE(arrived_at, queued_at), call_id"
    )
}

const CALL_EVENTS_SQL: &str =
    "SELECT seq, at, call_id, kind, queue, agent, detail FROM call_events \
     WHERE at >= ?1 AND at < ?2 ORDER BY at, seq, idx";

/// Changes in the range, plus each agent's last change before it (the
/// state the agent was in at `from`).
const AGENT_EVENTS_SQL: &str =
    "SELECT seq, at, idx, agent, state, reason, call_id FROM agent_events \
     WHERE at >= ?1 AND at < ?2 \
     UNION ALL \
     SELECT e.seq, e.at, e.idx, e.agent, e.state, e.reason, e.call_id FROM agent_events e \
     JOIN (SELECT agent, MAX(at) AS last_at FROM agent_events WHERE at < ?1 GROUP BY agent) b \
       ON e.agent = b.agent AND e.at = b.last_at \
     ORDER BY 2, 1, 3";

/// A row read by column position with `$get` (rusqlite's `get`, postgres's
/// `try_get`: the same shape, different traits, hence macros).
macro_rules! call_row {
    ($r:ident, $get:ident) => {
        CallRow {
            call_id: $r.$get(0)?,
            arrived_at: $r.$get(1)?,
            left_at: $r.$get(2)?,
            did: $r.$get(3)?,
            caller_number: $r.$get(4)?,
            caller_name: $r.$get(5)?,
            flow: $r.$get(6)?,
            ivr_steps: $r.$get(7)?,
            variables: $r.$get(8)?,
            first_queue: $r.$get(9)?,
            queue: $r.$get(10)?,
            priority: $r.$get(11)?,
            queued_at: $r.$get(12)?,
            first_offered_at: $r.$get(13)?,
            offers: $r.$get(14)?,
            agent: $r.$get(15)?,
            answered_at: $r.$get(16)?,
            talk_ended_at: $r.$get(17)?,
            ended_by: $r.$get(18)?,
            wrap_ended_at: $r.$get(19)?,
            abandoned_at: $r.$get(20)?,
            waited_ms: $r.$get(21)?,
            outcome: $r.$get(22)?,
            edge_outcome: $r.$get(23)?,
            overflow_action: $r.$get(24)?,
            transfers: $r.$get(25)?,
            callback_of: $r.$get(26)?,
            callback_requested_at: $r.$get(27)?,
            survey_score: $r.$get(28)?,
        }
    };
}

macro_rules! call_event_row {
    ($r:ident, $get:ident) => {
        CallEventRow {
            seq: $r.$get(0)?,
            at: $r.$get(1)?,
            call_id: $r.$get(2)?,
            kind: $r.$get(3)?,
            queue: $r.$get(4)?,
            agent: $r.$get(5)?,
            detail: $r.$get(6)?,
        }
    };
}

/// Column 2 is `idx`, read only for the order.
macro_rules! agent_event_row {
    ($r:ident, $get:ident) => {
        AgentEventRow {
            seq: $r.$get(0)?,
            at: $r.$get(1)?,
            agent: $r.$get(3)?,
            state: $r.$get(4)?,
            reason: $r.$get(5)?,
            call_id: $r.$get(6)?,
        }
    };
}

/// From SQLite.
pub fn sqlite(conn: &rusqlite::Connection, range: TimeRange) -> Result<Dataset, StoreError> {
    let args = rusqlite::params![range.from, range.to];
    let calls = query_sqlite(conn, &calls_sql(), args, |r| Ok(call_row!(r, get)))?;
    let call_events = query_sqlite(conn, CALL_EVENTS_SQL, args, |r| Ok(call_event_row!(r, get)))?;
    let agent_events = query_sqlite(conn, AGENT_EVENTS_SQL, args, |r| {
        Ok(agent_event_row!(r, get))
    })?;
    Ok(Dataset {
        range: Some(range),
        calls,
        call_events,
        agent_events,
    })
}

fn query_sqlite<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(sqlite_error)?;
    let rows = stmt.query_map(args, map).map_err(sqlite_error)?;
    rows.collect::<Result<Vec<T>, _>>().map_err(sqlite_error)
}

/// A busy or unopenable file is worth retrying; the rest is not.
fn sqlite_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked};
    match e.sqlite_error_code() {
        Some(CannotOpen | DatabaseBusy | DatabaseLocked) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Failed(e.to_string()),
    }
}

/// `?N` placeholders as PostgreSQL's `$N`.
fn pg(sql: &str) -> String {
    sql.replace("?1", "$1").replace("?2", "$2")
}

/// From PostgreSQL.
pub fn postgres(client: &mut postgres::Client, range: TimeRange) -> Result<Dataset, StoreError> {
    let args: [&(dyn postgres::types::ToSql + Sync); 2] = [&range.from, &range.to];
    let calls = client
        .query(&pg(&calls_sql()), &args)
        .map_err(pg_error)?
        .iter()
        .map(call_from_pg)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pg_error)?;
    let call_events = client
        .query(&pg(CALL_EVENTS_SQL), &args)
        .map_err(pg_error)?
        .iter()
        .map(|r| Ok(call_event_row!(r, try_get)))
        .collect::<Result<Vec<_>, postgres::Error>>()
        .map_err(pg_error)?;
    let agent_events = client
        .query(&pg(AGENT_EVENTS_SQL), &args)
        .map_err(pg_error)?
        .iter()
        .map(|r| Ok(agent_event_row!(r, try_get)))
        .collect::<Result<Vec<_>, postgres::Error>>()
        .map_err(pg_error)?;
    Ok(Dataset {
        range: Some(range),
        calls,
        call_events,
        agent_events,
    })
}

fn call_from_pg(r: &postgres::Row) -> Result<CallRow, postgres::Error> {
    Ok(call_row!(r, try_get))
}

/// A closed connection or an unreachable server is worth retrying.
fn pg_error(e: postgres::Error) -> StoreError {
    if e.is_closed() || e.as_db_error().is_none() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Failed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{MIGRATIONS, MIGRATIONS_TABLE};

    fn db() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(MIGRATIONS_TABLE).unwrap();
        for m in MIGRATIONS {
            c.execute_batch(m.sqlite).unwrap();
        }
        c
    }

    fn call(c: &rusqlite::Connection, id: &str, arrived: Option<i64>, queued: Option<i64>) {
        c.execute(
            "INSERT INTO calls (call_id, arrived_at, queued_at, queue, caller_number, survey_score)
             VALUES (?1, ?2, ?3, 'sales', '555', 4)",
            rusqlite::params![id, arrived, queued],
        )
        .unwrap();
    }

    fn agent_event(c: &rusqlite::Connection, seq: i64, at: i64, agent: &str, state: &str) {
        c.execute(
            "INSERT INTO agent_events (seq, at, idx, agent, state) VALUES (?1, ?2, 0, ?3, ?4)",
            rusqlite::params![seq, at, agent, state],
        )
        .unwrap();
    }

    #[test]
    fn loads_calls_by_arrival_else_queueing_and_agents_state_at_from() {
        let c = db();
        call(&c, "before", Some(999), Some(1_500));
        call(&c, "a", Some(1_000), Some(1_100));
        call(&c, "queued-only", None, Some(1_200));
        call(&c, "at-end", Some(2_000), None);
        c.execute(
            "INSERT INTO call_events (seq, at, idx, call_id, kind) VALUES (1, 1000, 0, 'a', 'arrived'),
             (2, 2500, 0, 'a', 'left')",
            [],
        )
        .unwrap();
        agent_event(&c, 1, 100, "alice", "ready");
        agent_event(&c, 2, 200, "alice", "not_ready");
        agent_event(&c, 3, 300, "bob", "ready");
        agent_event(&c, 4, 1_500, "alice", "ready");
        agent_event(&c, 5, 2_500, "bob", "logged_out");

        let d = sqlite(
            &c,
            TimeRange {
                from: 1_000,
                to: 2_000,
            },
        )
        .unwrap();
        let ids: Vec<&str> = d.calls.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(ids, ["a", "queued-only"]);
        assert_eq!(d.calls[0].survey_score, Some(4));
        assert_eq!(d.calls[0].queue.as_deref(), Some("sales"));
        assert_eq!(d.call_events.len(), 1);
        let evs: Vec<(i64, &str, &str)> = d
            .agent_events
            .iter()
            .map(|e| (e.at, e.agent.as_str(), e.state.as_str()))
            .collect();
        // alice's last change before `from` was not_ready; bob's ready.
        assert_eq!(
            evs,
            [
                (200, "alice", "not_ready"),
                (300, "bob", "ready"),
                (1_500, "alice", "ready")
            ]
        );
    }

    #[test]
    fn a_missing_table_is_an_error_not_a_panic() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let e = sqlite(&c, TimeRange { from: 0, to: 1 }).unwrap_err();
        assert!(matches!(e, StoreError::Failed(_)), "{e:?}");
    }
}
