//! Amazon CloudWatch Logs resource types.

pub mod log_group;

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_group_kind_is_registered() {
        assert!(crate::resources::provider(super::log_group::KIND).is_some());
    }
}
