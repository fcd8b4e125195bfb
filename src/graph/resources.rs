//! What one run of a proc needs (`resources: #{ cpus: 2, mem: "4G", gpu: 1 }`), and the
//! budget the local scheduler keeps the running procs' sum within.
//!
//! Every amount is a whole number. `mem` is counted in bytes: a number means MiB (as in
//! Slurm's `--mem`), a string takes a binary suffix (`"512M"`, `"8G"`, `"1T"`: K, M, G, T
//! are powers of 1024; a trailing `B` or `iB` is allowed). `cpus` is a count: a whole
//! number, never a size (`"2K"` CPUs is a mistake, not 2048). Any other name (`gpu`,
//! `db_conn`, `scratch`) is a plain count, or a size string too: prun cannot tell which
//! the user means.

use std::collections::BTreeMap;
use std::fmt;

/// The name of the memory resource, the one whose numbers mean MiB.
pub(crate) const MEM: &str = "mem";
/// The name of the CPU resource.
pub(crate) const CPUS: &str = "cpus";

/// Amounts by resource name. A name that is absent counts as zero. One word when no name
/// is given (most procs declare no resources, and a run keeps each proc's definition).
#[derive(Debug, Clone, Default)]
#[expect(
    clippy::box_collection,
    reason = "a thin pointer: one word, not a map's three"
)]
pub(crate) struct Resources(Option<Box<BTreeMap<String, u64>>>);

impl PartialEq for Resources {
    fn eq(&self, other: &Resources) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Resources {}

impl Resources {
    /// No amounts.
    pub(crate) const fn new() -> Resources {
        Resources(None)
    }

    /// The amounts given, if any.
    fn map(&self) -> Option<&BTreeMap<String, u64>> {
        self.0.as_deref()
    }

    /// Nothing at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.map().is_none_or(|m| m.values().all(|&n| n == 0))
    }

    /// The amount of `name` (zero when absent).
    pub(crate) fn get(&self, name: &str) -> u64 {
        self.map().and_then(|m| m.get(name)).copied().unwrap_or(0)
    }

    /// Whether `name` is given at all (a budget without it has none of it).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map().is_some_and(|m| m.contains_key(name))
    }

    /// Sets the amount of `name`.
    pub(crate) fn set(&mut self, name: &str, amount: u64) {
        self.0
            .get_or_insert_default()
            .insert(name.to_string(), amount);
    }

    /// Every name with its amount, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.map()
            .into_iter()
            .flatten()
            .map(|(k, &v)| (k.as_str(), v))
    }

    /// Adds `other` to these amounts.
    pub(crate) fn add(&mut self, other: &Resources) {
        for (k, v) in other.iter() {
            let n = self
                .0
                .get_or_insert_default()
                .entry(k.to_string())
                .or_default();
            *n = n.saturating_add(v);
        }
    }

    /// Takes `other` away from these amounts (never below zero).
    pub(crate) fn sub(&mut self, other: &Resources) {
        for (k, v) in other.iter() {
            if let Some(n) = self.0.as_mut().and_then(|m| m.get_mut(k)) {
                *n = n.saturating_sub(v);
            }
        }
    }

    /// Overrides or adds every amount of `other`.
    pub(crate) fn merge(&mut self, other: &Resources) {
        for (k, v) in other.iter() {
            self.set(k, v);
        }
    }

    /// The first resource `need` asks more of than this budget holds in all, with both
    /// amounts: a proc needing it can never start.
    pub(crate) fn exceeded_by<'a>(&self, need: &'a Resources) -> Option<(&'a str, u64, u64)> {
        need.iter()
            .find(|&(k, v)| v > self.get(k))
            .map(|(k, v)| (k, v, self.get(k)))
    }

    /// The host's budget: its CPUs (those this process may use) and its RAM, as they
    /// were when a run of this process first asked (each is a read of `/proc` or
    /// `/sys`, and the default `-j` asks for the CPUs too).
    pub(crate) fn host() -> Resources {
        static HOST: std::sync::OnceLock<Resources> = std::sync::OnceLock::new();
        HOST.get_or_init(|| {
            let mut r = Resources::default();
            r.set(CPUS, host_cpus() as u64);
            if let Some(mem) = host_memory() {
                r.set(MEM, mem);
            }
            r
        })
        .clone()
    }
}

impl fmt::Display for Resources {
    /// `cpus=2 mem=4G`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .iter()
            .map(|(k, v)| format!("{k}={}", amount(k, v)))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// An amount as a person reads it: memory with a binary suffix (`4G`, `512M`, and `23.5G`
/// for an amount that is no short whole number of any unit, such as the host's RAM),
/// counts as numbers.
pub(crate) fn amount(name: &str, n: u64) -> String {
    if name != MEM {
        return n.to_string();
    }
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (suffix, unit) in UNITS {
        if n >= unit && n.is_multiple_of(unit) && n / unit < 100_000 {
            return format!("{}{suffix}", n / unit);
        }
    }
    match UNITS.iter().find(|&&(_, unit)| n >= unit) {
        Some((suffix, unit)) => format!("{:.1}{suffix}", n as f64 / *unit as f64),
        None => format!("{n}B"),
    }
}

/// A resource amount that is not one: neither a whole number nor a size string, or one
/// past what fits in 64 bits; or a resource name that is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AmountError {
    /// An amount that is not one.
    #[error("`{name}` must be a whole number or a size like \"512M\" or \"8G\", not {value}")]
    Amount {
        /// The resource.
        name: String,
        /// The value given, in words (`-1`, `a string "8X"`).
        value: String,
    },
    /// A count that is not a whole number (`cpus: -1`, `cpus: 1.5`).
    #[error("`{name}` is a count: it must be a whole number like 2, not {value}")]
    NotCount {
        /// The resource.
        name: String,
        /// The value given, in words (`-1`).
        value: String,
    },
    /// A size given for a count (`cpus: "2K"`).
    #[error("`{name}` is a count: a whole number like 2, not {value} (a size suffix is for `mem`)")]
    Count {
        /// The resource.
        name: String,
        /// The value given, in words (`"2K"`).
        value: String,
    },
    /// An amount past what 64 bits hold (`mem: "99999999T"`).
    #[error("`{name}` {value} is too large: the largest is {}", largest(name))]
    TooLarge {
        /// The resource.
        name: String,
        /// The value given, in words (`"99999999T"`).
        value: String,
    },
    /// A name that messages and `prun list` (`needs gpu=1`) could not show as one word.
    #[error("{0:?} is not a resource name: a name is one word without `=` (like gpu or db_conn)")]
    Name(String),
}

/// The largest amount of `name` that prun holds (2^64 - 1), as a script may write it.
fn largest(name: &str) -> String {
    if name == MEM {
        format!("16777215T (as a number of MiB, {})", u64::MAX >> 20)
    } else {
        u64::MAX.to_string()
    }
}

/// A size string that is not one, or one past 64 bits.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadSize {
    /// Not a whole number with an optional binary suffix.
    Invalid,
    /// More than 2^64 - 1 bytes.
    TooLarge,
}

/// Reads one amount: a whole number (MiB for `mem`), or a size string (except for
/// `cpus`, a count).
pub(crate) fn parse_amount(name: &str, value: &rhai::Dynamic) -> Result<u64, AmountError> {
    let too_large = || AmountError::TooLarge {
        name: name.to_string(),
        value: crate::diag::value_words(value),
    };
    let bad = || match name {
        CPUS => AmountError::NotCount {
            name: name.to_string(),
            value: crate::diag::value_words(value),
        },
        _ => AmountError::Amount {
            name: name.to_string(),
            value: crate::diag::value_words(value),
        },
    };
    if let Ok(n) = value.as_int() {
        let n = u64::try_from(n).map_err(|_| bad())?;
        return if name == MEM {
            n.checked_mul(1 << 20).ok_or_else(too_large)
        } else {
            Ok(n)
        };
    }
    let s = value.clone().into_string().map_err(|_| bad())?;
    if name == CPUS {
        return s
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| match e.kind() {
                std::num::IntErrorKind::PosOverflow => too_large(),
                _ => AmountError::Count {
                    name: name.to_string(),
                    value: crate::diag::value_words(value),
                },
            });
    }
    parse_size(&s).map_err(|e| match e {
        BadSize::Invalid => bad(),
        BadSize::TooLarge => too_large(),
    })
}

/// `"8G"` → 8 GiB in bytes; `"100"` → 100.
pub(crate) fn parse_size(s: &str) -> Result<u64, BadSize> {
    let s = s.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let (digits, shift) = match s.char_indices().last().ok_or(BadSize::Invalid)? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        (i, 'T' | 't') => (&s[..i], 40),
        _ => (s, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            std::num::IntErrorKind::PosOverflow => BadSize::TooLarge,
            _ => BadSize::Invalid,
        })?;
    n.checked_mul(1u64 << shift).ok_or(BadSize::TooLarge)
}

/// Reads a `resources` map.
pub(crate) fn parse(map: &rhai::Map) -> Result<Resources, AmountError> {
    let mut r = Resources::default();
    for (k, v) in map {
        if k.is_empty() || k.contains(|c: char| c == '=' || c.is_whitespace() || c.is_control()) {
            return Err(AmountError::Name(k.to_string()));
        }
        r.set(k, parse_amount(k, v)?);
    }
    Ok(r)
}

/// The CPUs this process may use, as [`Resources::host`] counts them (read once).
pub(crate) fn host_cpus() -> usize {
    static CPUS_SEEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS_SEEN.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// MemTotal from /proc/meminfo, in bytes.
fn host_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_and_plain_mem_numbers_are_mib() {
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1.5G"), Err(BadSize::Invalid));
        assert_eq!(parse_size("G"), Err(BadSize::Invalid));
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 << 40));
        assert_eq!(parse_size("16777216T"), Err(BadSize::TooLarge));
        assert_eq!(parse_size("99999999999999999999"), Err(BadSize::TooLarge));
        assert_eq!(
            parse_amount(MEM, &rhai::Dynamic::from(512_i64)),
            Ok(512 << 20)
        );
        assert_eq!(parse_amount("gpu", &rhai::Dynamic::from(2_i64)), Ok(2));
        assert!(parse_amount("gpu", &rhai::Dynamic::from(-1_i64)).is_err());
        // 2^44 MiB is 2^64 bytes: too much, not zero.
        assert!(parse_amount(MEM, &rhai::Dynamic::from(1_i64 << 44)).is_err());
        assert_eq!(amount(MEM, 8 << 30), "8G");
        assert_eq!(amount(MEM, 1536 << 20), "1536M");
        assert_eq!(amount(MEM, 24_684_092 << 10), "23.5G");
        assert_eq!(amount(MEM, 1536 << 10), "1536K");
        assert_eq!(amount(MEM, (1 << 20) + 1), "1.0M");
        assert_eq!(amount(MEM, 1000), "1000B");
        assert_eq!(
            parse_amount(MEM, &rhai::Dynamic::from(-1_i64))
                .unwrap_err()
                .to_string(),
            "`mem` must be a whole number or a size like \"512M\" or \"8G\", not -1"
        );
        assert_eq!(amount("gpu", 3), "3");
    }

    #[test]
    fn cpus_are_a_count_without_a_size_suffix() {
        let s = |v: &str| rhai::Dynamic::from(v.to_string());
        assert_eq!(parse_amount(CPUS, &s("2")), Ok(2));
        assert_eq!(parse_amount("gpu", &s("2K")), Ok(2048));
        assert_eq!(
            parse_amount(CPUS, &s("2K")).unwrap_err().to_string(),
            "`cpus` is a count: a whole number like 2, not \"2K\" (a size suffix is for `mem`)"
        );
        assert!(parse_amount(CPUS, &s("-1")).is_err());
        assert_eq!(
            parse_amount(CPUS, &rhai::Dynamic::from(-1_i64))
                .unwrap_err()
                .to_string(),
            "`cpus` is a count: it must be a whole number like 2, not -1"
        );
    }

    #[test]
    fn a_name_that_is_no_word_is_refused() {
        let map = |name: &str| {
            let mut m = rhai::Map::new();
            m.insert(name.into(), rhai::Dynamic::from(1_i64));
            m
        };
        assert!(parse(&map("db_conn")).is_ok());
        for bad in ["", "a b", "a=b", "\t"] {
            assert_eq!(parse(&map(bad)).unwrap_err(), AmountError::Name(bad.into()));
        }
        assert_eq!(
            parse(&map("")).unwrap_err().to_string(),
            "\"\" is not a resource name: a name is one word without `=` (like gpu or db_conn)"
        );
    }

    #[test]
    fn a_need_beyond_the_budget_names_the_resource_and_both_amounts() {
        let mut budget = Resources::default();
        budget.set(CPUS, 2);
        budget.set(MEM, 4 << 30);
        let mut need = Resources::default();
        need.set(MEM, 8 << 30);
        assert_eq!(budget.exceeded_by(&need), Some((MEM, 8 << 30, 4 << 30)));
        need.set(MEM, 1 << 30);
        need.set("gpu", 1);
        assert_eq!(budget.exceeded_by(&need), Some(("gpu", 1, 0)));
        need.set("gpu", 0);
        assert_eq!(budget.exceeded_by(&need), None);
    }
}
