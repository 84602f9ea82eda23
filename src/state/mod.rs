//! The local state file: every resource the tool created, written atomically after each change,
//! and the lock that keeps two runs off the same stack.
//!
//! Layout: `.fintech-infra/<suffix>.json` (mode 0600, directory 0700) plus `<suffix>.lock`.
//! The lock is an OS file lock (released by the kernel when its holder dies, so a stale lock
//! from a dead process never blocks) whose file also names the holder for the error message.
//!
//! The parts: the lock (`lock`), the unit tests (`tests`).

mod lock;
#[cfg(test)]
mod tests;

pub use lock::{LockHolder, StateLock};

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StateError;

/// Version of the state file layout this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Default state directory, relative to the working directory.
pub const DEFAULT_DIR: &str = ".fintech-infra";

/// One resource the tool created (or adopted), with what is needed to delete it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// The step that owns it.
    pub step: String,
    /// Resource type, `service:type`, e.g. `ec2:vpc`.
    pub kind: String,
    /// ID (or name, where the service has no ID).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Human name (the Name tag or resource name).
    #[serde(default)]
    pub name: String,
    pub region: String,
    /// Extra identifiers the teardown needs (e.g. the VPC of an IGW, an EIP allocation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// A write-ahead record: written just before the create call, replaced by the real record
    /// when it returns. One left over means the run stopped while AWS may have created the
    /// resource: `up` and `down` resolve it by its deterministic name first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// The recorded resources this one was built on (its subnets, its key, its target
    /// groups...), resolved when it was recorded (see [`crate::resources::deps`]). `down`
    /// deletes a resource only once everything built on it is gone, so it needs neither the
    /// config nor the steps' code. `None` in files written before edges were kept: `down`
    /// then derives them from the same table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deps: Option<Vec<ResourceRef>>,
}

/// The address of a recorded resource: what [`ResourceRecord::deps`] lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    pub kind: String,
    pub region: String,
    pub id: String,
}

impl ResourceRecord {
    /// This record's address.
    pub fn address(&self) -> ResourceRef {
        ResourceRef {
            kind: self.kind.clone(),
            region: self.region.clone(),
            id: self.id.clone(),
        }
    }
}

/// The ID of the write-ahead record of the `kind` resource named `name`.
pub fn pending_id(name: &str) -> String {
    format!("(pending) {name}")
}

/// How the stack's config was given to the `up` that last changed it: `down`, `verify` and
/// `status` reuse it when given none, so that they see the same services, regions and names.
/// (No secrets: the config holds none.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The config file's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub schema_version: u32,
    pub suffix: String,
    pub region: String,
    pub tool_version: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resources: Vec<ResourceRecord>,
    /// Values later steps and the `outputs` command read (IDs, endpoints). Never secrets.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSource>,
    /// Fingerprint of the standard tag set (`Environment`, `Team`, `CostCenter`, the stack
    /// tag) every recorded resource carries, see [`crate::retag`]: when the config's `[tags]`
    /// give another one, the next `up` re-tags them all. Absent in files written before it
    /// existed, which reads as "unknown", so that `up` re-tags once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_fingerprint: Option<String>,
    /// The step that published each output: `down` drops a step's outputs once none of its
    /// resources is left. Outputs missing here (files written before it) go when the state
    /// is empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_steps: BTreeMap<String, String>,
    /// What `fintech-infra deploy` released, per service (config name): `up` keeps running
    /// it while the config still names the image it replaced (see [`Release`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub releases: BTreeMap<String, Release>,
}

/// A colour of a `weighted` service: `blue` is the ECS service itself, `green` its twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Blue,
    Green,
}

impl Colour {
    pub fn other(self) -> Colour {
        match self {
            Colour::Blue => Colour::Green,
            Colour::Green => Colour::Blue,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
        }
    }
}

/// The last release `deploy` made of one service. It holds while the config's `image` for
/// the service is still `config_image`: a config naming another image is a new intent, and
/// `up` then runs that image on every colour with the config's weights again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// `services[].image` when the release was made.
    pub config_image: String,
    /// The image the service itself runs (blue, for a `weighted` service).
    pub blue: String,
    /// A `weighted` service: the image its green twin runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green: Option<String>,
    /// A `weighted` service: the listener's weights (blue, green) the release left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<(i32, i32)>,
    /// A `weighted` service: the colour the newest image went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Colour>,
    pub at: DateTime<Utc>,
}

impl Release {
    /// The image `colour` runs.
    pub fn image(&self, colour: Colour) -> &str {
        match colour {
            Colour::Blue => &self.blue,
            Colour::Green => self.green.as_deref().unwrap_or(&self.blue),
        }
    }

    /// The weight `colour` gets, if the release set the weights.
    pub fn weight(&self, colour: Colour) -> Option<i32> {
        self.weights.map(|(b, g)| match colour {
            Colour::Blue => b,
            Colour::Green => g,
        })
    }
}

impl StateFile {
    pub fn new(suffix: &str, region: &str) -> StateFile {
        let now = Utc::now();
        StateFile {
            schema_version: SCHEMA_VERSION,
            suffix: suffix.to_string(),
            region: region.to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: now,
            updated_at: now,
            resources: Vec::new(),
            outputs: BTreeMap::new(),
            config: None,
            tags_fingerprint: None,
            output_steps: BTreeMap::new(),
            releases: BTreeMap::new(),
        }
    }

    /// Reads a state file; `Ok(None)` if it does not exist. Refuses newer schemas and
    /// unparseable files without touching them.
    pub fn load(path: &Path) -> Result<Option<StateFile>, StateError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, e)),
        };
        let p = path.display().to_string();
        let raw: Value = serde_json::from_str(&text).map_err(|e| StateError::Unreadable {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let version = raw
            .get("schema_version")
            .and_then(Value::as_u64)
            .ok_or_else(|| StateError::Unreadable {
                path: p.clone(),
                reason: "no schema_version field".into(),
            })?;
        // Versions start at 1: a 0 (or a hand-edited file) is not ours to reinterpret.
        if version == 0 {
            return Err(StateError::UnknownSchema {
                path: p,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version > u64::from(SCHEMA_VERSION) {
            return Err(StateError::NewerSchema {
                path: p,
                found: version as u32,
                supported: SCHEMA_VERSION,
            });
        }
        serde_json::from_value(raw)
            .map(Some)
            .map_err(|e| StateError::Unreadable {
                path: p,
                reason: e.to_string(),
            })
    }
}

fn io_err(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Path of the state file for a suffix in a directory.
pub fn path_for(dir: &Path, suffix: &str) -> PathBuf {
    dir.join(format!("{suffix}.json"))
}

/// The suffixes that have a state file in `dir`.
pub fn stacks_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename, then
/// fsync the directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&tmp_prefix(path))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    set_mode(tmp.as_file(), 0o600)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        // Directory fsync is best effort: some filesystems refuse it.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The prefix of a state file's temp files (`.<file name>.`): each stack's own, so that the
/// run holding its lock may remove the ones a killed run left behind.
fn tmp_prefix(path: &Path) -> String {
    format!(
        ".{}.",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into())
    )
}

/// Removes the temp files a killed run left beside the state: this stack's own (only its
/// lock holder writes them), and those of older versions (`.state-*.tmp`, shared by every
/// stack of the directory) once they are an hour old, long past any write.
fn remove_stale_temp_files(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let own = tmp_prefix(path);
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".tmp") {
            continue;
        }
        let legacy_old = name.starts_with(".state-")
            && e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if name.starts_with(&own) || legacy_old {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Creates the state directory with mode 0700 if missing.
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The state of one stack during a run: in memory, persisted after every change unless the
/// run is read-only (`plan`, `status`).
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    persist: bool,
    data: Mutex<StateFile>,
    _lock: Option<StateLock>,
}

impl StateStore {
    /// Opens the state for a mutating run (`up`, `down`): takes the lock, loads or starts the
    /// file. Nothing is written until the first change.
    pub fn open_locked(
        path: &Path,
        suffix: &str,
        region: &str,
        command: &str,
    ) -> Result<StateStore, StateError> {
        let lock = StateLock::acquire(path, command)?;
        remove_stale_temp_files(path);
        let data = Self::load_for(path, suffix, region)?;
        Ok(StateStore {
            path: path.to_path_buf(),
            persist: true,
            data: Mutex::new(data),
            _lock: Some(lock),
        })
    }

    /// Opens the state read-only: nothing is ever written.
    pub fn open_read_only(
        path: &Path,
        suffix: &str,
        region: &str,
    ) -> Result<StateStore, StateError> {
        let data = Self::load_for(path, suffix, region)?;
        Ok(StateStore {
            path: path.to_path_buf(),
            persist: false,
            data: Mutex::new(data),
            _lock: None,
        })
    }

    fn load_for(path: &Path, suffix: &str, region: &str) -> Result<StateFile, StateError> {
        match StateFile::load(path)? {
            Some(f) if f.suffix != suffix => Err(StateError::WrongStack {
                path: path.display().to_string(),
                found: f.suffix,
                expected: suffix.to_string(),
            }),
            Some(f) => Ok(f),
            None => Ok(StateFile::new(suffix, region)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists_on_disk(&self) -> bool {
        self.path.exists()
    }

    fn lock_data(&self) -> std::sync::MutexGuard<'_, StateFile> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> StateFile {
        self.lock_data().clone()
    }

    /// Puts back a copy taken by [`StateStore::snapshot`]: for read-only runs only (`plan`
    /// discarding a pass), never for a state on disk, which must not lose a record.
    pub fn restore(&self, data: StateFile) {
        assert!(!self.persist, "restore of a persisted state");
        *self.lock_data() = data;
    }

    /// Applies a change and persists it; skipped (no write) when `f` reports no change.
    fn update(&self, f: impl FnOnce(&mut StateFile) -> bool) -> Result<(), StateError> {
        let mut data = self.lock_data();
        if !f(&mut data) {
            return Ok(());
        }
        data.updated_at = Utc::now();
        if !self.persist {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            ensure_dir(dir).map_err(|e| io_err(dir, e))?;
        }
        let bytes = serde_json::to_vec_pretty(&*data).expect("state serializes");
        // The file is written while the mutex is held so that writes land in order.
        write_atomic(&self.path, &bytes).map_err(|e| io_err(&self.path, e))
    }

    /// Records a resource (or updates the record with the same kind, ID and region: a KMS
    /// alias or a VPC name can repeat in the disaster-recovery region).
    pub fn record(&self, rec: ResourceRecord) -> Result<(), StateError> {
        self.update(|d| {
            // The real record resolves the write-ahead one of the same resource.
            let before = d.resources.len();
            if !rec.pending {
                d.resources.retain(|r| {
                    !(r.pending
                        && r.kind == rec.kind
                        && r.name == rec.name
                        && r.region == rec.region)
                });
            }
            let resolved = d.resources.len() != before;
            resolved
                | match d
                    .resources
                    .iter_mut()
                    .find(|r| r.kind == rec.kind && r.id == rec.id && r.region == rec.region)
                {
                    Some(existing) => {
                        let changed = existing.step != rec.step
                            || existing.arn != rec.arn
                            || existing.name != rec.name
                            || existing.attrs != rec.attrs
                            || existing.deps != rec.deps;
                        if changed {
                            let created_at = existing.created_at;
                            *existing = ResourceRecord { created_at, ..rec };
                        }
                        changed
                    }
                    None => {
                        d.resources.push(rec);
                        true
                    }
                }
        })
    }

    /// Removes a resource (of `kind`, `id`, in `region`) after it has been deleted.
    pub fn forget(&self, kind: &str, id: &str, region: &str) -> Result<(), StateError> {
        self.update(|d| {
            let before = d.resources.len();
            d.resources
                .retain(|r| !(r.kind == kind && r.id == id && r.region == region));
            d.resources.len() != before
        })
    }

    /// Runs `f` over every record, in creation order, without copying them.
    pub fn with_resources<T>(&self, f: impl FnOnce(&[ResourceRecord]) -> T) -> T {
        f(&self.lock_data().resources)
    }

    /// Records of one step (all steps if `None`), optionally of one kind, in creation order.
    pub fn resources(&self, step: Option<&str>, kind: Option<&str>) -> Vec<ResourceRecord> {
        self.lock_data()
            .resources
            .iter()
            .filter(|r| step.is_none_or(|s| r.step == s))
            .filter(|r| kind.is_none_or(|k| r.kind == k))
            .cloned()
            .collect()
    }

    /// Publishes `key`, remembering `step` as its producer.
    pub fn set_output(&self, step: &str, key: &str, value: Value) -> Result<(), StateError> {
        self.update(|d| {
            let owner_known = d.output_steps.get(key).map(String::as_str) == Some(step);
            if d.outputs.get(key) == Some(&value) && owner_known {
                return false;
            }
            d.outputs.insert(key.to_string(), value);
            d.output_steps.insert(key.to_string(), step.to_string());
            true
        })
    }

    /// Drops the outputs of every step that has no resource left (any output, once nothing
    /// at all is recorded): what `down` leaves of a stack names nothing that is gone.
    pub fn drop_orphaned_outputs(&self) -> Result<(), StateError> {
        self.update(|d| {
            let before = d.outputs.len();
            let empty = d.resources.is_empty();
            let live: std::collections::BTreeSet<String> =
                d.resources.iter().map(|r| r.step.clone()).collect();
            let owners = d.output_steps.clone();
            d.outputs
                .retain(|k, _| !empty && owners.get(k).is_none_or(|step| live.contains(step)));
            let outputs = &d.outputs;
            d.output_steps.retain(|k, _| outputs.contains_key(k));
            d.outputs.len() != before
        })
    }

    /// Remembers how the config was given (see [`ConfigSource`]).
    pub fn set_config(&self, source: ConfigSource) -> Result<(), StateError> {
        self.update(|d| {
            if d.config.as_ref() == Some(&source) {
                return false;
            }
            d.config = Some(source);
            true
        })
    }

    /// The fingerprint of the tag set every recorded resource carries (see
    /// [`StateFile::tags_fingerprint`]).
    pub fn tags_fingerprint(&self) -> Option<String> {
        self.lock_data().tags_fingerprint.clone()
    }

    /// Records that every recorded resource now carries the tag set of `fingerprint`.
    pub fn set_tags_fingerprint(&self, fingerprint: &str) -> Result<(), StateError> {
        self.update(|d| {
            if d.tags_fingerprint.as_deref() == Some(fingerprint) {
                return false;
            }
            d.tags_fingerprint = Some(fingerprint.to_string());
            true
        })
    }

    /// The release `deploy` last made of `service`, if any.
    pub fn release(&self, service: &str) -> Option<Release> {
        self.lock_data().releases.get(service).cloned()
    }

    /// The release of `service` that still holds: the config's image for it is still the
    /// one the release replaced, and the service still deploys the way the release was made
    /// (`weighted`: a release with a green image; switched to `rolling`, the release of both
    /// colours means nothing any more).
    pub fn release_holding(
        &self,
        service: &str,
        config_image: &str,
        weighted: bool,
    ) -> Option<Release> {
        self.release(service)
            .filter(|r| r.config_image == config_image && r.green.is_some() == weighted)
    }

    /// Records a release of `service` (`None`: forgets it).
    pub fn set_release(&self, service: &str, release: Option<Release>) -> Result<(), StateError> {
        self.update(|d| {
            let old = match &release {
                Some(r) => d.releases.insert(service.to_string(), r.clone()),
                None => d.releases.remove(service),
            };
            old != release
        })
    }

    /// The write-ahead records no create call has resolved yet.
    pub fn pending(&self) -> Vec<ResourceRecord> {
        self.lock_data()
            .resources
            .iter()
            .filter(|r| r.pending)
            .cloned()
            .collect()
    }

    /// Sets the stack's region if the state has none yet.
    pub fn set_region(&self, region: &str) -> Result<(), StateError> {
        self.update(|d| {
            if !d.region.is_empty() {
                return false;
            }
            d.region = region.to_string();
            true
        })
    }

    pub fn remove_output(&self, key: &str) -> Result<(), StateError> {
        self.update(|d| {
            d.output_steps.remove(key);
            d.outputs.remove(key).is_some()
        })
    }

    pub fn output(&self, key: &str) -> Option<Value> {
        self.lock_data().outputs.get(key).cloned()
    }

    /// Deletes the state file: called by `down` once nothing is recorded any more.
    pub fn remove_file(&self) -> Result<(), StateError> {
        if !self.persist {
            return Ok(());
        }
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.path, e)),
        }
    }
}
