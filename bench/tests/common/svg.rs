//! Whether a file is a well-formed, non-empty SVG document: one `<svg>`
//! root, every tag closed in order, quoted attributes. A small XML
//! tokenizer, enough for what plotters writes (no DTDs, no CDATA).

/// `Err(why)` unless `text` is well-formed XML with an `<svg>` root that
/// holds at least one drawn element.
pub fn check_svg(text: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut elements = 0;
    let mut rest = text.trim();
    while let Some(lt) = rest.find('<') {
        let text_before = &rest[..lt];
        if stack.is_empty() && !text_before.trim().is_empty() {
            return Err(format!("text outside the root: {:.40}", text_before));
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>").ok_or("unclosed <?")? + 2..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").ok_or("unclosed comment")? + 3..];
            continue;
        }
        // Find the tag's end outside quoted attribute values.
        let mut quote = None;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '<') => return Err(format!("'<' inside a tag: {:.60}", rest)),
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .ok_or_else(|| format!("</{name}> closes nothing"))?;
            if open != name.trim() {
                return Err(format!("</{}> closes <{open}>", name.trim()));
            }
            continue;
        }
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            return Err("empty tag name".into());
        }
        if stack.is_empty() {
            roots += 1;
            if name != "svg" {
                return Err(format!("root element is <{name}>, not <svg>"));
            }
        } else {
            elements += 1;
        }
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    if !rest.trim().is_empty() {
        return Err("text after the root".into());
    }
    match (roots, stack.is_empty(), elements) {
        (1, true, n) if n > 0 => Ok(()),
        (1, true, _) => Err("the <svg> is empty".into()),
        (1, false, _) => Err(format!("unclosed: {stack:?}")),
        (n, _, _) => Err(format!("{n} root elements")),
    }
}
