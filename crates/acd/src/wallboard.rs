//! Wires the distributor's wallboard into this process: its routes on the
//! metrics listener and, with `[records]`, today's figures seeded from the
//! records database (on a blocking thread; start-up never waits for it).

use std::sync::Arc;

use acd_config::Loaded;
use acd_distributor::wallboard::Wallboard;
use acd_distributor::Distributor;
use acd_records::board::BoardSettings;
use acd_records::{Database, Store, StoreError};

use crate::http::Extra;

/// Starts following `d` and returns the `/wallboard` routes.
pub fn start(d: &Distributor, loaded: &Loaded) -> Extra {
    let settings = BoardSettings {
        interval_mins: loaded.config.staffing.interval_mins,
        time_zone: None,
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
    wb.seed_with(move |range| open_store(&db)?.load(range));
}

/// The records store. MERGE: replace the body with the records helper's
/// `acd_records::store::open(db)` (and drop this function).
fn open_store(db: &Database) -> Result<Box<dyn Store>, StoreError> {
    Err(StoreError::Unavailable(format!(
        "{}: opening a records store is not built yet",
        db.describe()
    )))
}
