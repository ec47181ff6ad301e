//! Wires the distributor's wallboard into this process: its routes on the
//! metrics listener and, with `[records]`, today's figures seeded from the
//! records database (on a blocking thread; start-up never waits for it).

use std::sync::Arc;

use acd_config::Loaded;
use acd_distributor::wallboard::Wallboard;
use acd_distributor::Distributor;
use acd_records::board::BoardSettings;
use acd_records::Database;

use crate::http::Extra;

/// Starts following `d` and returns the `/wallboard` routes.
pub fn start(d: &Distributor, loaded: &Loaded) -> Extra {
    let settings = BoardSettings {
        interval_mins: loaded.config.staffing.interval_mins,
        time_zone: loaded.config.staffing.time_zone.clone(),
    };
    let wb = Wallboard::start(d, &settings);
    seed_from_records(&wb, loaded);
    let serve = wb.clone();
    Extra {
        prefix: "/wallboard",
        serve: Arc::new(move |method, path, stream| {
            let wb = serve.clone();
            Box::pin(async move { wb.serve(&method, &path, stream).await })
        }),
    }
}

fn seed_from_records(wb: &Wallboard, loaded: &Loaded) {
    let Some(records) = &loaded.config.records else {
        return;
    };
    let db = match Database::parse(&records.database, &loaded.base_dir()) {
        Ok(db) => db,
        Err(e) => {
            metrics::counter!("acd_wallboard_errors_total", "reason" => "seed").increment(1);
            tracing::warn!("wallboard: [records] database: {e}");
            return;
        }
    };
    // A first start has no database yet: nothing to seed from.
    if matches!(&db, Database::Sqlite(path) if !path.exists()) {
        return;
    }
    // Read-only: the records writer owns migrations.
    wb.seed_with(move |range| acd_records::query::open_and_load(&db, range));
}
