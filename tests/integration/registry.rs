//! The registry step against the emulator: one ECR repository per configured service, scanned
//! on push, tags immutable, encrypted with the stack key; the outputs map services to URIs and
//! ARNs; adding services adds repositories, removing one stops publishing it but `down` still
//! deletes it; a second `up` changes nothing; `down` removes every repository. ECR is invisible
//! to the emulator's tagging API, so repositories are listed by name.

use std::collections::BTreeMap;

use aws_sdk_ecr::types::{EncryptionType, ImageTagMutability};
use serde_json::Value;

use crate::util::*;

const THREE_SERVICES: &str = r#"
[[services]]
name = "web"

[[services]]
name = "payment-api"
cpu = 1024
memory = 2048

[[services]]
name = "tx-worker"
cpu = 512
memory = 1024
permissions = ["database"]
"#;

/// The stack's repositories (`repo-*-<suffix>`), by name.
async fn our_repositories(
    ecr: &aws_sdk_ecr::Client,
    suffix: &str,
) -> BTreeMap<String, aws_sdk_ecr::types::Repository> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = ecr
            .describe_repositories()
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        for r in page.repositories() {
            let name = r.repository_name().unwrap_or_default();
            if name.starts_with("repo-") && name.ends_with(&format!("-{suffix}")) {
                out.insert(name.to_string(), r.clone());
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

fn output_map(stack: &Stack, key: &str) -> BTreeMap<String, String> {
    stack
        .output(key)
        .as_object()
        .unwrap_or_else(|| panic!("output {key} is not an object"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

async fn check_repositories(stack: &Stack, services: &[&str]) {
    let sdk = sdk_config(&stack.endpoint).await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let suffix = stack.suffix.as_str();
    let key_arn = stack.output("kms_key_arn").as_str().unwrap().to_string();
    let repos = our_repositories(&ecr, suffix).await;
    let uris = output_map(stack, "ecr_repository_uris");
    let arns = output_map(stack, "ecr_repository_arns");
    assert_eq!(
        uris.keys().collect::<Vec<_>>(),
        {
            let mut s = services.to_vec();
            s.sort();
            s
        },
        "outputs list exactly the configured services"
    );
    assert_eq!(arns.len(), services.len());
    for svc in services {
        let name = format!("repo-{svc}-{suffix}");
        let r = repos
            .get(&name)
            .unwrap_or_else(|| panic!("no repository {name}: {:?}", repos.keys()));
        assert_eq!(r.repository_uri(), Some(uris[*svc].as_str()));
        assert_eq!(r.repository_arn(), Some(arns[*svc].as_str()));
        assert_eq!(
            r.image_scanning_configuration().map(|s| s.scan_on_push()),
            Some(true),
            "{name}: scan on push"
        );
        assert_eq!(
            r.image_tag_mutability(),
            Some(&ImageTagMutability::Immutable),
            "{name}"
        );
        let enc = r.encryption_configuration().expect("encryption");
        assert_eq!(enc.encryption_type(), &EncryptionType::Kms, "{name}");
        assert_eq!(enc.kms_key(), Some(key_arn.as_str()), "{name}");
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(r.repository_arn().unwrap())
            .send()
            .await
            .unwrap();
        let tag = |k: &str| {
            tags.tags()
                .iter()
                .find(|t| t.key() == k)
                .map(|t| t.value().to_string())
        };
        assert_eq!(
            tag("fintech-infra:stack").as_deref(),
            Some(suffix),
            "{name}"
        );
        assert_eq!(tag("Name").as_deref(), Some(name.as_str()));
        assert_eq!(tag("Environment").as_deref(), Some(suffix));
        assert_eq!(tag("Team").as_deref(), Some("platform"));
        assert_eq!(tag("CostCenter").as_deref(), Some("fintech"));
    }
}

#[test]
fn one_repository_per_service_scanned_immutable_and_encrypted_then_down_removes_them() {
    let stack = Stack::new("reg");

    // Default config: one `web` service, one repository.
    stack.up(&[]).assert_ok();
    block_on(check_repositories(&stack, &["web"]));
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        assert_eq!(our_repositories(&ecr, &stack.suffix).await.len(), 1);
    });

    // Three services: two more repositories, `web` adopted as it is.
    let cfg = stack.config(THREE_SERVICES);
    let cfg = cfg.to_str().unwrap();
    let three = stack.up(&["--config", cfg]);
    three.assert_ok();
    let s = three.summary();
    let created: Vec<&str> = s["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|o| o.ends_with("CreateRepository"))
        .collect();
    assert_eq!(created.len(), 2, "{s}");
    block_on(check_repositories(
        &stack,
        &["web", "payment-api", "tx-worker"],
    ));
    let recorded = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ecr:repository")
        .count();
    assert_eq!(recorded, 3);

    // A second up changes nothing.
    let again = stack.up(&["--config", cfg]);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");

    // Drift: tag mutability switched by hand is switched back.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        ecr.put_image_tag_mutability()
            .repository_name(format!("repo-payment-api-{}", stack.suffix))
            .image_tag_mutability(ImageTagMutability::Mutable)
            .send()
            .await
            .unwrap();
    });
    let fix = stack.up(&["--config", cfg]);
    fix.assert_ok();
    assert_eq!(fix.summary()["changes"]["changed"], 1, "{}", fix.summary());
    block_on(check_repositories(
        &stack,
        &["web", "payment-api", "tx-worker"],
    ));

    // A service removed from the config is no longer published; its repository stays
    // recorded, so `down` still deletes it.
    let two = stack.config(
        "[[services]]\nname = \"web\"\n\n[[services]]\nname = \"payment-api\"\ncpu = 1024\nmemory = 2048\n",
    );
    stack.up(&["--config", two.to_str().unwrap()]).assert_ok();
    assert_eq!(
        output_map(&stack, "ecr_repository_uris").len(),
        2,
        "the removed service is still published"
    );

    stack.down(&["--config", two.to_str().unwrap()]).assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        let left = our_repositories(&ecr, &stack.suffix).await;
        assert!(left.is_empty(), "repositories left: {:?}", left.keys());
        let tagged = remaining_tagged(&sdk, &stack.suffix).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
        let ec2 = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(ec2.is_empty(), "left behind in EC2: {ec2:?}");
    });
}

/// A new stack skips the lookups of what cannot be its own yet (`step::fresh`): an untagged
/// repository of its name, someone else's, is then met by the create. The create's
/// "already exists" makes the step look it up after all, and the lookup refuses it: it is
/// not adopted, and `down` leaves it alone.
#[test]
fn a_new_stack_refuses_an_untagged_repository_of_its_name() {
    let stack = Stack::new("rfor");
    let s = stack.suffix.clone();
    let name = format!("repo-web-{s}");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        aws_sdk_ecr::Client::new(&sdk)
            .create_repository()
            .repository_name(&name)
            .send()
            .await
            .unwrap();
    });
    let up = stack.up(&[]);
    assert_ne!(
        up.code, 0,
        "adopted someone else's repository: {}",
        up.stdout
    );
    assert!(
        up.stdout
            .contains(&format!("ECR repository `{name}` exists but is not tagged")),
        "{}",
        up.stdout
    );
    stack.down(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        let left = our_repositories(&ecr, &s).await;
        assert_eq!(
            left.keys().cloned().collect::<Vec<_>>(),
            vec![name.clone()],
            "only the foreign repository is left, untouched"
        );
        ecr.delete_repository()
            .repository_name(&name)
            .send()
            .await
            .unwrap();
    });
}
