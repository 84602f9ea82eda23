//! Sections checked as a whole once serde has read them: the one mechanism for rules that
//! span a section's fields (min below max, `domain` or `arn`, a CPU's memory sizes), so a
//! section is declared once and its rules are a method.
//!
//! A section derives `Deserialize` with `#[serde(remote = "Self")]`, which makes the derived,
//! field-by-field reader an inherent `Section::deserialize` instead of the trait impl;
//! `validated!(Section)` then implements the trait as "read the fields, then
//! [`Validate::validate`]". So there is no way to read a section without its checks, and the
//! derive keeps what it is good at: unknown fields, defaults, and each value's own error at
//! the value's line.
//!
//! Where the error goes: serde lets a `Deserialize` impl report only a message, and the TOML
//! reader attaches the span of the value being read, here the section's table. So a
//! [`FieldError`] travels as the message "`field`: rule", and [`super::toml_error`] turns that
//! back into "`section.field` in [section] at line N: rule" (see [`split_field_error`]).

use serde::de::Error;

/// A section's broken rule: the field it is about (relative to the section, e.g. `min_count`
/// or `capacity.min_spot_percent`) and what is wrong, with the allowed values.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// The form the TOML error's message carries, which [`split_field_error`] reads back.
impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

/// The cross-field rules of a section, run right after its fields are read. It may also
/// normalise what was written (lowercase a domain, sort a list, fill a default that depends on
/// another field), hence `&mut`.
pub trait Validate {
    fn validate(&mut self) -> Result<(), FieldError>;
}

/// A section read by its derived reader, then checked; the error is serde's custom one, which
/// the TOML reader places at the section.
pub(crate) fn checked<T: Validate, E: Error>(mut section: T) -> Result<T, E> {
    section.validate().map_err(E::custom)?;
    Ok(section)
}

/// Implements `Deserialize` for a section that derives it with `#[serde(remote = "Self")]` and
/// implements [`Validate`].
macro_rules! validated {
    ($t:ident) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // The inherent (derived, unchecked) reader: inherent functions win over the
                // trait's in a `Type::name` path.
                $crate::config::validated::checked($t::deserialize(d)?)
            }
        }
    };
}

/// `Err(FieldError)` for `field`, the rest formatted as by `format!`:
/// `return field_error!("min_count", "min_count {} is above max_count {}", lo, hi);`.
macro_rules! field_error {
    ($field:expr, $($message:tt)+) => {
        Err($crate::config::validated::FieldError::new($field, format!($($message)+)))
    };
}

/// A message made by [`FieldError`]'s `Display`, split into the field and the rule; `None`
/// for any other message (serde's and the value types' own start with a word, not a
/// backquoted field name followed by a colon).
pub(super) fn split_field_error(message: &str) -> Option<(&str, &str)> {
    let (field, rule) = message.strip_prefix('`')?.split_once("`: ")?;
    let is_path = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    is_path.then_some((field, rule))
}
