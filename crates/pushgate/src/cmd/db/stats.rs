//! `pushgate db stats`.

use std::process::ExitCode;

use pushgate_store::Maintenance;
use time::format_description::well_known::Rfc3339;

/// Prints the database's size and one line per table.
pub async fn run(db: &dyn Maintenance, database: &str) -> anyhow::Result<ExitCode> {
    let stats = db.stats().await?;
    println!("database: {database}");
    println!("size: {}", bytes(stats.bytes));
    if let Some(wal) = stats.wal_bytes {
        println!("write-ahead log: {}", bytes(wal));
    }
    if let Some(free) = stats.free_bytes {
        println!("free for reuse: {}", bytes(free));
    }
    println!();
    println!("{:<24} {:>12} {:>12}  oldest row", "table", "rows", "size");
    for table in &stats.tables {
        println!(
            "{:<24} {:>12} {:>12}  {}",
            table.name,
            table.rows,
            table.bytes.map(bytes).unwrap_or_else(|| "-".into()),
            table
                .oldest
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A byte count the way people read it.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
