//! `acdctl callbacks`: the callback requests the distributor keeps.

use std::collections::BTreeMap;

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{CallbackRequest, ListCallbacksRequest};
use anyhow::Result;
use serde_json::{json, Value};

use crate::output;
use crate::request;
use crate::servers::Servers;

/// A table, or one JSON object per callback.
pub async fn list(servers: &mut Servers, json: bool) -> Result<()> {
    let callbacks = servers
        .call(|ch| async move {
            AdminServiceClient::new(ch)
                .list_callbacks(request(ListCallbacksRequest {}))
                .await
        })
        .await?
        .into_inner()
        .callbacks;
    if json {
        for c in &callbacks {
            output::print(&callback_json(c).to_string())?;
        }
    } else {
        output::print(&callbacks_table(&callbacks))?;
    }
    Ok(())
}

fn callback_json(c: &CallbackRequest) -> Value {
    json!({
        "call_id": c.call_id,
        "queue_id": c.queue_id,
        "number": c.number,
        "priority": c.priority,
        "voicemail": c.voicemail,
        "requested_at_ms": c.requested_at_ms,
        "caller": c.caller.as_ref().map(output::caller_json).unwrap_or(Value::Null),
    })
}

fn callbacks_table(callbacks: &[CallbackRequest]) -> String {
    let rows: Vec<Vec<String>> = callbacks
        .iter()
        .map(|c| {
            // Sorted, so the output is stable.
            let data: BTreeMap<&String, &String> = c
                .caller
                .as_ref()
                .map(|cl| cl.variables.iter().collect())
                .unwrap_or_default();
            let data: Vec<String> = data.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                c.queue_id.clone(),
                c.number.clone(),
                c.priority.to_string(),
                output::or_dash(&c.voicemail),
                utc(c.requested_at_ms),
                c.call_id.clone(),
                output::or_dash(&data.join(",")),
            ]
        })
        .collect();
    output::table(
        &[
            "QUEUE",
            "NUMBER",
            "PRIO",
            "VOICEMAIL",
            "REQUESTED",
            "CALL",
            "DATA",
        ],
        &rows,
    )
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS` UTC (days to civil date: H. Hinnant's algorithm).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_proto::v1::Caller;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_800_000_000_123), "2027-01-15 08:00:00");
    }

    #[test]
    fn table_and_json_shapes() {
        let c = CallbackRequest {
            call_id: "c1".into(),
            queue_id: "support".into(),
            number: "+15551234".into(),
            priority: 2,
            caller: Some(Caller {
                variables: [("lang".to_string(), "ru".to_string())].into(),
                ..Caller::default()
            }),
            voicemail: "c1-3.wav".into(),
            requested_at_ms: 0,
        };
        let t = callbacks_table(std::slice::from_ref(&c));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("QUEUE"));
        assert!(lines[1].contains("+15551234"));
        assert!(lines[1].contains("c1-3.wav"));
        assert!(lines[1].contains("1970-01-01 00:00:00"));
        assert!(lines[1].ends_with("lang=ru"));
        let j = callback_json(&c);
        assert_eq!(j["number"], "+15551234");
        assert_eq!(j["caller"]["variables"]["lang"], "ru");
    }
}
