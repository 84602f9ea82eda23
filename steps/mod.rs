//! The steps of the stack, one module each, and the list the engine runs.

use std::sync::Arc;

use crate::config::Config;
use crate::step::Step;

/// Declares the steps: each `module => Type` line is the module `steps/<module>.rs` and its
/// place in the list the engine runs, so a new step is one line here (plus its file). Order
/// is declaration order; the engine orders the steps by their dependencies.
macro_rules! steps {
    ($($module:ident => $step:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Every step of the stack described by `cfg`, in declaration order (the engine
        /// orders them by their dependencies).
        pub fn all(_cfg: &Config) -> Vec<Arc<dyn Step>> {
            vec![$(Arc::new($module::$step)),*]
        }
    };
}

steps! {
    network => Network,
    kms => Kms,
    cluster => Cluster,
    database => Database,
    sessions => Sessions,
    registry => Registry,
    queue => Queue,
    iam => Iam,
    certificate => Certificate,
    alb => Alb,
    // Always in the graph: a no-op without `[waf] enabled` and without records, so that
    // `down` removes a web ACL even after the config stopped enabling it.
    waf => Waf,
    services => Services,
    // Always in the graph: without a `codedeploy-*` service it only removes what an earlier
    // run built.
    codedeploy => CodeDeploy,
    validator => Validator,
    storage => Storage,
    cdn => Cdn,
    alarms => Alarms,
    // Always in the graph, like waf: without `dr.region` they only remove what an earlier
    // run built.
    dr_network => DrNetwork,
    dr_storage => DrStorage,
    dr_backup => DrBackup,
    // Always in the graph: with `network.flow_logs = false` (or without `dr.region`, for the
    // DR VPC's) it only removes what an earlier run built.
    flow_logs => FlowLogs,
}

#[cfg(test)]
mod tests {
    /// The layering the resource layer exists for: a step composes resources
    /// (`crate::resources`) and reads other steps' published values (`crate::outputs`), but
    /// never uses another step as a library.
    #[test]
    fn no_step_imports_another_step() {
        // A step's own files too (`steps/<step>/config.rs`, its tests).
        fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    rust_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/steps"));
        let mut files = Vec::new();
        rust_files(dir, &mut files);
        assert!(files.len() > 20, "found only {files:?}");
        let mut offenders = Vec::new();
        for path in files {
            if path == dir.join("mod.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("crate::steps::") {
                offenders.push(path.display().to_string());
            }
        }
        assert!(
            offenders.is_empty(),
            "steps using other steps: {offenders:?}"
        );
    }

    /// Issue 13's size rule: no source file over 800 lines outside tests (a file that grows
    /// past it holds more than one thing; split it along its resources or sections).
    #[test]
    fn no_source_file_is_over_800_lines() {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, usize)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs")
                {
                    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                    if lines > 800 {
                        out.push((path.display().to_string(), lines));
                    }
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut long = Vec::new();
        walk(&root.join("src"), &mut long);
        walk(&root.join("steps"), &mut long);
        assert!(long.is_empty(), "files over 800 lines: {long:?}");
    }
}
