//! Address lists as the toolstacks write them: split, bounded, parsed,
//! without duplicates.

use crate::policy::{Cidr, Cidr4, Cidr6, MAX_ADDRESSES, Mode, PolicyError};

use super::provenance::Origin;

/// Splits a list value on whitespace and commas.
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
}

pub(crate) fn bounded(count: usize, what: &'static str) -> Result<(), PolicyError> {
    if count > MAX_ADDRESSES {
        Err(PolicyError::TooMany {
            what,
            count,
            max: MAX_ADDRESSES,
        })
    } else {
        Ok(())
    }
}

pub(crate) fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// Parses a list of IPv4 and IPv6 addresses or prefixes into `v4`/`v6`.
pub(crate) fn parse_mixed(
    items: &[&str],
    v4: &mut Vec<Cidr4>,
    v6: &mut Vec<Cidr6>,
) -> Result<(), PolicyError> {
    bounded(items.len(), "addresses")?;
    for item in items {
        match item.parse::<Cidr>()? {
            Cidr::V4(c) => push_unique(v4, c),
            Cidr::V6(c) => push_unique(v6, c),
        }
    }
    Ok(())
}

pub(crate) fn parse_v4_list(items: &[&str]) -> Result<Vec<Cidr4>, PolicyError> {
    bounded(items.len(), "IPv4 addresses")?;
    let mut out = Vec::new();
    for i in items {
        push_unique(&mut out, i.parse::<Cidr4>()?);
    }
    Ok(out)
}

pub(crate) fn parse_v6_list(items: &[&str]) -> Result<Vec<Cidr6>, PolicyError> {
    bounded(items.len(), "IPv6 addresses")?;
    let mut out = Vec::new();
    for i in items {
        push_unique(&mut out, i.parse::<Cidr6>()?);
    }
    Ok(out)
}

/// What a source contributes: the mode (`None` = `network_default`) and
/// the addresses, with their origins.
pub(crate) struct Addresses {
    pub mode: Option<Mode>,
    pub mode_origin: Vec<Origin>,
    pub ipv4: Vec<Cidr4>,
    pub ipv4_origin: Vec<Origin>,
    pub ipv6: Vec<Cidr6>,
    pub ipv6_origin: Vec<Origin>,
}
