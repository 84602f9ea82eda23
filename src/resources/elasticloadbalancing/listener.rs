//! `elasticloadbalancing:listener`: a listener of the ALB on port 80 or 443, created or kept
//! in line (protocol, TLS policy, certificate, default action), removed when the config no
//! longer asks for it.
//!
//! AWS refuses a certificate that is not issued yet on a listener, so the HTTPS listener
//! exists only once ACM has issued the certificate; until then the HTTP listener forwards.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Certificate, Listener, ProtocolEnum};

use super::{elb_tags, listener_rule, ListenerDefault};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "elasticloadbalancing:listener";

/// TLS 1.3 and 1.2 only, forward-secret ciphers: AWS's recommended policy.
pub const SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

pub struct ListenerProvider;

/// The load balancer's listeners as they are.
pub async fn list(ctx: &StepCtx, lb_arn: &str) -> Result<Vec<Listener>> {
    Ok(ctx
        .aws()
        .elb()
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeListeners", lb_arn)?
        .listeners()
        .to_vec())
}

/// Creates the listener on `port` of the load balancer `lb_arn` (HTTPS with `cert`, else
/// HTTP), or brings the `existing` one's default action (and certificate) in line. Recorded
/// as `<alb name>:<port>`.
pub async fn ensure(
    ctx: &StepCtx,
    lb_arn: &str,
    existing: Option<&Listener>,
    port: i32,
    cert: Option<&str>,
    default: &ListenerDefault,
) -> Result<Found> {
    let elb = ctx.aws().elb();
    let name = format!("{}:{port}", ctx.names().of("alb"));
    let protocol = if cert.is_some() {
        ProtocolEnum::Https
    } else {
        ProtocolEnum::Http
    };
    let found = ctx
        .ensure(
            KIND,
            &name,
            || async {
                Ok(existing.and_then(|l| {
                    l.listener_arn()
                        .map(|a| Found::new(a).arn(a).attr("port", port.to_string()))
                }))
            },
            || async {
                let out = elb
                    .create_listener()
                    .load_balancer_arn(lb_arn)
                    .protocol(protocol.clone())
                    .port(port)
                    .set_ssl_policy(cert.map(|_| SSL_POLICY.to_string()))
                    .set_certificates(
                        cert.map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                    )
                    .default_actions(default.action())
                    .set_tags(Some(elb_tags(ctx, &name)))
                    .send()
                    .await
                    .aws("elasticloadbalancing:CreateListener", &name)?;
                let arn = out
                    .listeners()
                    .first()
                    .and_then(|l| l.listener_arn())
                    .context("CreateListener returned no ARN")?;
                Ok(Found::new(arn).arn(arn).attr("port", port.to_string()))
            },
        )
        .await?;
    if let Some(l) = existing {
        let cert_ok = match cert {
            None => l.protocol() == Some(&ProtocolEnum::Http),
            Some(c) => {
                l.protocol() == Some(&ProtocolEnum::Https)
                    && l.ssl_policy() == Some(SSL_POLICY)
                    && l.certificates()
                        .iter()
                        .any(|x| x.certificate_arn() == Some(c))
            }
        };
        if !cert_ok || !default.matches(l.default_actions()) {
            let what = match cert {
                Some(c) => format!("HTTPS with {SSL_POLICY} and {c}; {}", default.describe()),
                None => default.describe(),
            };
            ctx.change(KIND, &name, &what, || async {
                elb.modify_listener()
                    .listener_arn(&found.id)
                    .protocol(protocol.clone())
                    .port(port)
                    .set_ssl_policy(cert.map(|_| SSL_POLICY.to_string()))
                    .set_certificates(
                        cert.map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                    )
                    .default_actions(default.action())
                    .send()
                    .await
                    .aws("elasticloadbalancing:ModifyListener", &name)?;
                Ok(())
            })
            .await?;
        }
    }
    Ok(found)
}

/// Removes the listener `arn` the config no longer asks for (`why`, as `plan` reports it),
/// and forgets it and its rules (ELB deletes a listener's rules with it).
pub async fn remove(ctx: &StepCtx, arn: &str, why: &str) -> Result<()> {
    let elb = ctx.aws().elb();
    ctx.change(KIND, arn, why, || async {
        elb.delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .aws("elasticloadbalancing:DeleteListener", arn)
            .not_found_ok()?;
        ctx.forget(KIND, arn)?; // a no-op when it was not recorded
        for r in ctx.records(Some(listener_rule::KIND)) {
            if r.attrs.get("listener_arn").map(String::as_str) == Some(arn) {
                ctx.forget(listener_rule::KIND, &r.id)?;
            }
        }
        Ok(())
    })
    .await
}

/// Deletes the listener `arn`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, arn: &str) -> Result<()> {
    let elb = ctx.aws().elb();
    ctx.retry_dependency(&format!("{KIND} {arn}"), || async {
        elb.delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .map(|_| ())
            .aws("elasticloadbalancing:DeleteListener", arn)
    })
    .await
}

#[async_trait]
impl Provider for ListenerProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .elb()
            .describe_listeners()
            .listener_arns(id)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeListeners", id)
            .not_found_ok()?
            .filter(|o| !o.listeners().is_empty())
            .map(|_| "exists".into()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
