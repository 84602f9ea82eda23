//! AWS WAFv2 resource types: the stack's web ACLs (the regional one in front of the ALB,
//! kept by the waf step; the CLOUDFRONT-scope one on the distribution, kept by the cdn step)
//! and the ALB's association.
//!
//! WAF serves the CLOUDFRONT scope from us-east-1 only ([`CLOUDFRONT_REGION`]), and
//! changes propagate with a delay: a new ACL may not be associable yet, an ACL stays "in use"
//! for a moment after its disassociation, and every update or delete needs the ACL's current
//! lock token. The answers that resolve by themselves are retried ([`retryable`]) for up to
//! [`PROPAGATION_TIMEOUT`].

use std::time::Duration;

use crate::aws::AwsError;

pub mod association;
pub mod web_acl;

/// The region CLOUDFRONT-scope web ACLs are managed in (AWS refuses the scope elsewhere:
/// `WAFInvalidParameterException`, field `SCOPE_VALUE`).
pub const CLOUDFRONT_REGION: &str = "us-east-1";

/// How long AWS may report a new web ACL as unavailable for association.
pub const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(120);

/// WAF's answers that resolve by retrying: a stale lock token, an ACL still associated while
/// the disassociation propagates, a new ACL not yet usable.
pub fn retryable(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some(
            "WAFOptimisticLockException"
                | "WAFAssociatedItemException"
                | "WAFUnavailableEntityException"
        )
    )
}
