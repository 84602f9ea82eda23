//! `services[].capacity`: how a service's tasks split between FARGATE and FARGATE_SPOT, and the
//! reader that tells a written Spot floor from the default one.

use serde::Deserialize;

use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};
use serde::Deserializer;

/// How a service's tasks are split between FARGATE and FARGATE_SPOT: `fargate_base` tasks
/// always on FARGATE, the rest in the ratio of the weights.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    pub fargate_base: i32,
    pub fargate_weight: i32,
    pub spot_weight: i32,
}

impl Default for CapacityConfig {
    /// The web app's rule (seed 000: at least half of the capacity on Spot): no FARGATE base,
    /// then FARGATE : FARGATE_SPOT = 1 : 2. ECS places the base first, then the rest in the
    /// ratio of the weights; how it rounds a share that is not a whole number of tasks is not
    /// documented, so [`CapacityConfig::min_spot_tasks`] assumes the worst (Spot gets the
    /// share rounded down). Under that rule 1 : 2 keeps Spot at >= 50 % at every count from
    /// 2 up: 1 of 2 at min_count, 6 of 10 at max_count, 2 of 3, 2 of 4, 3 of 5 and so on.
    /// Why not the earlier `fargate_base = 1` with 1 : 1: the base task is on FARGATE, so at
    /// 2 tasks Spot gets at most the second one, and rounded down 0 of 1 (0 %); even at best
    /// 1 of 2 only when ECS rounds in Spot's favour. Why not 1 : 1 without a base: it meets
    /// 50 % at 2 and 10 but not at odd counts in between (1 of 3). The price of 1 : 2 is that
    /// no task is guaranteed to be on FARGATE (a base needs one); at 2 tasks ECS's split
    /// normally puts one on each.
    fn default() -> Self {
        CapacityConfig {
            fargate_base: 0,
            fargate_weight: 1,
            spot_weight: 2,
        }
    }
}

impl CapacityConfig {
    /// The fewest of `tasks` running tasks this split is sure to put on FARGATE_SPOT: the
    /// base goes to FARGATE first (ECS fills the base before weighing), the rest is shared by
    /// weight and Spot's share rounded down, since ECS does not document its rounding.
    pub fn min_spot_tasks(&self, tasks: u32) -> u32 {
        let base = u64::try_from(self.fargate_base.max(0)).unwrap_or(0);
        let rest = u64::from(tasks).saturating_sub(base);
        let spot = u64::try_from(self.spot_weight.max(0)).unwrap_or(0);
        let total = spot + u64::try_from(self.fargate_weight.max(0)).unwrap_or(0);
        if total == 0 {
            return 0;
        }
        u32::try_from(rest * spot / total).unwrap_or(tasks)
    }

    /// Whether at least `percent` % of `tasks` tasks are sure to run on Spot (no tasks: yes).
    pub fn meets_spot_percent(&self, tasks: u32, percent: u32) -> bool {
        u64::from(self.min_spot_tasks(tasks)) * 100 >= u64::from(percent) * u64::from(tasks)
    }
}

/// Reads a written `capacity` table: the split with [`CapacityConfig`]'s own derived reader
/// (its fields, defaults and errors), and `min_spot_percent` beside it, which is the
/// service's (checked against its counts, kept in [`ServiceConfig::min_spot_percent`]) and
/// not part of the split ECS is given.
pub(crate) fn capacity_and_floor<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<(CapacityConfig, Option<u32>)>, D::Error> {
    struct Table;
    impl<'de> Visitor<'de> for Table {
        type Value = (CapacityConfig, Option<u32>);
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a capacity table")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let mut table = FloorTap {
                map,
                fields: &[],
                floor: None,
            };
            let split = CapacityConfig::deserialize(&mut table)?;
            Ok((split, table.floor))
        }
    }
    d.deserialize_map(Table).map(Some)
}

/// The key of the Spot floor in a `capacity` table.
const FLOOR: &str = "min_spot_percent";

/// A `capacity` table as [`CapacityConfig`] sees it: every key but [`FLOOR`], whose value is
/// kept aside. Keys go through the TOML reader's own key seed, so an unknown key is still
/// reported at its line.
struct FloorTap<A> {
    map: A,
    /// [`CapacityConfig`]'s fields, as its derived reader announces them.
    fields: &'static [&'static str],
    floor: Option<u32>,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for &mut FloorTap<A> {
    type Error = A::Error;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.fields = fields;
        visitor.visit_map(self)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FloorTap<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        mut seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let key = TapKey {
                seed,
                fields: self.fields,
            };
            match self.map.next_key_seed(key)? {
                None => return Ok(None),
                Some(Tapped::Field(k)) => return Ok(Some(k)),
                Some(Tapped::Floor(unused)) => {
                    self.floor = Some(self.map.next_value()?);
                    seed = unused;
                }
            }
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A key of a `capacity` table: [`FLOOR`] (handing the derived reader's seed back for the
/// next key), or one of the split's fields read by that seed.
struct TapKey<S> {
    seed: S,
    fields: &'static [&'static str],
}

enum Tapped<S, K> {
    Floor(S),
    Field(K),
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for TapKey<S> {
    type Value = Tapped<S, S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(d)?;
        if key == FLOOR {
            return Ok(Tapped::Floor(self.seed));
        }
        if !self.fields.contains(&key.as_str()) {
            // serde's own wording, with the floor among the keys a table may have.
            let expected: Vec<String> = self
                .fields
                .iter()
                .chain(&[FLOOR])
                .map(|f| format!("`{f}`"))
                .collect();
            return Err(D::Error::custom(format!(
                "unknown field `{key}`, expected one of {}",
                expected.join(", ")
            )));
        }
        self.seed
            .deserialize(serde::de::value::StringDeserializer::<D::Error>::new(key))
            .map(Tapped::Field)
    }
}

/// Seed 000's Spot floor for the web app: at least half of its tasks on FARGATE_SPOT.
pub const WEB_MIN_SPOT_PERCENT: u32 = 50;
