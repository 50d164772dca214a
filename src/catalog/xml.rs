//! Parsing XML from the tree with memory linear in its size.
//!
//! roxmltree (0.21) expands internal entities (`<!ENTITY name "value">`,
//! declared in the document's own DTD) and limits only their nesting (depth
//! 10, 255 references below one top-level reference), not how many times a
//! large entity is used: a 130 KB file can expand to 1 GB. The fixtures
//! (and the reference implementation) accept a DTD with small entities, so
//! DTDs stay allowed; instead, before parsing, [`expansion_bound`] computes
//! an upper bound of the bytes entity references can add, and a document
//! whose bound exceeds [`expansion_budget`] is refused with an error (a
//! catalog warning for that file). The catalog parses only `repomd.xml`;
//! primary, filelists, other and comps files are hashed, never parsed.

/// Entities every XML parser knows without a declaration.
const PREDEFINED: [&str; 5] = ["amp;", "lt;", "gt;", "quot;", "apos;"];

/// References one top-level reference may resolve below it in roxmltree
/// (its `LoopDetector`: 255 nested references), plus itself.
const REFERENCES_PER_TOP_LEVEL: u128 = 256;

/// The bytes entity expansion may add to a document of `len` bytes:
/// 1 MiB plus four times its size.
pub fn expansion_budget(len: usize) -> u128 {
    (1 << 20) + 4 * len as u128
}

/// An upper bound, in bytes, of what expanding internal entities can add
/// when roxmltree parses `text`: (references to declared entities) × 256 ×
/// (longest entity value). Every entity value roxmltree uses is the quoted
/// text after a `<!ENTITY` of the input (no external entities are resolved),
/// so the longest such quoted text bounds each single expansion step.
/// 0 when the text declares no entity.
pub fn expansion_bound(text: &str) -> u128 {
    let longest = longest_entity_value(text);
    if longest == 0 {
        return 0;
    }
    let references = text
        .match_indices('&')
        .filter(|&(i, _)| {
            let rest = &text[i + 1..];
            !rest.starts_with('#') && !PREDEFINED.iter().any(|p| rest.starts_with(p))
        })
        .count() as u128;
    references * REFERENCES_PER_TOP_LEVEL * longest as u128
}

/// Length of the longest quoted value after a `<!ENTITY` (the rest of the
/// text when a quote is not closed); 0 when there is no declaration.
fn longest_entity_value(text: &str) -> usize {
    let mut longest = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("<!ENTITY") {
        let start = from + found + "<!ENTITY".len();
        let rest = &text[start..];
        let Some(open) = rest.find(['"', '\'']) else {
            break;
        };
        let quote = rest.as_bytes()[open];
        let value = &rest[open + 1..];
        let Some(len) = value.bytes().position(|b| b == quote) else {
            // Unclosed: the value runs to the end.
            return longest.max(value.len().max(1));
        };
        longest = longest.max(len.max(1));
        // Go on after the closing quote: each byte is looked at once (a
        // declaration-like text inside this span lies within it, so the
        // span's length bounds it too).
        from = start + open + 1 + len + 1;
    }
    longest
}

/// Parses untrusted XML text: DTDs allowed, entity expansion bounded by
/// [`expansion_budget`], node count bounded by the text plus that budget.
///
/// # Errors
/// The parser's message, or `entity expansion could add up to N bytes
/// (limit M bytes)` when the document is refused before parsing.
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, String> {
    let budget = expansion_budget(text.len());
    let bound = expansion_bound(text);
    if bound > budget {
        return Err(format!(
            "entity expansion could add up to {bound} bytes (limit {budget} bytes)"
        ));
    }
    let nodes = u32::try_from(text.len() as u128 + budget).unwrap_or(u32::MAX);
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: nodes,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_entities_parse_large_expansions_are_refused() {
        let ok = "<!DOCTYPE r [<!ENTITY rd \"repodata\">]><r a=\"&rd;/x &amp; &#38;\"/>";
        let doc = parse(ok).expect("parses");
        assert_eq!(doc.root_element().attribute("a"), Some("repodata/x & &"));
        assert_eq!(expansion_bound("<r>&amp;&lt;</r>"), 0);
        let bomb = format!(
            "<!DOCTYPE r [<!ENTITY b \"{}\">]><r>{}</r>",
            "x".repeat(10_000),
            "&b;".repeat(1_000)
        );
        let err = parse(&bomb).expect_err("refused");
        assert!(err.starts_with("entity expansion could add up to"), "{err}");
        let nested = "<!DOCTYPE r [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>]><r>&b;&b;&b;&b;</r>";
        assert!(expansion_bound(nested) >= 8 * 4 * 10);
        assert!(parse(nested).is_ok());
    }

    #[test]
    fn the_bound_is_computed_in_linear_time() {
        // Many declarations and one quote at the end: each byte is scanned once.
        let text = format!("{}\"", "<!ENTITY ".repeat(200_000));
        assert_eq!(longest_entity_value(&text), 1);
        let hidden = "<!-- <!ENTITY c ' --><!ENTITY big \"0123456789\"><!-- ' -->";
        assert!(longest_entity_value(hidden) >= 10);
    }
}
