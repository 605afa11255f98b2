//! Finding the model a stage should use: the named tag in the given (or default) model store,
//! falling back to the model shipped in the repository's `models/` folder, so a fresh machine
//! without a trained model still runs.

use std::path::Path;
use std::sync::Arc;

use augur_core::{Error, ErrorKind};
use augur_model::{Model, ModelStore};

/// The tag a stage loads when none is configured (the user's store, else the shipped model).
pub use augur_model::SHIPPED_MODEL;

/// Loads `tag` (`name`, `name:latest`, `name:N` or `name@alias`) from `store` (default: the user's model
/// store), or from the shipped models when the store does not have it.
pub fn load(tag: &str, store: Option<&Path>) -> Result<Arc<Model>, Error> {
    let model_err = |e: augur_model::ModelError| {
        Error::new(ErrorKind::Model, format!("cannot load model {tag}")).with_source(e)
    };
    if let Some(dir) = store {
        let s = ModelStore::open(dir).map_err(model_err)?;
        return s.load(tag).map(Arc::new).map_err(|e| {
            model_err(e)
                .with_hint("train one with augur train, or list them with augur models list")
        });
    }
    if let Some(dir) = ModelStore::default_location()
        && let Ok(s) = ModelStore::open(dir)
        && let Ok(m) = s.load(tag)
    {
        return Ok(Arc::new(m));
    }
    let shipped = ModelStore::open(augur_model::shipped_models_dir()).map_err(model_err)?;
    shipped.load(tag).map(Arc::new).map_err(|e| {
        model_err(e).with_hint(
            "train one with augur train --data data/ford.csv --name ford-price, or pass --store",
        )
    })
}
