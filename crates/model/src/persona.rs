//! Persona prompts: the Dream page's prompt is `"<persona> <base prompt>"`.
//!
//! ```
//! use dreamgate_model::persona::{prompt, Persona, DEFAULT_BASE_PROMPT};
//! assert_eq!(prompt(Persona::Female, "neon city"), "female neon city");
//! assert_eq!(prompt(Persona::Androgynous, "  "), format!("androgynous {DEFAULT_BASE_PROMPT}"));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The base prompt used when none (or only whitespace) is given.
pub const DEFAULT_BASE_PROMPT: &str = "cartoon magical dj blue sparkle";

/// Who the generated character presents as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Persona {
    /// id `androgynous`, label "Neutral" (the default).
    #[default]
    Androgynous,
    /// id `female`, label "Female".
    Female,
    /// id `male`, label "Male".
    Male,
}

impl Persona {
    /// Every persona, in menu order.
    pub const ALL: [Persona; 3] = [Persona::Androgynous, Persona::Female, Persona::Male];

    /// The id, which is also the word put in front of the prompt.
    pub fn id(self) -> &'static str {
        match self {
            Persona::Androgynous => "androgynous",
            Persona::Female => "female",
            Persona::Male => "male",
        }
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Persona::Androgynous => "Neutral",
            Persona::Female => "Female",
            Persona::Male => "Male",
        }
    }
}

impl fmt::Display for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// An unknown persona id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown persona {0:?} (expected androgynous, female or male)")]
pub struct UnknownPersona(pub String);

impl FromStr for Persona {
    type Err = UnknownPersona;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Persona::ALL.into_iter().find(|p| p.id() == s).ok_or_else(|| UnknownPersona(s.to_owned()))
    }
}

/// The prompt for `persona` and `base`: `"<persona> <base>"`, with
/// [`DEFAULT_BASE_PROMPT`] when `base` is empty or whitespace (`base` is trimmed).
pub fn prompt(persona: Persona, base: &str) -> String {
    let base = match base.trim() {
        "" => DEFAULT_BASE_PROMPT,
        trimmed => trimmed,
    };
    format!("{} {base}", persona.id())
}
