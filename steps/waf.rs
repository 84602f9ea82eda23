//! WAF step: a regional WAFv2 web ACL `waf-<s>` in front of the ALB, when `[waf] enabled`.
//!
//! Rules, in evaluation order: AWS's managed common rule set (OWASP-style protections), AWS's
//! known-bad-inputs set (Log4j, exploit payloads), and a rate-based rule blocking any client IP
//! that sends more than `waf.rate_limit` requests in 5 minutes. The ACL is associated with the
//! ALB. Both are providers in [`crate::resources::wafv2`]; this step decides what to build.
//!
//! The step is always in the graph, and does nothing without `[waf] enabled` and without
//! records: that way an `up` with WAF disabled removes a web ACL an earlier `up` created, as
//! the config says, without `steps::all` having to read the state. (`down` needs no step: it
//! deletes whatever the state records.)
//!
//! `down` disassociates before deleting the ACL or the ALB: in `BUILT_ON`
//! (`src/resources/deps.rs`) the association is built on its web ACL and its load balancer.
//! The web ACL provider deletes with the ACL's current lock token, retrying with a fresh one
//! if the ACL changed meanwhile and while WAF still reports it in use.
//!
//! The cdn step keeps the distribution's own ACL (Security Hub CloudFront.6) through the same
//! web ACL provider: Scope CLOUDFRONT, in us-east-1 only, named in the distribution's
//! `WebACLId` rather than associated.

/// The `[waf]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_wafv2::types::Scope;

use crate::resources::wafv2::{association, web_acl};
use crate::step::{Step, StepCtx};

pub use crate::outputs::waf::*;

pub use crate::resources::wafv2::web_acl::{MANAGED_GROUPS, RATE_RULE};
pub use crate::resources::wafv2::CLOUDFRONT_REGION;

pub const WEB_ACL: &str = web_acl::KIND;
pub const ASSOCIATION: &str = association::KIND;

pub struct Waf;

impl Waf {
    /// Disassociates and deletes every recorded web ACL.
    async fn remove(&self, ctx: &StepCtx) -> Result<()> {
        crate::resources::delete_recorded(ctx, ASSOCIATION).await?;
        web_acl::delete_recorded(ctx).await?;
        for key in [OUT_ARN, OUT_ID] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step for Waf {
    fn name(&self) -> &'static str {
        "waf"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["alb"]
    }

    fn estimate_secs(&self) -> u64 {
        15
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let cfg = &ctx.cfg().waf;
        if !cfg.enabled {
            let recorded = ctx.records(Some(WEB_ACL));
            if let Some(rec) = recorded.first() {
                ctx.change(WEB_ACL, &rec.name, "remove: [waf] is not enabled", || {
                    self.remove(ctx)
                })
                .await?;
            }
            return Ok(());
        }
        let alb_arn = ctx.input_str(crate::outputs::alb::OUT_ARN)?;
        let name = ctx.names().of("waf");
        let rate_limit = cfg.rate_limit.0;
        let acl = web_acl::ensure(ctx, Scope::Regional, &name, "ALB", rate_limit).await?;
        if ctx.no_wait() && !ctx.is_plan() {
            // `up --no-wait` leaves the load balancer provisioning (see the alb step), and WAF
            // cannot associate an ACL with it before it is active
            // (WAFUnavailableEntityException for as long as it provisions).
            crate::resources::elasticloadbalancing::load_balancer::wait_active(ctx, &alb_arn)
                .await?;
        }
        association::ensure(
            ctx,
            &format!("{name} -> {}", ctx.names().of("alb")),
            &acl.id,
            &alb_arn,
        )
        .await?;
        if !acl.is_pending() {
            ctx.set_output(OUT_ARN, acl.id.clone())?;
            ctx.set_output(OUT_ID, acl.attrs.get("id").cloned().unwrap_or_default())?;
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_waf_kind_is_registered() {
        for kind in [WEB_ACL, ASSOCIATION] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }
}
