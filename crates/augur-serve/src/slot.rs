//! The model slot: which model version is being served right now, swapped atomically on
//! promotion, and where models are loaded from ([`ModelSource`]).
//!
//! A request takes the current [`Served`] model when it is admitted and keeps that `Arc` until
//! it is answered, so a promotion never changes the model under a request: requests admitted
//! before it finish on the old version, later ones use the new one, and the old model is freed
//! when its last request is done.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::SystemTime;

use augur_core::{Error, ErrorKind};
use augur_model::{Model, ModelError, ModelSource as Provenance, ModelStore};
use axum::http::HeaderValue;

/// The response header naming the model version that answered, e.g. `ford-price:2`.
pub const MODEL_HEADER: &str = "x-augur-model";

/// Where the served model comes from; promotions by tag load from the same store.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A tag (`name`, `name:latest`, `name:N`) in a model store.
    Store {
        /// The store.
        store: ModelStore,
        /// The tag to serve.
        tag: String,
    },
    /// A model file (a store's `model.json` or an export); promotion by tag is not possible.
    File(PathBuf),
    /// A model already in memory (embedding, tests); promotion by tag is not possible.
    Loaded(Arc<Model>),
}

impl ModelSource {
    /// `tag` from `store`, or — when the store has no version of that name and the repository's
    /// shipped store (`models/`) has — from the shipped store. Returns whether it fell back.
    /// Nothing is loaded yet; a tag that exists nowhere is an error now, before listening.
    pub fn store_or_shipped(store: ModelStore, tag: &str) -> Result<(ModelSource, bool), Error> {
        match store.resolve(tag) {
            Ok(_) => Ok((
                ModelSource::Store {
                    store,
                    tag: tag.to_string(),
                },
                false,
            )),
            Err(ModelError::NotFound(_)) => {
                let shipped_dir = augur_model::shipped_models_dir();
                let shipped = ModelStore::open(&shipped_dir)
                    .ok()
                    .filter(|s| s.root() != store.root() && s.resolve(tag).is_ok());
                match shipped {
                    Some(s) => Ok((
                        ModelSource::Store {
                            store: s,
                            tag: tag.to_string(),
                        },
                        true,
                    )),
                    None => Err(Error::new(
                        ErrorKind::Model,
                        format!(
                            "model {tag} not found in the store {}",
                            store.root().display()
                        ),
                    )
                    .with_hint(
                        "train one with `augur train`, pass --store, or serve a file with \
                         --model-file",
                    )),
                }
            }
            Err(e) => Err(
                Error::new(ErrorKind::Model, format!("cannot resolve model {tag}")).with_source(e),
            ),
        }
    }

    /// The store promotions load from, if any.
    pub fn store(&self) -> Option<&ModelStore> {
        match self {
            ModelSource::Store { store, .. } => Some(store),
            _ => None,
        }
    }

    /// A short description for logs: the tag and store, or the file.
    pub fn describe(&self) -> String {
        match self {
            ModelSource::Store { store, tag } => format!("{tag} from {}", store.root().display()),
            ModelSource::File(p) => p.display().to_string(),
            ModelSource::Loaded(m) => format!("{} (in memory)", m.tag()),
        }
    }

    /// Loads the model (blocking: reads and parses the file; call it off the async runtime).
    pub fn load(&self) -> Result<Arc<Model>, Error> {
        match self {
            ModelSource::Store { store, tag } => store.load(tag).map(Arc::new).map_err(|e| {
                Error::new(ErrorKind::Model, format!("cannot load model {tag}")).with_source(e)
            }),
            ModelSource::File(p) => Model::load_file(p).map(Arc::new).map_err(|e| {
                Error::new(ErrorKind::Model, format!("cannot load {}", p.display())).with_source(e)
            }),
            ModelSource::Loaded(m) => Ok(m.clone()),
        }
    }
}

/// A model being served, with what responses need about it precomputed.
#[derive(Debug)]
pub struct Served {
    /// The model.
    model: Arc<Model>,
    /// `name:version`, ready to be a header value.
    header: HeaderValue,
    /// The name of the model's one output (the trained target, e.g. `price`).
    output: String,
    /// When it was put in the slot.
    since: SystemTime,
    /// Its batcher series, once the server has looked them up.
    pub(crate) metrics: OnceLock<crate::metrics::ModelHandles>,
}

impl Served {
    /// Wraps a loaded model.
    pub fn new(model: Arc<Model>) -> Served {
        let header = HeaderValue::from_str(model.tag())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-tag"));
        let output = match &model.meta().source {
            Provenance::Trained { spec, .. } => spec.target.clone(),
            _ => "prediction".to_string(),
        };
        Served {
            model,
            header,
            output,
            since: SystemTime::now(),
            metrics: OnceLock::new(),
        }
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// `name:version`.
    pub fn tag(&self) -> &str {
        self.model.tag()
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model.meta().name
    }

    /// The model's version in its store.
    pub fn version(&self) -> u64 {
        self.model.meta().version
    }

    /// The [`MODEL_HEADER`] value.
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// The output's name.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// When this version started being served.
    pub fn since(&self) -> SystemTime {
        self.since
    }
}

/// The current model, or none before the first load.
#[derive(Debug, Default)]
pub struct ModelSlot {
    /// The model; the lock is held only to clone or replace the `Arc`.
    current: RwLock<Option<Arc<Served>>>,
}

impl ModelSlot {
    /// The current model, if one is loaded.
    pub fn current(&self) -> Option<Arc<Served>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `model` the current one and returns the previous.
    pub fn replace(&self, model: Arc<Model>) -> Option<Arc<Served>> {
        let next = Arc::new(Served::new(model));
        self.current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(next)
    }
}
