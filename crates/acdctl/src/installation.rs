//! `acdctl status` over a whole installation: every listed process is
//! asked `AdminService.Status` at once, one row per process. A process that
//! does not answer is a row saying so; the command fails (exit 1) if any is
//! down or not ready, so a script can wait on it:
//! `until acdctl status --server A,B,C; do sleep 1; done`.

use std::time::Duration;

use acd_proto::v1::admin_service_client::AdminServiceClient;
use acd_proto::v1::{StatusRequest, StatusResponse};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::output::{self, or_dash};

/// Per process: a dead host must not stall the whole report.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// `a:1,http://b:2` → `["http://a:1", "http://b:2"]`: commas (or
/// whitespace) separate; a bare `host:port` means `http://host:port`.
pub fn parse_server_list(s: &str) -> Result<Vec<String>, String> {
    let urls: Vec<String> = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|u| !u.is_empty())
        .map(crate::parse_server)
        .collect::<Result<_, _>>()?;
    if urls.is_empty() {
        return Err(format!("no server address in {s:?}"));
    }
    Ok(urls)
}

/// An installation file: one gRPC address per line (or several, comma
/// separated); `#` starts a comment.
pub fn parse_installation(text: &str) -> Result<Vec<String>, String> {
    // The rolling-restart file (`[[process]]` tables) lists the same processes.
    if text.contains("[[process]]") {
        let inst: crate::rolling::Installation =
            toml_edit::de::from_str(text).map_err(|e| e.to_string())?;
        return Ok(inst.processes.into_iter().map(|p| p.admin).collect());
    }
    let body: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    parse_server_list(&body.join(","))
}

/// One process's answer, or why there was none.
pub struct Row {
    pub address: String,
    pub answer: Result<StatusResponse, String>,
}

impl Row {
    /// Answered and ready. A process older than the `ready` field answers
    /// `false` and is reported not ready: upgrade it.
    pub fn healthy(&self) -> bool {
        self.answer.as_ref().is_ok_and(|s| s.ready)
    }
}

pub async fn status(servers: &[String], json: bool) -> Result<()> {
    let rows = futures_join(servers).await;
    if json {
        for v in rows_json(&rows) {
            output::print(&v.to_string())?;
        }
    } else {
        output::print(&table(&rows))?;
    }
    let unhealthy = rows.iter().filter(|r| !r.healthy()).count();
    if unhealthy > 0 {
        bail!("{unhealthy} of {} processes down or not ready", rows.len());
    }
    Ok(())
}

/// Asks every server at once; rows keep the order given.
async fn futures_join(servers: &[String]) -> Vec<Row> {
    let tasks: Vec<_> = servers
        .iter()
        .map(|url| {
            let url = url.clone();
            tokio::spawn(async move { ask(&url).await })
        })
        .collect();
    let mut rows = Vec::with_capacity(tasks.len());
    for (url, task) in servers.iter().zip(tasks) {
        let answer = match task.await {
            Ok(answer) => answer,
            Err(e) => Err(format!("internal: {e}")),
        };
        rows.push(Row {
            address: url.clone(),
            answer,
        });
    }
    rows
}

async fn ask(url: &str) -> Result<StatusResponse, String> {
    let fut = async {
        let channel = acd_proto::client::site_endpoint(url)?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let channel = acd_proto::client::site_authed(channel);
        let mut req = tonic::Request::new(StatusRequest {});
        req.set_timeout(CALL_TIMEOUT);
        let resp = AdminServiceClient::new(channel).status(req).await?;
        anyhow::Ok(resp.into_inner())
    };
    match tokio::time::timeout(CONNECT_TIMEOUT + CALL_TIMEOUT, fut).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(match e.downcast_ref::<tonic::Status>() {
            Some(st) => format!("{}: {}", output::code_name(st.code()), st.message()),
            None => crate::chain(e.as_ref()),
        }),
        Err(_) => Err("no answer in time".into()),
    }
}

const HEADERS: [&str; 7] = [
    "ADDRESS",
    "ROLES",
    "VERSION",
    "READY",
    "DISTRIBUTOR",
    "EDGE",
    "NOTE",
];

pub fn table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(row_cells).collect();
    output::table(&HEADERS, &cells)
}

fn row_cells(row: &Row) -> Vec<String> {
    let s = match &row.answer {
        Ok(s) => s,
        Err(e) => {
            let mut cells = vec![row.address.clone(), "-".into(), "-".into(), "DOWN".into()];
            cells.extend(["-".into(), "-".into(), e.clone()]);
            return cells;
        }
    };
    let ready = if s.ready { "yes" } else { "no" };
    let distributor = s.distributor.as_ref().map_or("-".to_string(), |d| {
        let mut text = format!("{} term={} seq={}", or_dash(&d.role), d.term, d.last_seq);
        if d.role == "primary" {
            text.push_str(&format!(
                " followers={} lag={}",
                d.followers, d.replication_lag
            ));
        }
        if !d.leader.is_empty() {
            text.push_str(&format!(" leader={}", d.leader));
        }
        text
    });
    let edge = s.edge.as_ref().map_or("-".to_string(), |e| {
        let mut text = format!("calls={} regs={}", e.active_calls, e.registrations);
        if s.draining {
            text.push_str(" draining");
        }
        if !e.distributor_connected {
            text.push_str(" no-distributor");
        }
        text
    });
    let note = if s.waiting_for.is_empty() {
        "-".to_string()
    } else {
        format!("waiting for {}", s.waiting_for)
    };
    vec![
        row.address.clone(),
        or_dash(&s.roles.join(",")),
        or_dash(&s.version),
        ready.into(),
        distributor,
        edge,
        note,
    ]
}

/// One JSON object per process, one per line.
pub fn rows_json(rows: &[Row]) -> Vec<Value> {
    rows.iter()
        .map(|row| match &row.answer {
            Ok(s) => {
                let mut v = output::status_json(s);
                v["address"] = json!(row.address);
                v["up"] = json!(true);
                v["ready"] = json!(s.ready);
                v["waiting_for"] = json!(s.waiting_for);
                v
            }
            Err(e) => json!({
                "address": row.address,
                "up": false,
                "ready": false,
                "error": e,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rolling_restart_file_is_an_installation_too() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/installation.example.toml"
        ))
        .unwrap();
        let servers = parse_installation(&text).unwrap();
        assert_eq!(servers.len(), 6);
        assert_eq!(servers[0], "http://10.0.0.11:50061");
    }
    use acd_proto::v1::{DistributorStatus, EdgeStatus};

    #[test]
    fn server_lists() {
        assert_eq!(
            parse_server_list("a:1,http://b:2").unwrap(),
            ["http://a:1", "http://b:2"]
        );
        assert_eq!(
            parse_server_list(" a:1 , ,b:2 ").unwrap(),
            ["http://a:1", "http://b:2"]
        );
        assert!(parse_server_list(" , ").is_err());
        let file = "# site A\n10.0.0.1:50051  # primary\n10.0.0.2:50051\n\nhttp://10.0.0.3:50071,10.0.0.4:50071\n";
        assert_eq!(
            parse_installation(file).unwrap(),
            [
                "http://10.0.0.1:50051",
                "http://10.0.0.2:50051",
                "http://10.0.0.3:50071",
                "http://10.0.0.4:50071"
            ]
        );
    }

    fn rows() -> Vec<Row> {
        vec![
            Row {
                address: "http://d:1".into(),
                answer: Ok(StatusResponse {
                    roles: vec!["distributor".into()],
                    version: "0.1.0".into(),
                    ready: true,
                    distributor: Some(DistributorStatus {
                        role: "primary".into(),
                        term: 3,
                        last_seq: 42,
                        followers: 1,
                        replication_lag: 2,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            Row {
                address: "http://e:2".into(),
                answer: Ok(StatusResponse {
                    roles: vec!["edge".into()],
                    version: "0.1.0".into(),
                    ready: false,
                    waiting_for: "a distributor".into(),
                    draining: true,
                    edge: Some(EdgeStatus {
                        active_calls: 4,
                        registrations: 2,
                        distributor_connected: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            Row {
                address: "http://x:3".into(),
                answer: Err("cannot reach http://x:3: connection refused".into()),
            },
        ]
    }

    #[test]
    fn one_row_per_process() {
        let t = table(&rows());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("ADDRESS"), "{t}");
        assert!(
            lines[1].contains("primary term=3 seq=42 followers=1 lag=2"),
            "{t}"
        );
        assert!(lines[1].contains(" yes "), "{t}");
        assert!(lines[2].contains("calls=4 regs=2 draining"), "{t}");
        assert!(lines[2].contains("waiting for a distributor"), "{t}");
        assert!(
            lines[3].contains("DOWN") && lines[3].contains("connection refused"),
            "{t}"
        );
        let healthy: Vec<bool> = rows().iter().map(Row::healthy).collect();
        assert_eq!(healthy, [true, false, false]);
    }

    #[test]
    fn json_rows() {
        let v = rows_json(&rows());
        assert_eq!(v.len(), 3);
        assert_eq!(v[0]["address"], "http://d:1");
        assert_eq!(v[0]["up"], true);
        assert_eq!(v[0]["distributor"]["term"], 3);
        assert_eq!(v[1]["waiting_for"], "a distributor");
        assert_eq!(v[1]["draining"], true);
        assert_eq!(v[2]["up"], false);
        assert!(v[2]["error"].as_str().unwrap().contains("refused"));
    }
}
