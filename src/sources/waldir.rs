//! Size of `pg_wal`, and the newest timeline of the WAL it holds:
//! `pg_ls_waldir()` (superuser or `pg_monitor`).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Extra, Scrape, Source};
use crate::family::{emit, Family, Scope, TARGET};

#[derive(Debug, Clone, Deserialize)]
pub struct WalDir {
    pub bytes: f64,
    pub files: f64,
    /// The highest timeline among the WAL segment files in `pg_wal`
    /// (`TTTTTTTTXXXXXXXXYYYYYYYY`): WAL this server received, restored
    /// from the archive or replayed on that timeline. It answers a
    /// standby's timeline when no WAL receiver says it. Timeline history
    /// files are left out on purpose: a standby pointed at a server that
    /// forked before its position fetches that server's `.history` file and
    /// stays on its own timeline, whereas segments of a timeline are only
    /// ever written by following it.
    #[serde(default)]
    pub timeline: Option<u32>,
}

/// `None` when the role may not list the directory: the family is then
/// absent (the collection loop warns once) instead of failing every cycle.
fn sql(caps: &Capabilities) -> Option<String> {
    caps.ls_waldir.then(|| {
        "SELECT json_build_object('bytes', coalesce(sum(size), 0), 'files', count(*), \
           'timeline', max(('x' || lpad(substr(name, 1, 8), 16, '0'))::bit(64)::bigint) \
             FILTER (WHERE name ~ '^[0-9A-F]{24}$')) \
         FROM pg_ls_waldir()"
            .to_string()
    })
}

const ALLOWED: (&str, &str) = (
    "when the role may run pg_ls_waldir() (pg_monitor or superuser)",
    "cuando el rol puede ejecutar pg_ls_waldir() (pg_monitor o superusuario)",
);

pub const WAL_DIRECTORY_BYTES: Family = Family::gauge(
    "pgrepl_wal_directory_bytes",
    "Total size of the files in pg_wal.",
    "Tamaño total de los archivos en pg_wal.",
    &[TARGET],
    Scope::Server,
)
.when(ALLOWED.0, ALLOWED.1);

pub const WAL_DIRECTORY_FILES: Family = Family::gauge(
    "pgrepl_wal_directory_files",
    "Number of files in pg_wal.",
    "Cantidad de archivos en pg_wal.",
    &[TARGET],
    Scope::Server,
)
.when(ALLOWED.0, ALLOWED.1);

pub const FAMILIES: &[Family] = &[WAL_DIRECTORY_BYTES, WAL_DIRECTORY_FILES];

impl Source for WalDir {
    type Rows = Option<WalDir>;
    const TITLE: [&'static str; 2] = ["The `pg_wal` directory", "El directorio `pg_wal`"];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        sql(caps)
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render(scrape, enc)
    }
}

fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let rows = || {
        scrape
            .servers()
            .filter_map(|u| Some((u.target, u.sample.waldir.as_ref()?)))
    };
    emit(
        enc,
        &WAL_DIRECTORY_BYTES,
        rows().map(|(t, w)| ([("target", t)], w.bytes)),
    )?;
    emit(
        enc,
        &WAL_DIRECTORY_FILES,
        rows().map(|(t, w)| ([("target", t)], w.files)),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::WalDir;
    use crate::sources::testing::{render, sample};

    #[test]
    fn the_wal_directory_renders_its_size_and_files() {
        let s = sample(json!({
            "server": {"in_recovery": false, "version": "15.18", "now": 0.0},
            "waldir": {"bytes": 50331986, "files": 4, "timeline": 1}
        }));
        let text = render::<WalDir>(&[("p", &s)]);
        for line in [
            r#"pgrepl_wal_directory_bytes{target="p"} 50331986.0"#,
            r#"pgrepl_wal_directory_files{target="p"} 4.0"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        // Without pg_ls_waldir() the fragment is not asked: no series.
        let hidden =
            sample(json!({"server": {"in_recovery": false, "version": "15.18", "now": 0.0}}));
        assert!(render::<WalDir>(&[("p", &hidden)]).is_empty());
    }
}
