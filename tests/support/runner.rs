//! The tiny runner: scenarios run concurrently (or one by one), each reported alone.

use super::*;

pub type Scenario = (
    &'static str,
    Box<dyn FnOnce(Api) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>,
);

#[macro_export]
macro_rules! scenario {
    ($f:ident) => {
        (
            stringify!($f),
            Box::new(|api| {
                Box::pin($f(api)) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }) as Box<dyn FnOnce(_) -> _ + Send>,
        )
    };
}

/// How many scenarios ran and how many of them failed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub ran: usize,
    pub failed: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.ran += other.ran;
        self.failed += other.failed;
    }
}

impl Tally {
    /// Prints the closing line and ends the process, non-zero when anything failed.
    pub fn finish(self) -> ! {
        println!("\n{}", spec::summary());
        println!(
            "\n{} passed, {} failed",
            self.ran - self.failed,
            self.failed
        );
        std::process::exit(i32::from(self.failed > 0))
    }
}

/// The names given after `--` on the command line: a scenario runs when its name contains
/// one of them (as libtest filters), every scenario when none is given. Flags (`-…`) are
/// ignored.
fn name_filters() -> &'static [String] {
    static FILTERS: OnceLock<Vec<String>> = OnceLock::new();
    FILTERS.get_or_init(|| {
        std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect()
    })
}

/// Whether the command line asks for the scenario `name`.
pub fn wanted(name: &str) -> bool {
    let filters = name_filters();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// Runs the scenarios the command line asks for ([`wanted`]) concurrently (or one by one),
/// prints one line per scenario and returns how many ran and failed. A panicking scenario
/// fails alone.
pub async fn run_all(api: &Api, scenarios: Vec<Scenario>, concurrently: bool) -> Tally {
    let given = scenarios.len();
    let scenarios: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .collect();
    if scenarios.len() < given {
        println!(
            "{} of {given} scenarios filtered out by name",
            given - scenarios.len()
        );
    }
    let mut tally = Tally {
        ran: scenarios.len(),
        failed: 0,
    };
    let mut handles = Vec::new();
    for (name, body) in scenarios {
        let api = api.clone();
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            body(api).await;
            started.elapsed()
        });
        if concurrently {
            handles.push((name, handle));
        } else {
            tally.failed += report(name, handle.await);
        }
    }
    for (name, handle) in handles {
        tally.failed += report(name, handle.await);
    }
    tally
}

fn report(name: &str, outcome: Result<Duration, tokio::task::JoinError>) -> usize {
    match outcome {
        Ok(took) => {
            println!("test {name} ... ok ({:.1}s)", took.as_secs_f32());
            0
        }
        Err(e) => {
            let message = match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
                Err(e) => e.to_string(),
            };
            println!("test {name} ... FAILED\n    {message}");
            1
        }
    }
}
