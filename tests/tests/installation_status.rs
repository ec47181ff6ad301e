//! `acdctl status` over an installation: one row per process, a process
//! that does not answer is a row saying so, and the exit code tells a
//! script whether everything is up and ready.

use acd_tests::{acdctl, TestEnv};
use serde_json::Value;

#[tokio::test]
async fn status_over_three_processes_with_one_down() {
    let env = TestEnv::new("installation_status", 80);
    let distributor = env.start_distributor("distributor", 0, None).await.unwrap();
    let ivr = env.start_ivr("ivr", 1).await.unwrap();
    // Slot 2 of the block: nothing listens there.
    let down = format!("http://127.0.0.1:{}", env.ports.grpc(2));
    let (d, i) = (distributor.grpc_url(), ivr.grpc_url());
    let all = format!("{d},{i},{down}");

    let out = acdctl(&d, &["status", "--server", &all]).await.unwrap();
    assert_eq!(out.code, Some(1), "one process is down: {out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "a header and one row per process:\n{}",
        out.stdout
    );
    let row = |url: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(url))
            .copied()
            .unwrap_or_default()
    };
    assert!(
        row(&d).contains("distributor") && row(&d).contains("primary term=1"),
        "{}",
        out.stdout
    );
    assert!(row(&d).contains(" yes "), "{}", out.stdout);
    assert!(
        row(&i).contains("ivr") && row(&i).contains(" yes "),
        "{}",
        out.stdout
    );
    assert!(row(&down).contains("DOWN"), "{}", out.stdout);
    assert!(out.stderr.contains("1 of 3"), "{}", out.stderr);

    // JSON: one object per process.
    let out = acdctl(&d, &["--json", "status", "--server", &all])
        .await
        .unwrap();
    assert_eq!(out.code, Some(1));
    let rows = out.json_lines().unwrap();
    let up: Vec<Option<bool>> = rows.iter().map(|r| r["up"].as_bool()).collect();
    assert_eq!(up, [Some(true), Some(true), Some(false)], "{rows:?}");
    assert_eq!(rows[0]["distributor"]["role"], Value::from("primary"));
    assert_eq!(rows[2]["address"], Value::from(down.as_str()));

    // Everything up: exit 0, from an installation file.
    let file = env.log_path("installation");
    std::fs::write(&file, format!("# the site\n{d}\n{i}  # IVR\n")).unwrap();
    let out = acdctl(
        &d,
        &["status", "--installation", &file.display().to_string()],
    )
    .await
    .unwrap();
    assert_eq!(out.code, Some(0), "every process up and ready: {out:?}");
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
}
