//! Word forms shared by everything that matches a customer's words against
//! names (the shop's catalogue, the items of an order).

/// A plural's singular by the regular English rules; other words as they
/// are. Both sides of a comparison go through it, so an irregular form
/// only has to be listed as it is written.
pub fn singular(word: &str) -> String {
    let n = word.chars().count();
    if n <= 3 || word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for ending in ["ches", "shes", "xes", "sses"] {
        if word.ends_with(ending) {
            return word[..word.len() - 2].to_string();
        }
    }
    match word.strip_suffix('s') {
        Some(stem) if !stem.ends_with('\'') => stem.to_string(),
        _ => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_forms() {
        for (plural, single) in [
            ("mugs", "mug"),
            ("pillowcases", "pillowcase"),
            ("dishes", "dish"),
            ("categories", "category"),
            ("glass", "glass"),
            ("bus", "bus"),
        ] {
            assert_eq!(singular(plural), single);
        }
    }
}
