//! `pg_replication_exporter status`: collect once from every target, build
//! the view `/metrics` is rendered from, print its table (or JSON) and exit
//! with the code scripts act on (0 healthy, 1 degraded, 2 error).

use std::process::ExitCode;
use std::sync::Arc;

use super::cli::{fail, StatusOutput};
use crate::collect::pool;
use crate::collect::task::TargetCollector;
use crate::config::Config;
use crate::model::snapshot::{ReloadStatus, Store, TargetSnapshot};
use crate::model::view::View;
use crate::render::status;

/// Runs the command: one collection, one view, one report.
pub fn run(config: &Config, output: StatusOutput) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("starting the runtime: {e}")),
    };
    let snaps = match runtime.block_on(collect(config)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let view = View::build(
        snaps,
        &config.clusters,
        ReloadStatus {
            successful: true,
            last_success: 0.0,
        },
    );
    let report = status::report(&view);
    match output {
        StatusOutput::Json => match serde_json::to_string_pretty(&report) {
            #[allow(clippy::print_stdout)] // the command's output
            Ok(text) => println!("{text}"),
            Err(e) => return fail(format!("encoding the report: {e}")),
        },
        #[allow(clippy::print_stdout)] // the command's output
        StatusOutput::Table => print!("{}", status::render_table(&report, status::use_color())),
    }
    ExitCode::from(status::exit_code(&report))
}

/// Collects every target once, concurrently, under the usual deadline.
async fn collect(config: &Config) -> Result<Vec<Arc<TargetSnapshot>>, String> {
    let store = Arc::new(Store::new(
        config
            .targets
            .iter()
            .map(|t| {
                TargetSnapshot::initial(&t.name, t.cluster.as_deref())
                    .with_endpoint(t.dsn.endpoint())
            })
            .collect(),
        config.clusters.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (target, cell) in config.targets.iter().zip(store.cells()) {
        let pool = pool::build(target, config.collect_timeout)
            .map_err(|e| format!("target {:?}: {e}", target.name))?;
        let mut collector = TargetCollector::new(cell, target.clone(), pool, store.clone(), config);
        tasks.spawn(async move {
            collector.cycle().await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(store.all())
}
