//! Loading the configuration: the layers merged (defaults, the file,
//! `PGREPL_*`, the flags), each value's origin noted, then everything
//! validated; the warnings found on the way are logged only once the
//! whole configuration is valid.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use super::layers::{defaults, read_config_file, RawConfig, ENV_NOT_FOR_FIGMENT};
use super::origin::{
    describe_figment, Named, Origins, FLAG_LISTEN_ADDRESS, FLAG_TELEMETRY_PATH, FROM_DEFAULTS,
    FROM_FILE,
};
use super::validate::validate;
use super::{Config, ConfigError, Overrides, PENDING_WARNINGS};

/// Loads and validates the configuration from the layers named in the module doc.
pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
    load_with_env(overrides, |key| std::env::var(key).ok())
}

/// As [`load`], with the single-target environment read through `env` so
/// tests need not touch the process environment.
pub fn load_with_env(
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    PENDING_WARNINGS.with(|w| w.borrow_mut().clear());
    let loaded = load_layers(overrides, env);
    let warnings = PENDING_WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    if loaded.is_ok() {
        for warning in warnings {
            tracing::warn!("{warning}");
        }
    }
    loaded
}

fn load_layers(
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Named {
        name: FROM_DEFAULTS,
        inner: Serialized::defaults(defaults()),
    });
    if let Some(path) = &overrides.config_file {
        let text = read_config_file(path)?;
        figment = figment.merge(Named {
            name: FROM_FILE,
            inner: Toml::string(&text),
        });
    }
    let ignored: Vec<&str> = ENV_NOT_FOR_FIGMENT.to_vec();
    figment = figment.merge(Env::prefixed("PGREPL_").ignore(&ignored));
    if let Some(v) = &overrides.listen_address {
        figment = figment.merge(Named {
            name: FLAG_LISTEN_ADDRESS,
            inner: Serialized::default("listen_address", v),
        });
    }
    if let Some(v) = &overrides.telemetry_path {
        figment = figment.merge(Named {
            name: FLAG_TELEMETRY_PATH,
            inner: Serialized::default("telemetry_path", v),
        });
    }
    let raw: RawConfig = figment
        .extract()
        .map_err(|e| describe_figment(e, overrides))?;
    let origins = Origins::of(&figment, overrides);
    validate(raw, &origins, overrides.config_file.as_deref(), env)
}
