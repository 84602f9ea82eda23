//! Unit tests of the state file, the state store and the lock.

use super::*;

fn rec(kind: &str, id: &str) -> ResourceRecord {
    ResourceRecord {
        step: "network".into(),
        kind: kind.into(),
        id: id.into(),
        arn: None,
        name: format!("n-{id}"),
        region: "us-east-1".into(),
        attrs: BTreeMap::new(),
        created_at: Utc::now(),
        pending: false,
        deps: None,
    }
}

#[test]
fn a_real_record_resolves_the_write_ahead_one_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    let store = StateStore::open_locked(&path, "t", "us-east-1", "up").unwrap();
    let mut ahead = rec("ec2:vpc", &pending_id("n-vpc-1"));
    ahead.name = "n-vpc-1".into();
    ahead.pending = true;
    store.record(ahead).unwrap();
    assert_eq!(store.pending().len(), 1);
    // Written through to disk at once: a kill now leaves the pending record behind.
    let on_disk = StateFile::load(&path).unwrap().unwrap();
    assert!(on_disk.resources[0].pending, "{:?}", on_disk.resources);
    store.record(rec("ec2:vpc", "vpc-1")).unwrap();
    assert!(store.pending().is_empty());
    let all = store.resources(None, None);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, "vpc-1");
    // Another name of the same kind does not resolve it.
    let mut other = rec("ec2:vpc", &pending_id("n-vpc-2"));
    other.name = "n-vpc-2".into();
    other.pending = true;
    store.record(other).unwrap();
    store.record(rec("ec2:vpc", "vpc-3")).unwrap();
    assert_eq!(store.pending().len(), 1);
}

#[test]
fn records_persist_atomically_with_private_modes() {
    let dir = tempfile::tempdir().unwrap();
    let sdir = dir.path().join(".fintech-infra");
    let path = path_for(&sdir, "dev");
    let store = StateStore::open_locked(&path, "dev", "us-east-1", "up").unwrap();
    assert!(!path.exists(), "nothing written before the first change");
    store.record(rec("ec2:vpc", "vpc-1")).unwrap();
    store.record(rec("ec2:subnet", "subnet-1")).unwrap();
    let loaded = StateFile::load(&path).unwrap().unwrap();
    assert_eq!(loaded.resources.len(), 2);
    assert_eq!(loaded.schema_version, SCHEMA_VERSION);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(&sdir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
    }
    // No temp files are left behind.
    let leftovers: Vec<_> = fs::read_dir(&sdir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    store.forget("ec2:vpc", "vpc-1", "us-east-1").unwrap();
    let loaded = StateFile::load(&path).unwrap().unwrap();
    assert_eq!(loaded.resources.len(), 1);
}

#[test]
fn atomic_write_never_leaves_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    write_atomic(&path, b"{\"a\":1}").unwrap();
    // A failed write (directory gone) leaves the old content intact.
    let bad = dir.path().join("missing-dir").join("s.json");
    assert!(write_atomic(&bad, b"x").is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\":1}");
    write_atomic(&path, b"{\"a\":2}").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\":2}");
}

#[test]
fn second_lock_fails_naming_the_holder_and_frees_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), "dev");
    let first = StateLock::acquire(&path, "up").unwrap();
    let err = StateLock::acquire(&path, "down").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StateError::Locked { .. }));
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains("host"), "{msg}");
    drop(first);
    let again = StateLock::acquire(&path, "down").unwrap();
    drop(again);
}

#[test]
fn stale_lock_file_from_dead_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), "dev");
    // A lock file left by a process that died: its OS lock is gone with it.
    let stale = LockHolder {
        pid: 999_999,
        host: "old-host".into(),
        started: Utc::now(),
        command: "up".into(),
    };
    fs::write(
        path.with_extension("lock"),
        serde_json::to_vec(&stale).unwrap(),
    )
    .unwrap();
    let lock = StateLock::acquire(&path, "up").unwrap();
    let holder: LockHolder =
        serde_json::from_slice(&fs::read(path.with_extension("lock")).unwrap()).unwrap();
    assert_eq!(holder.pid, std::process::id());
    drop(lock);
}

#[test]
fn newer_schema_and_garbage_are_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), "dev");
    let newer = r#"{"schema_version": 99, "suffix": "dev"}"#;
    fs::write(&path, newer).unwrap();
    let err = StateStore::open_locked(&path, "dev", "us-east-1", "up").unwrap_err();
    assert!(
        matches!(err, StateError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), newer);

    fs::write(&path, "not json").unwrap();
    let err = StateStore::open_locked(&path, "dev", "us-east-1", "up").unwrap_err();
    assert!(matches!(err, StateError::Unreadable { .. }), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "not json");
}

#[test]
fn read_only_store_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), "dev");
    let store = StateStore::open_read_only(&path, "dev", "us-east-1").unwrap();
    store.record(rec("ec2:vpc", "vpc-1")).unwrap();
    assert!(!path.exists());
}

#[test]
fn tags_fingerprint_is_optional_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(dir.path(), "dev");
    // A file written before the field existed still loads, as "unknown".
    let old = serde_json::json!({
        "schema_version": 1, "suffix": "dev", "region": "us-east-1",
        "tool_version": "0.1.0", "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z", "resources": [],
    });
    fs::write(&path, old.to_string()).unwrap();
    let store = StateStore::open_locked(&path, "dev", "us-east-1", "up").unwrap();
    assert_eq!(store.tags_fingerprint(), None);
    store.set_tags_fingerprint("v1:abc").unwrap();
    let loaded = StateFile::load(&path).unwrap().unwrap();
    assert_eq!(loaded.tags_fingerprint.as_deref(), Some("v1:abc"));
    // Unset, it is not written at all.
    let text = serde_json::to_string(&StateFile::new("dev", "us-east-1")).unwrap();
    assert!(!text.contains("tags_fingerprint"), "{text}");
}

#[test]
fn lists_stacks() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("b.json"), "{}").unwrap();
    fs::write(dir.path().join("a.json"), "{}").unwrap();
    fs::write(dir.path().join("a.lock"), "{}").unwrap();
    assert_eq!(stacks_in(dir.path()), vec!["a", "b"]);
}
