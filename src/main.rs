//! The `pg_replication_exporter` binary: everything it does is in the
//! library, from the command line to the exit code (`app::main`).

fn main() -> std::process::ExitCode {
    pg_replication_exporter::main()
}
