//! The sales domain as pure state machines.
//!
//! Nothing in here performs IO, reads the clock or draws randomness: every
//! transition is a function of (state, input, now, playbook), so hosts can
//! replay inputs after a crash and get identical decisions.

/// A fieldless enum whose wire name, `as_str()` and `Display` come from one
/// list, so the three can never disagree.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// `FromStr` over a `named_enum!`'s wire names, rejecting with the module's
/// `Rejection::UnknownValue` so API errors list the accepted values.
macro_rules! parse_by_name {
    ($name:ident, $kind:literal, $err:ident) => {
        impl std::str::FromStr for $name {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $err::UnknownValue {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: Self::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }
    };
}

pub mod area_codes;
pub mod call;
pub mod compliance;
pub mod opportunity;
pub mod playbook;
pub mod text;
pub mod timeline;
