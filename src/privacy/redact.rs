//! Finding personal data in free text (e-mail addresses, phone numbers,
//! card numbers, IBANs, street addresses) and replacing it with a marker
//! that says what was there: `[email]`, `[phone]`, `[card]`, `[iban]`,
//! `[address]`. Rules, not a model: a card number is one that passes the
//! Luhn check, an IBAN one that passes its mod-97 check, so order numbers,
//! amounts and dates stay.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Iban,
    Card,
    Phone,
    Address,
}

impl PiiKind {
    pub fn marker(self) -> &'static str {
        match self {
            PiiKind::Email => "[email]",
            PiiKind::Iban => "[iban]",
            PiiKind::Card => "[card]",
            PiiKind::Phone => "[phone]",
            PiiKind::Address => "[address]",
        }
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}").expect("regex")
});
static IBAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b").expect("regex")
});
/// 13 to 19 digits, in groups separated by single spaces or dashes.
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("regex"));
/// An international (+31, 0031) or national (0…) number in common layouts.
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\+|\b00|\b0)\d(?:[ ./-]?\(?\d{1,4}\)?){2,7}").expect("regex"));
/// "12 Baker Street", "Oudegracht 212", "Hauptstraße 5a".
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b\d{1,5}[a-zA-Z]?,? (?:[A-Z][a-z]+ ){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Close|Court|Ct|Place|Pl|Square|Sq|Crescent|Terrace|Gardens|Hill|Row|Walk)\b\.?",
        r"|\b[A-Z][a-zäöüß]*(?:straat|laan|weg|gracht|plein|kade|singel|dijk|steeg|pad|hof|markt|straße|strasse|gasse|allee|ring|platz|damm|ufer)\s\d{1,5}(?:\s?[a-zA-Z]\b|-\d{1,4})?"
    ))
    .expect("regex")
});

/// `text` with every piece of personal data replaced by its marker.
pub fn redact(text: &str) -> Cow<'_, str> {
    redact_found(text).0
}

/// Like [`redact`], with the kinds of data that were found, in order.
pub fn redact_found(text: &str) -> (Cow<'_, str>, Vec<PiiKind>) {
    let mut found = Vec::new();
    let mut out = Cow::Borrowed(text);
    for (kind, pattern, valid) in RULES {
        let replaced = pattern.replace_all(&out, |c: &Captures| {
            let m = &c[0];
            if valid(m) {
                found.push(kind);
                kind.marker().to_string()
            } else {
                m.to_string()
            }
        });
        if let Cow::Owned(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    (out, found)
}

type Rule = (PiiKind, &'static LazyLock<Regex>, fn(&str) -> bool);

/// In this order: an e-mail address may hold digits, an IBAN a card-like run.
const RULES: [Rule; 5] = [
    (PiiKind::Email, &EMAIL, |_| true),
    (PiiKind::Iban, &IBAN, iban_checks),
    (PiiKind::Card, &CARD, luhn_checks),
    (PiiKind::Phone, &PHONE, phone_length),
    (PiiKind::Address, &ADDRESS, |_| true),
];

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn luhn_checks(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| match (i % 2, x * 2) {
            (0, _) => x,
            (_, y) if y > 9 => y - 9,
            (_, y) => y,
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_checks(s: &str) -> bool {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        let width = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * width + value) % 97;
    }
    remainder == 1
}

/// A phone number has 9 to 15 digits: fewer is a price, a date or an order
/// number's tail.
fn phone_length(s: &str) -> bool {
    (9..=15).contains(&digits(s).len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_kind_is_replaced_by_its_marker() {
        let cases = [
            (
                "mail me at jan.de.vries+shop@example.co.uk please",
                "mail me at [email] please",
            ),
            (
                "my card is 4111 1111 1111 1111, expires soon",
                "my card is [card], expires soon",
            ),
            ("card 5500-0000-0000-0004", "card [card]"),
            (
                "IBAN NL91 ABNA 0417 1643 00 for the refund",
                "IBAN [iban] for the refund",
            ),
            ("iban nl91abna0417164300", "iban [iban]"),
            ("call me on +31 6 12345678", "call me on [phone]"),
            ("or 06-12345678 after six", "or [phone] after six"),
            ("tel (020) 123 4567", "tel ([phone]"),
            (
                "I live at 221 Baker Street, London",
                "I live at [address], London",
            ),
            (
                "send it to Oudegracht 212 in Utrecht",
                "send it to [address] in Utrecht",
            ),
            ("Hauptstraße 5a, Berlin", "[address], Berlin"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn order_numbers_amounts_and_dates_stay() {
        for text in [
            "where is my order LO-12345678?",
            "order #10482 cost €1,234.50",
            "it arrived on 01-12-2026 at 14:00",
            "4111 1111 1111 1112 fails the Luhn check",
            "I paid 89 euros and waited 10 business days",
            "Orders above €2,500 and 30 days",
            "NL00 ABNA 1234 5678 90 is not a valid IBAN",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn what_was_found_is_listed() {
        let (text, found) = redact_found("a@b.nl and 4111111111111111");
        assert_eq!(text, "[email] and [card]");
        assert_eq!(found, vec![PiiKind::Email, PiiKind::Card]);
        assert!(matches!(redact_found("nothing here").0, Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn redaction_is_idempotent_and_never_panics(text in "\\PC{0,200}") {
            let once = redact(&text).into_owned();
            prop_assert_eq!(redact(&once).into_owned(), once);
        }

        #[test]
        fn an_address_among_any_words_is_removed(
            before in "[a-z ]{0,30}",
            user in "[a-z][a-z0-9.]{0,10}[a-z0-9]",
            domain in "[a-z]{2,10}",
            after in "[a-z ]{0,30}",
        ) {
            let email = format!("{user}@{domain}.com");
            let text = format!("{before} {email} {after}");
            prop_assert!(!redact(&text).contains(&email));
        }
    }
}
