#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tern_model::TopicName;

use super::*;

fn msg(tag: Option<&str>, props: &[(&str, &str)]) -> Message {
    Message {
        topic: TopicName::new("t").unwrap(),
        queue_id: 0,
        message_id: "id".into(),
        tag: tag.map(str::to_owned),
        keys: vec!["k1".into(), "k2".into()],
        properties: props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: b"x".to_vec(),
        born_timestamp_ms: 0,
        flags: 0,
    }
}

fn m(expr: &str, message: &Message) -> bool {
    SqlFilter::parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches(message)
}

fn parse_err(expr: &str) -> String {
    match SqlFilter::parse(expr) {
        Err(BrokerError::Invalid(why)) => why,
        other => panic!("{expr}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn numeric_comparisons() {
    let x = msg(
        None,
        &[("a", "10"), ("f", "2.5"), ("neg", "-3"), ("s", "abc")],
    );
    for (expr, want) in [
        ("a > 5", true),
        ("a > 10", false),
        ("a >= 10", true),
        ("a < 10.5", true),
        ("a <= 9", false),
        ("a = 10", true),
        ("a = 10.0", true),
        ("a <> 10", false),
        ("a != 11", true),
        ("f > 2", true),
        ("f < 2.51", true),
        ("neg < -2", true),
        ("neg = -3", true),
        ("5 < a", true),
        ("10 <= a", true),
        ("11 <= a", false),
        // Not a number: unknown, so neither side matches.
        ("s > 1", false),
        ("s <= 1", false),
        ("NOT s > 1", false),
    ] {
        assert_eq!(m(expr, &x), want, "{expr}");
    }
}

#[test]
fn strings_booleans_and_system_properties() {
    let x = msg(
        Some("TagA"),
        &[("region", "eu-west"), ("quote", "it's"), ("ok", "True")],
    );
    for (expr, want) in [
        ("region = 'eu-west'", true),
        ("region = 'EU-WEST'", false),
        ("region <> 'us'", true),
        ("'eu-west' = region", true),
        ("quote = 'it''s'", true),
        ("TAGS = 'TagA'", true),
        ("TAGS IN ('TagB', 'TagA')", true),
        ("TAGS NOT IN ('TagA')", false),
        ("KEYS = 'k1 k2'", true),
        ("ok = TRUE", true),
        ("ok <> FALSE", true),
        ("region = TRUE", false),
        ("TRUE", true),
        ("FALSE", false),
        ("NOT FALSE", true),
    ] {
        assert_eq!(m(expr, &x), want, "{expr}");
    }
    // No tag: TAGS is null.
    assert!(m("TAGS IS NULL", &msg(None, &[])));
    assert!(!m("TAGS = 'TagA'", &msg(None, &[])));
}

#[test]
fn between_in_and_null() {
    let x = msg(None, &[("a", "10"), ("c", "red")]);
    for (expr, want) in [
        ("a BETWEEN 1 AND 10", true),
        ("a BETWEEN 10 AND 20", true),
        ("a BETWEEN 11 AND 20", false),
        ("a NOT BETWEEN 11 AND 20", true),
        ("a BETWEEN -5.5 AND 9.99", false),
        ("c IN ('red', 'blue')", true),
        ("c IN ('blue')", false),
        ("c NOT IN ('blue', 'green')", true),
        ("c IS NOT NULL", true),
        ("c IS NULL", false),
        ("zz IS NULL", true),
        ("zz IS NOT NULL", false),
        // A missing property: comparisons are unknown, never true.
        ("zz = 'x'", false),
        ("zz <> 'x'", false),
        ("zz BETWEEN 1 AND 2", false),
        ("zz NOT BETWEEN 1 AND 2", false),
        ("zz IN ('x')", false),
        ("zz NOT IN ('x')", false),
        ("NOT (zz = 'x')", false),
    ] {
        assert_eq!(m(expr, &x), want, "{expr}");
    }
}

#[test]
fn logic_precedence_and_keyword_case() {
    let x = msg(None, &[("a", "1"), ("b", "2")]);
    for (expr, want) in [
        ("a = 1 AND b = 2", true),
        ("a = 1 AND b = 3", false),
        ("a = 2 OR b = 2", true),
        // AND binds tighter than OR.
        ("a = 2 AND b = 3 OR a = 1", true),
        ("a = 2 AND (b = 3 OR a = 1)", false),
        ("NOT a = 2 AND b = 2", true),
        ("NOT (a = 1 AND b = 2)", false),
        ("((a = 1))", true),
        ("a = 1 and b between 1 aNd 2 oR c is null", true),
        ("not a in ('1')", false),
        // Unknown OR true is true; unknown AND false is false.
        ("zz = 1 OR a = 1", true),
        ("NOT (zz = 1 AND a = 2)", true),
        ("zz = 1 OR a = 2", false),
    ] {
        assert_eq!(m(expr, &x), want, "{expr}");
    }
}

#[test]
fn refuses_malformed_with_position() {
    for (expr, what) in [
        ("", "empty"),
        ("   ", "empty"),
        (
            "a >",
            "expected a number, string, TRUE or FALSE after '>', found the end of the expression at column 4",
        ),
        ("a > 5 AND", "at column 10"),
        (
            "(a > 5",
            "expected ')' to close the '(' at column 1, found the end",
        ),
        ("a > 5)", "unexpected ')' at column 6"),
        ("a > 'x'", "'>' compares numbers only"),
        ("'x' < a", "'<' compares numbers only"),
        ("a = 'open", "unterminated string at column 5"),
        ("a = \"x\"", "single quotes"),
        ("a + 1 > 2", "arithmetic ('+') is not supported at column 3"),
        ("a # 1", "unexpected character '#' at column 3"),
        (
            "a BETWEEN 1 2",
            "expected AND between the bounds of BETWEEN, found number 2 at column 13",
        ),
        ("a BETWEEN 'x' AND 2", "expected a number after BETWEEN"),
        (
            "a IN (1, 2)",
            "expected a string in the IN list, found number 1",
        ),
        ("a IN ('x' 'y')", "expected ',' or ')'"),
        ("a IN ()", "expected a string in the IN list, found ')'"),
        ("a IS 5", "expected NULL after IS"),
        ("a NOT LIKE 'x'", "expected BETWEEN or IN after NOT"),
        (
            "a",
            "expected a comparison, BETWEEN, IN or IS after property a",
        ),
        ("5", "number 5 must be compared with a property"),
        (
            "a = b",
            "expected a number, string, TRUE or FALSE after '='",
        ),
        ("AND a = 1", "found AND at column 1"),
        ("a = 99999999999999999999", "out of range"),
        ("a = 1.2.3", "malformed number"),
        ("a = 12abc", "malformed number"),
    ] {
        let why = parse_err(expr);
        assert!(why.contains(what), "{expr:?}: {why}");
        assert!(why.starts_with("SQL filter expression"), "{why}");
    }
    let deep = format!("{}a = 1{}", "(".repeat(100), ")".repeat(100));
    assert!(parse_err(&deep).contains("nested deeper than 64"));
    let long = "a = 1 OR ".repeat(3000) + "a = 1";
    assert!(parse_err(&long).contains("the limit is"));
}

#[test]
fn long_flat_chains_are_fine() {
    let expr = "a = 1 OR ".repeat(1500) + "a = 2";
    assert!(m(&expr, &msg(None, &[("a", "2")])));
    let expr = "NOT ".repeat(64) + "a = 2";
    assert!(m(&expr, &msg(None, &[("a", "2")])));
}

#[test]
fn displays_the_source() {
    let f = SqlFilter::parse("  a > 5 AND TAGS = 'x' ").unwrap();
    assert_eq!(f.to_string(), "a > 5 AND TAGS = 'x'");
}

proptest! {
    #[test]
    fn parser_never_panics(src in "\\PC{0,80}") {
        let _ = SqlFilter::parse(&src);
    }

    #[test]
    fn parser_never_panics_on_sqlish_input(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("a"), Just("TAGS"), Just("("), Just(")"), Just("'x'"), Just("'"),
                Just("5"), Just("-2.5"), Just("-"), Just("."), Just(","), Just("="),
                Just("<>"), Just(">="), Just("<"), Just("AND"), Just("or"), Just("NOT"),
                Just("BETWEEN"), Just("IN"), Just("IS"), Just("NULL"), Just("TRUE"),
            ],
            0..30,
        ),
    ) {
        let src = parts.join(" ");
        if let Ok(f) = SqlFilter::parse(&src) {
            let x = msg(Some("x"), &[("a", "5")]);
            let _ = f.matches(&x);
        }
    }
}
