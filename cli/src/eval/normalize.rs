//! Text normalisation before scoring, the usual way for English and French
//! read speech (LibriSpeech references are upper case without punctuation;
//! the model writes cased, punctuated text): lower case; typographic
//! apostrophes as `'`; every other character that is not a letter or a digit
//! a word break, hyphens included; apostrophes kept inside words (`don't`,
//! `l'homme`, `aujourd'hui`) and dropped at their edges; accents kept (`é` is
//! not `e` in French); numbers left as written (no number ↔ word rewriting:
//! the model and LibriSpeech both write them as words).

/// The normalised words of `text`.
pub fn words(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\'' => cleaned.push('\''),
            c if c.is_alphanumeric() => cleaned.extend(c.to_lowercase()),
            _ => cleaned.push(' '),
        }
    }
    cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn english() {
        assert_eq!(
            words("Well, I DON'T know — it's twenty-one \"o'clock\"!"),
            ["well", "i", "don't", "know", "it's", "twenty", "one", "o'clock"]
        );
        assert_eq!(words("the dogs' 'tis"), ["the", "dogs", "tis"]);
        assert_eq!(words("In 1984."), ["in", "1984"]);
    }

    #[test]
    fn french() {
        assert_eq!(
            words("L’homme a mangé des crêpes aujourd'hui. Œuvre ? Oui !"),
            [
                "l'homme",
                "a",
                "mangé",
                "des",
                "crêpes",
                "aujourd'hui",
                "œuvre",
                "oui"
            ]
        );
    }

    #[test]
    fn nothing_to_score() {
        assert!(words("").is_empty());
        assert!(words(" … — ' ").is_empty());
    }
}
