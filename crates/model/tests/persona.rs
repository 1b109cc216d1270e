//! Persona prompts.

use dreamgate_model::persona::{prompt, Persona, DEFAULT_BASE_PROMPT};
use dreamgate_model::{default_params, Prompt};

#[test]
fn ids_and_labels() {
    let table: Vec<(&str, &str)> = Persona::ALL.iter().map(|p| (p.id(), p.label())).collect();
    assert_eq!(table, [("androgynous", "Neutral"), ("female", "Female"), ("male", "Male")]);
    for p in Persona::ALL {
        assert_eq!(p.id().parse::<Persona>(), Ok(p));
        assert_eq!(serde_json::to_value(p).unwrap(), p.id());
    }
    assert!("neutral".parse::<Persona>().is_err());
    assert_eq!(Persona::default(), Persona::Androgynous);
}

#[test]
fn prompt_is_persona_then_base() {
    assert_eq!(DEFAULT_BASE_PROMPT, "cartoon magical dj blue sparkle");
    assert_eq!(prompt(Persona::Male, "neon city"), "male neon city");
    assert_eq!(prompt(Persona::Female, "  neon city \n"), "female neon city");
    assert_eq!(prompt(Persona::Female, DEFAULT_BASE_PROMPT), "female cartoon magical dj blue sparkle");
}

#[test]
fn empty_or_whitespace_base_falls_back_to_default() {
    for base in ["", "   ", "\t\n"] {
        assert_eq!(prompt(Persona::Androgynous, base), "androgynous cartoon magical dj blue sparkle");
    }
}

#[test]
fn default_prompt_is_the_neutral_persona() {
    assert_eq!(default_params().prompt, Some(Prompt::from(prompt(Persona::Androgynous, "").as_str())));
}
