//! Unit tests of the step context's helpers.

use std::time::Duration;

use super::*;

#[test]
fn poll_cap_takes_0_1_to_60_seconds_and_names_the_range_otherwise() {
    assert_eq!(parse_max_poll("1"), Ok(Duration::from_secs(1)));
    assert_eq!(parse_max_poll("0.5"), Ok(Duration::from_millis(500)));
    for bad in ["0", "-1", "61", "x", ""] {
        let e = parse_max_poll(bad).unwrap_err();
        assert!(e.contains("0.1 to 60"), "{bad}: {e}");
    }
}
