//! The model store: versioned models on disk, addressed by tags `name:version`,
//! `name:latest` (BentoML-like) and `name@alias` (MLflow-like: `champion`, `challenger`, any
//! name pointing at one version).
//!
//! Layout: `<root>/<name>/<version>/model.json`, versions numbered from 1 and never reused:
//! `<root>/<name>/.last-version` remembers the highest ever saved, so a deleted version's
//! number is not given to another model. `<root>/<name>/aliases.json` maps aliases to versions
//! (deleting a version drops its aliases, as MLflow does). A version is written in a temporary
//! folder and renamed into place, so readers never see half a model and two writers never get
//! the same version. Each `model.json` records its creation time, augur
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
enum Version<'a> {
    /// The highest version.
    Latest,
    /// A given version.
    Exact(u64),
    /// The version an alias points at.
    Alias(&'a str),
}

/// The file remembering the highest version ever saved under a name.
const LAST_VERSION_FILE: &str = ".last-version";
/// The file mapping a name's aliases to versions.
const ALIASES_FILE: &str = "aliases.json";

/// Checks an alias: like a name, and not `latest` (which always means the highest version).
fn check_alias(tag: &str, alias: &str) -> Result<(), ModelError> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && alias != "latest"
        && alias.starts_with(|c: char| c.is_ascii_alphabetic())
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidTag {
            tag: tag.to_string(),
            reason: "an alias starts with a letter and uses letters, digits, '_' and '-' (not `latest`)",
        })
    }
}

/// Splits `name[:version|:latest|@alias]`; a bare name means latest.
fn parse_tag(tag: &str) -> Result<(&str, Version<'_>), ModelError> {
    if let Some((name, alias)) = tag.split_once('@') {
        check_name(name)?;
        check_alias(tag, alias)?;
        return Ok((name, Version::Alias(alias)));
    }
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

/// `(name, alias)` of a `name@alias` tag.
fn alias_tag(tag: &str) -> Result<(&str, &str), ModelError> {
    match parse_tag(tag)? {
        (name, Version::Alias(alias)) => Ok((name, alias)),
        _ => Err(ModelError::InvalidTag {
            tag: tag.to_string(),
            reason: "an alias is written name@alias, e.g. ford-price@champion",
        }),
    }
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
    /// The aliases pointing at this version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
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

    /// Resolves a tag to `(name, version)`; `name` and `name:latest` give the highest version,
    /// `name@alias` the version the alias points at.
    pub fn resolve(&self, tag: &str) -> Result<(String, u64), ModelError> {
        let (name, version) = parse_tag(tag)?;
        let versions = self.versions(name)?;
        let v = match version {
            Version::Latest => versions.last().copied(),
            Version::Exact(v) => versions.contains(&v).then_some(v),
            Version::Alias(a) => self
                .aliases(name)?
                .get(a)
                .copied()
                .filter(|v| versions.contains(v)),
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
        let newest = self.versions(&name)?.last().copied().unwrap_or(0);
        let mut version = newest.max(self.last_version(&name)) + 1;
        loop {
            let model = model.clone().with_tag(&name, version);
            let file = tmp.join(MODEL_FILE);
            std::fs::write(&file, model.to_json())
                .map_err(|e| ModelError::io("writing", &file, e))?;
            let target = dir.join(version.to_string());
            match std::fs::rename(&tmp, &target) {
                Ok(()) => {
                    self.remember_version(&name, version)?;
                    return Ok(model);
                }
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
            let aliases = self.aliases(&name)?;
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
                    aliases: aliases
                        .iter()
                        .filter(|(_, av)| **av == v)
                        .map(|(a, _)| a.clone())
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// Deletes one version (`name:latest` deletes the highest) and the aliases pointing at it;
    /// returns the deleted tag. Its number is never given to another version.
    pub fn delete(&self, tag: &str) -> Result<String, ModelError> {
        let (name, version) = self.resolve(tag)?;
        self.remember_version(&name, version)?;
        let dir = self.root.join(&name).join(version.to_string());
        std::fs::remove_dir_all(&dir).map_err(|e| ModelError::io("deleting", &dir, e))?;
        let mut aliases = self.aliases(&name)?;
        aliases.retain(|_, v| *v != version);
        self.write_aliases(&name, &aliases)?;
        Ok(format!("{name}:{version}"))
    }

    /// The highest version ever saved under `name` (0 when none was).
    fn last_version(&self, name: &str) -> u64 {
        let file = self.root.join(name).join(LAST_VERSION_FILE);
        std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Raises the remembered highest version of `name` to `version`.
    fn remember_version(&self, name: &str, version: u64) -> Result<(), ModelError> {
        if self.last_version(name) >= version {
            return Ok(());
        }
        let file = self.root.join(name).join(LAST_VERSION_FILE);
        std::fs::write(&file, format!("{version}\n"))
            .map_err(|e| ModelError::io("writing", &file, e))
    }

    /// The aliases of `name` and the versions they point at.
    pub fn aliases(
        &self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, ModelError> {
        check_name(name)?;
        let file = self.root.join(name).join(ALIASES_FILE);
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ModelError::json(file.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(ModelError::io("reading", &file, e)),
        }
    }

    fn write_aliases(
        &self,
        name: &str,
        aliases: &std::collections::BTreeMap<String, u64>,
    ) -> Result<(), ModelError> {
        let dir = self.root.join(name);
        let file = dir.join(ALIASES_FILE);
        let tmp = dir.join(format!(".{ALIASES_FILE}.{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(aliases).unwrap_or_default();
        std::fs::write(&tmp, bytes).map_err(|e| ModelError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &file).map_err(|e| ModelError::io("renaming into", &file, e))
    }

    /// Points `name@alias` at `version` (which must exist), moving it if it pointed elsewhere;
    /// returns the version it pointed at before, if any.
    pub fn set_alias(&self, tag: &str, version: u64) -> Result<Option<u64>, ModelError> {
        let (name, alias) = alias_tag(tag)?;
        if !self.versions(name)?.contains(&version) {
            return Err(ModelError::NotFound(format!("{name}:{version}")));
        }
        let mut aliases = self.aliases(name)?;
        let before = aliases.insert(alias.to_string(), version);
        self.write_aliases(name, &aliases)?;
        Ok(before)
    }

    /// Removes `name@alias`; returns the version it pointed at.
    pub fn delete_alias(&self, tag: &str) -> Result<u64, ModelError> {
        let (name, alias) = alias_tag(tag)?;
        let mut aliases = self.aliases(name)?;
        let Some(v) = aliases.remove(alias) else {
            return Err(ModelError::NotFound(tag.to_string()));
        };
        self.write_aliases(name, &aliases)?;
        Ok(v)
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
        assert_eq!(
            parse_tag("ford-price@champion").unwrap(),
            ("ford-price", Version::Alias("champion"))
        );
        assert!(parse_tag("ford-price@latest").is_err());
        assert!(parse_tag("ford-price@").is_err());
        assert!(parse_tag("ford-price@a:b").is_err());
        assert!(parse_tag("ford-price:0").is_err());
        assert!(parse_tag("ford-price:x").is_err());
        assert!(parse_tag("../etc").is_err());
        assert!(parse_tag("").is_err());
    }

    fn tmp_store(tag: &str) -> ModelStore {
        let dir = std::env::temp_dir().join(format!(
            "augur-store-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        ModelStore::open(dir).unwrap()
    }

    #[test]
    fn versions_are_never_reused_and_aliases_follow_their_version() {
        let store = tmp_store("alias");
        let model = load_shipped().unwrap();
        for _ in 0..3 {
            store.save(model.clone(), Some("cars")).unwrap();
        }
        assert_eq!(store.delete("cars:3").unwrap(), "cars:3");
        assert_eq!(
            store.save(model.clone(), Some("cars")).unwrap().tag(),
            "cars:4"
        );
        store.delete("cars:4").unwrap();
        store.delete("cars:2").unwrap();
        store.delete("cars:1").unwrap();
        assert!(store.versions("cars").unwrap().is_empty());
        assert_eq!(
            store.save(model.clone(), Some("cars")).unwrap().tag(),
            "cars:5"
        );
        store.save(model.clone(), Some("cars")).unwrap();

        assert_eq!(store.set_alias("cars@champion", 5).unwrap(), None);
        assert_eq!(store.resolve("cars@champion").unwrap(), ("cars".into(), 5));
        assert_eq!(store.load("cars@champion").unwrap().tag(), "cars:5");
        assert_eq!(store.set_alias("cars@champion", 6).unwrap(), Some(5));
        store.set_alias("cars@challenger", 5).unwrap();
        assert!(matches!(
            store.set_alias("cars@x", 9),
            Err(ModelError::NotFound(_))
        ));
        assert!(store.set_alias("cars:5", 5).is_err());
        let listed = store.list().unwrap();
        let five = listed.iter().find(|s| s.tag == "cars:5").unwrap();
        assert_eq!(five.aliases, ["challenger"]);
        store.delete("cars:5").unwrap();
        assert!(matches!(
            store.resolve("cars@challenger"),
            Err(ModelError::NotFound(_))
        ));
        assert!(!store.aliases("cars").unwrap().contains_key("challenger"));
        assert_eq!(store.delete_alias("cars@champion").unwrap(), 6);
        assert!(store.resolve("cars@champion").is_err());
        let _ = std::fs::remove_dir_all(store.root());
    }
}
