//! A command's argv kept in one heap block.
//!
//! A run keeps the definition of each of its procs to its end: a `Vec<String>` costs a
//! block for the vector and one per argument (two 32-byte blocks for `["/usr/bin/true"]`),
//! this one block for the whole command.

use std::fmt;

/// The arguments of a command, each written as its length in bytes, a colon and its text
/// (`["ls", "-l"]` is `2:ls2:-l`): any text may be an argument, a colon or a NUL included.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Argv(Box<str>);

impl Argv {
    /// The arguments, in order.
    pub fn iter(&self) -> Args<'_> {
        Args(&self.0)
    }

    /// Whether it has no argument.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Argv {
    /// Writes the text in one block of its exact size (a definition of 10,000 commands
    /// made a string per length and grew the text several times per command).
    fn from_iter<I: IntoIterator<Item = S>>(args: I) -> Argv {
        let args: Vec<S> = args.into_iter().collect();
        let size = args
            .iter()
            .map(|a| decimal_len(a.as_ref().len()) + 1 + a.as_ref().len())
            .sum();
        let mut text = String::with_capacity(size);
        for arg in &args {
            let arg = arg.as_ref();
            push_decimal(&mut text, arg.len());
            text.push(':');
            text.push_str(arg);
        }
        Argv(text.into_boxed_str())
    }
}

/// How many digits `n` has in decimal.
fn decimal_len(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Appends `n` in decimal.
fn push_decimal(text: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    text.extend(digits[i..].iter().map(|&d| char::from(d)));
}

impl From<Vec<String>> for Argv {
    fn from(args: Vec<String>) -> Argv {
        args.into_iter().collect()
    }
}

impl fmt::Debug for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Argv {
    type Item = &'a str;
    type IntoIter = Args<'a>;

    fn into_iter(self) -> Args<'a> {
        self.iter()
    }
}

/// The arguments of an [`Argv`].
#[derive(Clone)]
pub struct Args<'a>(&'a str);

impl<'a> Iterator for Args<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_once(':')?;
        let len: usize = len.parse().ok()?;
        // Made by `Argv::from_iter`: `len` bytes of `rest` are one whole argument.
        let (arg, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some(arg)
    }
}

#[cfg(test)]
mod tests {
    use super::Argv;

    #[test]
    fn every_argument_comes_back_as_given() {
        let given = ["/usr/bin/env", "", "a:b", "12:x", "é ü", "nul\0inside", "9"];
        let argv: Argv = given.iter().collect();
        assert_eq!(argv.iter().collect::<Vec<_>>(), given);
        assert!(!argv.is_empty());
        assert!(Argv::from(Vec::new()).is_empty());
        assert_eq!(format!("{argv:?}"), format!("{given:?}"));
    }

    #[test]
    fn lengths_of_any_size_are_written_in_decimal() {
        let long = "x".repeat(12_345);
        let given = ["", "a", "0123456789", long.as_str()];
        let argv: Argv = given.iter().collect();
        assert_eq!(argv.iter().collect::<Vec<_>>(), given);
        assert!(format!("{:?}", argv.0).starts_with("\"0:1:a10:012345678912345:x"));
    }
}
