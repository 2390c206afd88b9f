//! `rmq-null-broker`: a name server and broker on one port that answers routes,
//! heartbeats, unregisters and sends at once, for measuring a client's own cost
//! (see `rmq_testkit::null_broker`).
//!
//! ```text
//! rmq-null-broker [--listen ADDR] [--queues N] [--stats-every SECS]
//! ```
//!
//! Prints `listening on ADDR` on stdout once bound (ADDR is the name server
//! address to give clients), then serves on one thread until killed. With
//! `--stats-every`, prints the counts so far on stderr every SECS seconds.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use rmq_testkit::null_broker::{NullBroker, NullBrokerConfig};

struct Args {
    listen: String,
    queues: u32,
    stats_every: Option<Duration>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:0".to_owned(),
        queues: 8,
        stats_every: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(
                "usage: rmq-null-broker [--listen ADDR] [--queues N] [--stats-every SECS]"
                    .to_owned(),
            );
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value,
            "--queues" => {
                args.queues = value
                    .parse()
                    .ok()
                    .filter(|q| *q > 0)
                    .ok_or_else(|| format!("--queues {value}: expected a positive integer"))?;
            }
            "--stats-every" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("--stats-every {value}: expected whole seconds"))?;
                args.stats_every = Some(Duration::from_secs(secs.max(1)));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rmq-null-broker: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rmq-null-broker: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let config = NullBrokerConfig {
            queues: args.queues,
            ..NullBrokerConfig::default()
        };
        let broker = match NullBroker::start_with(args.listen.as_str(), config).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("rmq-null-broker: cannot listen on {}: {e}", args.listen);
                return ExitCode::from(2);
            }
        };
        println!("listening on {}", broker.addr());
        let _ = std::io::stdout().flush();
        match args.stats_every {
            Some(every) => loop {
                tokio::time::sleep(every).await;
                eprintln!("rmq-null-broker: {:?}", broker.stats());
            },
            None => std::future::pending::<ExitCode>().await,
        }
    })
}
