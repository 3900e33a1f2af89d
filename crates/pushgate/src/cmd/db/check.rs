//! `pushgate db check`.

use std::process::ExitCode;

use pushgate_store::Maintenance;

/// Prints the schema version and every problem; fails when the database is not healthy.
pub async fn run(db: &dyn Maintenance, database: &str) -> anyhow::Result<ExitCode> {
    let report = db.check().await?;
    println!("database: {database}");
    println!(
        "schema: version {} of {}{}",
        report.applied_version,
        report.latest_version,
        if report.applied_version < report.latest_version {
            " (behind: `pushgate serve` migrates it at start)"
        } else if report.applied_version > report.latest_version {
            " (newer than this pushgate: upgrade the binary)"
        } else {
            ""
        }
    );
    if report.problems.is_empty() {
        println!("integrity: ok");
    } else {
        println!("integrity: {} problem(s)", report.problems.len());
        for problem in &report.problems {
            println!("  {problem}");
        }
    }
    Ok(if report.is_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
