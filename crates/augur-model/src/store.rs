//! The model store: versioned models on disk, addressed by tags `name:version` and
//! `name:latest` (BentoML-like).
//!
//! Layout: `<root>/<name>/<version>/model.json`, versions numbered from 1. A version is written
//! in a temporary folder and renamed into place, so readers never see half a model and two
//! writers never get the same version. Each `model.json` records its creation time, augur
//! version, source (training data hash, feature spec, parameters, metrics; or the imported
//! XGBoost file's hash), the fitted feature pipeline and the trees.
//!
//! Location ([`ModelStore::default_location`]): `$AUGUR_MODEL_STORE` if set, else
//! `$AUGUR_HOME/models`, else `~/.augur/models`; `augur --store DIR` overrides all of them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::features::PipelineSpec;
use crate::model::{Model, ModelMeta, check_name};

/// The environment variable naming the store folder.
pub const STORE_ENV: &str = "AUGUR_MODEL_STORE";
/// The environment variable naming augur's home folder (the store is its `models/`).
pub const HOME_ENV: &str = "AUGUR_HOME";
/// The file holding one version.
const MODEL_FILE: &str = "model.json";
/// The name and tag of the default model shipped in the repository's `models/` folder.
pub const SHIPPED_MODEL: &str = "ford-price:latest";

/// The shipped default model, compiled into the binary (the repository's
/// `models/ford-price/1/model.json`).
const SHIPPED_JSON: &[u8] = include_bytes!("../../../models/ford-price/1/model.json");

/// A store holding the shipped default model, usable from any directory: the model compiled
/// into this binary, written once into a folder of the user's cache (`$XDG_CACHE_HOME`, else
/// `~/.cache`, else the temporary folder) named after its content hash, so an installed or
/// copied binary needs no file beside it.
pub fn shipped_models_dir() -> PathBuf {
    let hash = crate::sha256::hex(SHIPPED_JSON);
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .filter(|p| p.is_absolute())
        .unwrap_or_else(std::env::temp_dir);
    let user = std::env::var("USER").unwrap_or_default();
    let candidates = [
        base.join("augur").join(format!("shipped-{}", &hash[..16])),
        std::env::temp_dir().join(format!("augur-shipped-{user}-{}", &hash[..16])),
    ];
    for root in candidates {
        if write_shipped(&root).is_ok() {
            return root;
        }
    }
    // Nowhere writable: a store that does not exist reports itself as such.
    base.join("augur").join("shipped")
}

/// Writes the shipped model into `<root>/ford-price/1/model.json` unless it is already there
/// with the same bytes (written to a temporary file and renamed, so readers never see half).
fn write_shipped(root: &Path) -> std::io::Result<()> {
    let dir = root.join("ford-price").join("1");
    let file = dir.join(MODEL_FILE);
    if std::fs::read(&file).is_ok_and(|b| b == SHIPPED_JSON) {
        return Ok(());
    }
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{MODEL_FILE}.{}", std::process::id()));
    std::fs::write(&tmp, SHIPPED_JSON)?;
    std::fs::rename(&tmp, &file)
}

/// Loads the shipped default model ([`SHIPPED_MODEL`] from [`shipped_models_dir`]); needs no
/// user store and no data set.
pub fn load_shipped() -> Result<Model, ModelError> {
    ModelStore::open(shipped_models_dir())?.load(SHIPPED_MODEL)
}

/// A parsed tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// The highest version.
    Latest,
    /// A given version.
    Exact(u64),
}

/// Splits `name[:version|:latest]`; a bare name means latest.
fn parse_tag(tag: &str) -> Result<(&str, Version), ModelError> {
    let (name, version) = match tag.split_once(':') {
        None => (tag, Version::Latest),
        Some((n, "latest")) => (n, Version::Latest),
        Some((n, v)) => match v.parse::<u64>() {
            Ok(v) if v > 0 => (n, Version::Exact(v)),
            _ => {
                return Err(ModelError::InvalidTag {
                    tag: tag.to_string(),
                    reason: "the version is a positive number or `latest`",
                });
            }
        },
    };
    check_name(name)?;
    Ok((name, version))
}

/// One line of [`ModelStore::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// `name:version`.
    pub tag: String,
    /// The metadata of that version.
    pub meta: ModelMeta,
    /// Size of its model file in bytes.
    pub size_bytes: u64,
}

/// Only the metadata of a model file (listing does not build the trees).
#[derive(Deserialize)]
struct MetaOnly {
    /// The metadata.
    meta: ModelMeta,
}

/// A model store rooted at a folder.
#[derive(Debug, Clone)]
pub struct ModelStore {
    /// The root folder.
    root: PathBuf,
}

impl ModelStore {
    /// The documented default location (see the module docs); `None` only when neither
    /// variable nor a home folder is known.
    pub fn default_location() -> Option<PathBuf> {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var(STORE_ENV)
            .or_else(|| var(HOME_ENV).map(|h| h.join("models")))
            .or_else(|| var("HOME").map(|h| h.join(".augur").join("models")))
    }

    /// Opens (creating if needed) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ModelStore, ModelError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| ModelError::io("creating", &root, e))?;
        Ok(ModelStore { root })
    }

    /// Opens the store at [`ModelStore::default_location`].
    pub fn open_default() -> Result<ModelStore, ModelError> {
        let root = ModelStore::default_location().ok_or_else(|| {
            ModelError::Spec(format!(
                "no model store location: set {STORE_ENV}, {HOME_ENV} or HOME"
            ))
        })?;
        ModelStore::open(root)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The versions of a model, ascending (empty if none).
    pub fn versions(&self, name: &str) -> Result<Vec<u64>, ModelError> {
        check_name(name)?;
        let dir = self.root.join(name);
        if !dir.is_dir() {
            // Absent, or a stray file such as a README beside the models.
            return Ok(Vec::new());
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ModelError::io("listing", &dir, e)),
        };
        let mut versions: Vec<u64> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .filter(|v| *v > 0 && dir.join(v.to_string()).join(MODEL_FILE).is_file())
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Resolves a tag to `(name, version)`; `name` and `name:latest` give the highest version.
    pub fn resolve(&self, tag: &str) -> Result<(String, u64), ModelError> {
        let (name, version) = parse_tag(tag)?;
        let versions = self.versions(name)?;
        let v = match version {
            Version::Latest => versions.last().copied(),
            Version::Exact(v) => versions.contains(&v).then_some(v),
        };
        v.map(|v| (name.to_string(), v))
            .ok_or_else(|| ModelError::NotFound(tag.to_string()))
    }

    /// The model file of a version.
    fn file(&self, name: &str, version: u64) -> PathBuf {
        self.root
            .join(name)
            .join(version.to_string())
            .join(MODEL_FILE)
    }

    /// Loads a model by tag, e.g. `ford-price:latest` or `ford-price:3`.
    pub fn load(&self, tag: &str) -> Result<Model, ModelError> {
        let (name, version) = self.resolve(tag)?;
        let model = Model::load_file(&self.file(&name, version))?;
        Ok(model.with_tag(&name, version))
    }

    /// Saves a model as the next version of `name` (its own name when `None`) and returns it
    /// with its new tag.
    pub fn save(&self, model: Model, name: Option<&str>) -> Result<Model, ModelError> {
        let name = name.unwrap_or(&model.meta().name).to_string();
        check_name(&name)?;
        let dir = self.root.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| ModelError::io("creating", &dir, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = dir.join(format!(".tmp-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(|e| ModelError::io("creating", &tmp, e))?;
        let mut version = self.versions(&name)?.last().copied().unwrap_or(0) + 1;
        loop {
            let model = model.clone().with_tag(&name, version);
            let file = tmp.join(MODEL_FILE);
            std::fs::write(&file, model.to_json())
                .map_err(|e| ModelError::io("writing", &file, e))?;
            let target = dir.join(version.to_string());
            match std::fs::rename(&tmp, &target) {
                Ok(()) => return Ok(model),
                // Another writer took this version first: try the next one.
                Err(_) if target.exists() && version < u64::MAX => version += 1,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(ModelError::io("renaming into", &target, e));
                }
            }
        }
    }

    /// Every version of every model, sorted by name then version.
    pub fn list(&self) -> Result<Vec<ModelSummary>, ModelError> {
        let entries =
            std::fs::read_dir(&self.root).map_err(|e| ModelError::io("listing", &self.root, e))?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            for v in self.versions(&name)? {
                let file = self.file(&name, v);
                let bytes =
                    std::fs::read(&file).map_err(|e| ModelError::io("reading", &file, e))?;
                let meta: MetaOnly = serde_json::from_slice(&bytes)
                    .map_err(|e| ModelError::json(file.display().to_string(), e))?;
                let mut meta = meta.meta;
                meta.name = name.clone();
                meta.version = v;
                out.push(ModelSummary {
                    tag: format!("{name}:{v}"),
                    meta,
                    size_bytes: bytes.len() as u64,
                });
            }
        }
        Ok(out)
    }

    /// Deletes one version (`name:latest` deletes the highest); returns the deleted tag.
    pub fn delete(&self, tag: &str) -> Result<String, ModelError> {
        let (name, version) = self.resolve(tag)?;
        let dir = self.root.join(&name).join(version.to_string());
        std::fs::remove_dir_all(&dir).map_err(|e| ModelError::io("deleting", &dir, e))?;
        // Drop the name's folder once its last version is gone (ignore failures: not empty).
        let _ = std::fs::remove_dir(self.root.join(&name));
        Ok(format!("{name}:{version}"))
    }

    /// Writes one version as a single portable file (importable with [`ModelStore::import`]);
    /// returns the exported tag.
    pub fn export(&self, tag: &str, dest: &Path) -> Result<String, ModelError> {
        let (name, version) = self.resolve(tag)?;
        let src = self.file(&name, version);
        std::fs::copy(&src, dest).map_err(|e| ModelError::io("writing", dest, e))?;
        Ok(format!("{name}:{version}"))
    }

    /// Imports a file written by [`ModelStore::export`] as the next version of its name (or
    /// `name`).
    pub fn import(&self, file: &Path, name: Option<&str>) -> Result<Model, ModelError> {
        let model = Model::load_file(file)?;
        self.save(model, name)
    }

    /// Imports an XGBoost `save_model` JSON file with the feature spec that makes its columns
    /// (a [`PipelineSpec`] JSON file) as the next version of `name`.
    pub fn import_xgboost(
        &self,
        model_file: &Path,
        features_file: &Path,
        name: &str,
    ) -> Result<Model, ModelError> {
        let bytes =
            std::fs::read(model_file).map_err(|e| ModelError::io("reading", model_file, e))?;
        let spec_bytes = std::fs::read(features_file)
            .map_err(|e| ModelError::io("reading", features_file, e))?;
        let spec: PipelineSpec = serde_json::from_slice(&spec_bytes)
            .map_err(|e| ModelError::json(features_file.display().to_string(), e))?;
        let file_name = model_file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let model = Model::from_xgboost(name, &bytes, &file_name, spec)?;
        self.save(model, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse() {
        assert_eq!(
            parse_tag("ford-price").unwrap(),
            ("ford-price", Version::Latest)
        );
        assert_eq!(
            parse_tag("ford-price:latest").unwrap(),
            ("ford-price", Version::Latest)
        );
        assert_eq!(
            parse_tag("ford-price:3").unwrap(),
            ("ford-price", Version::Exact(3))
        );
        assert!(parse_tag("ford-price:0").is_err());
        assert!(parse_tag("ford-price:x").is_err());
        assert!(parse_tag("../etc").is_err());
        assert!(parse_tag("").is_err());
    }
}
