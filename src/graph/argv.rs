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
    fn from_iter<I: IntoIterator<Item = S>>(args: I) -> Argv {
        let mut text = String::new();
        for arg in args {
            let arg = arg.as_ref();
            text.push_str(&arg.len().to_string());
            text.push(':');
            text.push_str(arg);
        }
        Argv(text.into_boxed_str())
    }
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
}
