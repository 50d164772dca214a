//! Unit tests of the YAML layer.
use super::*;

fn map(text: &str) -> MarkedMappingNode {
    match parse(text) {
        Ok(Some(Node::Mapping(m))) => m,
        other => panic!("{other:?}"),
    }
}

fn fails(text: &str) -> SyntaxError {
    match parse(text) {
        Err(e) => e,
        Ok(n) => panic!("parsed: {n:?}"),
    }
}

#[test]
fn aliases_and_merges() {
    let m = map("d: &d {a: 1, b: 2}\nx:\n  <<: *d\n  b: 3\ny: {<<: [*d, {c: 4}], a: 0}\nz: *d\n");
    let x = m.get_mapping("x").unwrap();
    assert_eq!(x.get_scalar("a").unwrap().as_str(), "1");
    assert_eq!(x.get_scalar("b").unwrap().as_str(), "3");
    assert!(x.get_node("<<").is_none());
    let y = m.get_mapping("y").unwrap();
    assert_eq!(y.get_scalar("a").unwrap().as_str(), "0");
    assert_eq!(y.get_scalar("b").unwrap().as_str(), "2");
    assert_eq!(y.get_scalar("c").unwrap().as_str(), "4");
    assert_eq!(m.get_mapping("z").unwrap().len(), 2);
    // A direct key before the merge wins too.
    let m = map("d: &d {a: 1}\nx: {a: 2, <<: *d}\n");
    assert_eq!(
        m.get_mapping("x")
            .unwrap()
            .get_scalar("a")
            .unwrap()
            .as_str(),
        "2"
    );
    // A quoted "<<" is an ordinary key.
    let m = map("x: {\"<<\": v}\n");
    assert_eq!(
        m.get_mapping("x")
            .unwrap()
            .get_scalar("<<")
            .unwrap()
            .as_str(),
        "v"
    );
}

#[test]
fn duplicates_and_bad_merges() {
    let e = fails("a: 1\nb: 2\na: 3\n");
    assert_eq!(e.position, Position { line: 3, column: 1 });
    assert!(e.message.contains("first at line 1"), "{}", e.message);
    assert!(
        fails("d: &d {a: 1}\nx: {<<: *d, <<: *d}\n")
            .message
            .contains("duplicate")
    );
    assert!(fails("x: {<<: 3}\n").message.contains("merge key"));
    assert!(fails("a: &a [*a]\n").message.contains("contains it"));
}

#[test]
fn tags() {
    let m = map(
        "a: !!str 1\nb: !!int 0x1F\nc: !!bool yes\nd: !!map {x: 1}\ne: !!seq [1]\nf: ! x\ng: !!float .inf\n",
    );
    assert_eq!(m.get_scalar("a").unwrap().as_str(), "1");
    for bad in [
        "a: !!int x\n",
        "a: !!map [1]\n",
        "a: !foo x\n",
        "a: !!python/object x\n",
        "a: !!bool maybe\n",
        "a: !!merge x\n",
    ] {
        let e = fails(bad);
        assert_eq!(e.position.line, 1, "{bad}: {e:?}");
    }
}

#[test]
fn limits() {
    let mut lol = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        lol.push_str(&format!(
            "{cur}: &{cur} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    assert!(fails(&lol).message.contains("aliases expand"));
    let deep = format!("a:\n  {}x\n", "- ".repeat(10_000));
    assert!(fails(&deep).message.contains("nested"));
    let deep = format!("a: {}", "[".repeat(100_000));
    assert_eq!(fails(&deep).position.line, 1);
    assert!(fails("a: 1\n---\nb: 2\n").message.contains("second"));
    assert!(parse("# only a comment\n").unwrap().is_none());
}

#[test]
fn characters() {
    let e = fails("a: 1\nb: x\0y\n");
    assert_eq!(e.position, Position { line: 2, column: 5 });
    assert!(e.message.contains("NUL"));
    assert_eq!(fails("a: \"\u{1}\"\n").position.column, 5);
    assert!(fails("a: b\u{feff}\n").message.contains("byte-order"));
    assert_eq!(decode(b"\xef\xbb\xbfa: 1\n").unwrap(), "a: 1\n");
    let e = decode(b"a: 1\nb: \xff\n").unwrap_err();
    assert_eq!(e.position, Position { line: 2, column: 4 });
}
