//! The `mijia` binary: parse, validate, run, and map the outcome to an
//! exit code — in exactly one place (see [`mijia::error`] for the table).

use std::process::ExitCode;

use clap::Parser;
use mijia::cli::{self, Cli};
use mijia::{Error, ExitKind};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print to stdout, succeed.
            let _ = e.print();
            return exit(ExitKind::Ok);
        }
        Err(e) => {
            // Argument syntax errors: clap's first line, one line like
            // every other error.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .trim_start()
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("error: {first}; run `mijia --help` for usage");
            return exit(ExitKind::Usage);
        }
    };
    init_tracing(cli.global.verbose);
    match run(&cli) {
        Ok(()) => exit(ExitKind::Ok),
        Err(e) => {
            let one_line = e.to_string().replace('\n', " ");
            eprintln!("error: {one_line}");
            exit(e.exit_kind())
        }
    }
}

fn run(cli: &Cli) -> Result<(), Error> {
    let plan = cli::plan(cli)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "cannot start the async runtime".into(),
            source,
        })?;
    runtime.block_on(cli::execute(plan))
}

fn exit(kind: ExitKind) -> ExitCode {
    ExitCode::from(kind.code())
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "warn,mijia=debug,mijia_proto=debug",
        _ => "warn,mijia=trace,mijia_proto=trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
