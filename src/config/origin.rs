//! Where each value came from (the file, a `PGREPL_*` variable, a flag,
//! the built-in default), so that every error names it; and figment's
//! errors, worded without the value at fault (it may be a secret typed in
//! the wrong place).

use std::path::PathBuf;

use figment::Figment;

use super::{ConfigError, Overrides};

/// The names the providers carry in figment's metadata, so that the
/// origin of every value (and of every figment error) can be told.
pub(super) const FROM_DEFAULTS: &str = "built-in default";
pub(super) const FROM_FILE: &str = "config file";
pub(super) const FLAG_LISTEN_ADDRESS: &str = "--web.listen-address";
pub(super) const FLAG_TELEMETRY_PATH: &str = "--web.telemetry-path";

/// A provider under another name in figment's metadata.
pub(super) struct Named<P> {
    pub(super) name: &'static str,
    pub(super) inner: P,
}

impl<P: figment::Provider> figment::Provider for Named<P> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.name)
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.inner.data()
    }
}

/// Where a value came from. Every error names it: a `PGREPL_*` variable
/// silently overrides the file, so "collect_interval is out of range" alone
/// sends the operator to the wrong place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file given with `--config` (or `PGREPL_CONFIG`).
    File(PathBuf),
    /// An environment variable, by its name.
    Env(String),
    /// A command-line flag, by its name.
    Flag(&'static str),
    /// Not set anywhere: the built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Default => f.write_str("built-in default"),
        }
    }
}

impl Origin {
    /// `key (origin[, context])`: how an error names the value at fault,
    /// without the value. `context` adds e.g. `target "p"`.
    pub(super) fn at(&self, key: &str, context: &str) -> String {
        if context.is_empty() {
            format!("{key} ({self})")
        } else {
            format!("{key} ({self}, {context})")
        }
    }
}

/// The origin of what a figment value's metadata names; `key` is the
/// top-level key, for the variable's name.
pub(super) fn origin_of(
    metadata: Option<&figment::Metadata>,
    key: &str,
    overrides: &Overrides,
) -> Origin {
    let name = metadata.map(|m| m.name.as_ref()).unwrap_or("");
    if name == FROM_FILE {
        if let Some(path) = &overrides.config_file {
            return Origin::File(path.clone());
        }
    }
    if name.contains("environment") {
        let top = key.split('.').next().unwrap_or(key);
        return Origin::Env(format!("PGREPL_{}", top.to_ascii_uppercase()));
    }
    for flag in [FLAG_LISTEN_ADDRESS, FLAG_TELEMETRY_PATH] {
        if name == flag {
            return Origin::Flag(flag);
        }
    }
    Origin::Default
}

/// The origin of each top-level key of the merged layers.
pub(super) struct Origins {
    pub(super) listen_address: Origin,
    pub(super) telemetry_path: Origin,
    pub(super) collect_interval: Origin,
    pub(super) collect_timeout: Origin,
    pub(super) targets: Origin,
    pub(super) clusters: Origin,
}

impl Origins {
    pub(super) fn of(figment: &Figment, overrides: &Overrides) -> Origins {
        let find = |key: &str| origin_of(figment.find_metadata(key), key, overrides);
        Origins {
            listen_address: find("listen_address"),
            telemetry_path: find("telemetry_path"),
            collect_interval: find("collect_interval"),
            collect_timeout: find("collect_timeout"),
            targets: find("targets"),
            clusters: find("clusters"),
        }
    }
}

/// Where the fields of one target came from: the file (or a variable
/// holding the whole list), or the single-target variables.
pub(super) enum TargetOrigin {
    Listed(Origin),
    /// `PGREPL_DSN` or `DATA_SOURCE_NAME`, with `PGREPL_TARGET`,
    /// `PGREPL_PASSWORD_FILE` and `PGREPL_CLUSTER`.
    Single {
        dsn_var: &'static str,
    },
}

impl TargetOrigin {
    /// How an error names `field` of target number `i`.
    pub(super) fn at(&self, i: usize, field: &str, context: &str) -> String {
        match self {
            TargetOrigin::Listed(origin) => origin.at(&format!("targets[{i}].{field}"), context),
            TargetOrigin::Single { dsn_var } => {
                let var = match field {
                    "dsn" => *dsn_var,
                    "name" => "PGREPL_TARGET",
                    "password_file" => "PGREPL_PASSWORD_FILE",
                    "cluster" => "PGREPL_CLUSTER",
                    _ => *dsn_var,
                };
                Origin::Env(var.to_string()).at(field, context)
            }
        }
    }
}

/// The first figment error, worded without the offending value (it may be
/// a password typed in the wrong place): which key, from which source
/// (file, environment variable or flag), and what was expected.
pub(super) fn describe_figment(err: figment::Error, overrides: &Overrides) -> ConfigError {
    use figment::error::{Actual, Kind};
    let Some(first) = err.into_iter().next() else {
        return ConfigError::new("configuration: invalid");
    };
    let path: Vec<&str> = first
        .path
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "default")
        .collect();
    let key = path.join(".");
    let kind_of = |a: &Actual| -> &'static str {
        match a {
            Actual::Bool(_) => "a boolean",
            Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
            Actual::Float(_) => "a number",
            Actual::Char(_) | Actual::Str(_) => "a string",
            Actual::Bytes(_) => "bytes",
            Actual::Seq => "a list",
            Actual::Map => "a table",
            _ => "another type",
        }
    };
    let reason = match &first.kind {
        Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {}", kind_of(actual))
        }
        Kind::InvalidValue(_, expected) => format!("invalid value, expected {expected}"),
        Kind::InvalidLength(n, expected) => format!("{n} items, expected {expected}"),
        Kind::UnknownVariant(_, expected) => {
            format!("unknown value, expected one of {}", expected.join(", "))
        }
        Kind::UnknownField(field, expected) => {
            return unknown_key(&first, &path, field, expected, overrides);
        }
        Kind::MissingField(field) => format!("missing key {field}"),
        Kind::DuplicateField(field) => format!("duplicate key {field}"),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "number out of range".into(),
        Kind::Unsupported(actual) => format!("{} is not supported here", kind_of(actual)),
        Kind::UnsupportedKey(actual, expected) => {
            format!("{} cannot be a key, expected {expected}", kind_of(actual))
        }
        // Our own deserializers and serde's wording; none of them quote
        // the input.
        Kind::Message(m) => m.lines().next().unwrap_or("invalid").to_string(),
    };
    ConfigError::new(format!(
        "configuration: {}{}: {reason}",
        if key.is_empty() {
            "(top level)".to_string()
        } else {
            key.clone()
        },
        source_of(&first, overrides, Some(&key))
    ))
}

/// An unknown key, named only when it looks like one (see
/// [`printable_key`]), with the keys its table knows.
fn unknown_key(
    err: &figment::Error,
    path: &[&str],
    field: &str,
    expected: &[&str],
    overrides: &Overrides,
) -> ConfigError {
    let shown = printable_key(field);
    let parent = match path.split_last() {
        Some((last, parent)) if *last == field => parent.join("."),
        _ => path.join("."),
    };
    let known = if expected.is_empty() {
        String::new()
    } else {
        format!("; known keys: {}", expected.join(", "))
    };
    let (full, prefix) = if parent.is_empty() {
        (field.to_string(), String::new())
    } else {
        (format!("{parent}.{field}"), format!("{parent}."))
    };
    ConfigError::new(format!(
        "configuration: unknown key {prefix}{shown}{}{known}",
        source_of(err, overrides, Some(&full))
    ))
}

/// Where the faulty value came from, for the error message.
pub(super) fn source_of(err: &figment::Error, overrides: &Overrides, key: Option<&str>) -> String {
    let key = key.filter(|k| !k.is_empty());
    match origin_of(err.metadata.as_ref(), key.unwrap_or(""), overrides) {
        Origin::Env(_) if key.is_none() => " (a PGREPL_* environment variable)".into(),
        Origin::Default => String::new(),
        origin => format!(" ({origin})"),
    }
}

/// A key as typed, shown only when it looks like a key: an unknown "key"
/// may be a stray password on a line of its own.
pub(super) fn printable_key(key: &str) -> String {
    let plausible = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if plausible {
        key.to_string()
    } else {
        "(not shown: not a plausible key name)".to_string()
    }
}
