//! Tests of the whole API, `substitute` and `references`: parsing and evaluation together.

use super::*;

/// Variables as `(name, value)` pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn vars(pairs: Pairs<'_>) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The text `input` gives with `params`, or the error.
fn eval(input: &str, params: Pairs<'_>) -> Result<String, String> {
    let out = substitute(input, &vars(params));
    match out.error {
        Some(e) => {
            assert_eq!(out.text, input, "a failed substitution leaves the text as it was");
            Err(e)
        }
        None => Ok(out.text),
    }
}

#[test]
fn default_forms_follow_envsubst() {
    // Flux maps an unset variable to "" (non-strict mode), so every default operator
    // replaces an empty value as well as an unset one; `:+` and `:?` are defaults too.
    let v = vars(&[("EMPTY", ""), ("SET", "x")]);
    let text = "${EMPTY:-d}|${EMPTY=d}|${UNSET=d}|${SET:=d}|${EMPTY:+d}|${SET:+d}|${UNSET:?d}";
    assert_eq!(substitute(text, &v).text, "d|d|d|x|d|x|d");
    // Bash would give "" for `${EMPTY-d}`; Flux's parser knows no operator without a colon
    // but `=`, so `-`, `+` and `?` alone are malformed and fail the whole text.
    for bare in ["${EMPTY-d}", "${UNSET+d}", "${SET?d}"] {
        let out = substitute(bare, &v);
        assert_eq!(out.error.as_deref(), Some("variable substitution failed: missing closing brace"), "{bare}");
        assert_eq!(out.text, bare);
    }
}

#[test]
fn unresolved_names_are_reported_once() {
    let out = substitute("${A} ${B} ${A}", &vars(&[]));
    assert_eq!(out.unresolved, vec!["A".to_string(), "B".to_string()]);
}

#[test]
fn escaped_reference_is_kept_literal() {
    let out = substitute("a $${NOT_A_VAR} b", &vars(&[]));
    assert_eq!(out.text, "a ${NOT_A_VAR} b");
    assert!(out.unresolved.is_empty());
    assert!(references("$${X}").is_empty());
}

#[test]
fn escaped_nested_default_stays_literal() {
    let out = substitute("user: $${POSTGRES_USERNAME:=$${APP}}", &vars(&[("APP", "x")]));
    assert_eq!(out.text, "user: ${POSTGRES_USERNAME:=${APP}}");
    assert!(out.unresolved.is_empty());
    assert!(references("$${POSTGRES_USERNAME:=$${APP}}").is_empty());
}

#[test]
fn references_tell_defaults_from_the_rest() {
    let refs = |text: &str| references(text).into_iter().map(|r| (r.name, r.has_default)).collect::<Vec<_>>();
    assert_eq!(refs("${A:=${B}} ${C^^} ${#D} ${E:1} ${F%.*} ${G/a/b} ${H:+x}"), [
        ("A".into(), true),
        ("B".into(), false),
        ("C".into(), false),
        ("D".into(), false),
        ("E".into(), false),
        ("F".into(), false),
        ("G".into(), false),
        ("H".into(), true),
    ]);
    assert!(refs("${A-x} ${B}").is_empty(), "a text Flux refuses refers to nothing");
}

#[test]
fn a_reference_nested_in_a_default_is_unresolved_too() {
    let out = substitute("${A:=${B}}|${A:=x}", &vars(&[]));
    assert_eq!(out.text, "|x");
    assert_eq!(out.unresolved, vec!["B".to_string()]);
}

/// envsubst's `TestExpand` (eval_test.go), run the way Flux runs it.
#[test]
fn go_expand_cases() {
    let cases: &[(Pairs<'_>, &str, &str)] = &[
        (&[], "abcdEFGH28ij", "abcdEFGH28ij"),
        (&[("var01", "abcdEFGH28ij")], "${#var01}", "12"),
        (&[("var01", "abcdEFGH28ij")], "${var01^}", "AbcdEFGH28ij"),
        (&[("var01", "abcdEFGH28ij")], "${var01^^}", "ABCDEFGH28IJ"),
        (&[("var01", "ABCDEFGH28IJ")], "${var01,}", "aBCDEFGH28IJ"),
        (&[("var01", "ABCDEFGH28IJ")], "${var01,,}", "abcdefgh28ij"),
        (&[("path_name", "/home/bozo/ideas/thoughts.for.today")], "${path_name:11}", "ideas/thoughts.for.today"),
        (&[("path_name", "/home/bozo/ideas/thoughts.for.today")], "${path_name:11:5}", "ideas"),
        (&[("var", "abc")], "${var=xyz}", "abc"),
        (&[], "${var=xyz}", "xyz"),
        (&[("default_var", "foo")], "something ${var=${default_var}}", "something foo"),
        (&[("default_var", "foo1")], "foo: ${var=${default_var}-suffix}", "foo: foo1-suffix"),
        (&[("default_var", "foo1")], "foo: ${var=prefix${default_var}-suffix}", "foo: prefixfoo1-suffix"),
        (&[], "${var:=xyz}", "xyz"),
        (&[("stringZ", "abcABC123ABCabc")], "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"),
        (&[("stringZ", "abcABC123ABCabc")], "${stringZ/#abc/XYZ}", "XYZABC123ABCabc"),
        (&[("stringZ", "abcABC123ABCabc")], "${stringZ//abc/xyz}", "xyzABC123ABCxyz"),
        (&[("stringZ", "abcABC123ABCabc")], "${stringZ/abc/xyz}", "xyzABC123ABCabc"),
        (&[("filename", "bash.string.txt")], "${filename#*.}", "string.txt"),
        (&[("filename", "path/to/file")], "${filename#*/}", "to/file"),
        (&[("filename", "/path/to/file")], "${filename#*/}", "path/to/file"),
        (&[("filename", "bash.string.txt")], "${filename##*.}", "txt"),
        (&[("filename", "path/to/file")], "${filename##*/}", "file"),
        (&[("filename", "/path/to/file")], "${filename##*/}", "file"),
        (&[("filename", "bash.string.txt")], "${filename%.*}", "bash.string"),
        (&[("filename", "bash.string.txt")], "${filename%%.*}", "bash"),
        (&[("var01", "abcdEFGH28ij")], "${var=${var01^^}}", "ABCDEFGH28IJ"),
        (&[("var01", "abcdEFGH28ij")], "$${var01}", "${var01}"),
        (
            &[("var01", "abcdEFGH28ij")],
            "some text ${var01}$${var$${var01}$var01${var01}",
            "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
        ),
        (&[("default_var", "foo")], "something $${var=${default_var}}", "something ${var=foo}"),
        (&[("stringZ", "foo/bar")], r"${stringZ/\//-}", "foo-bar"),
        (&[("stringZ", "foo/bar/baz")], r"${stringZ//\//-}", "foo-bar-baz"),
        (&[("default_var", "foo")], r"\\something ${var=${default_var}}", r"\\something foo"),
        (&[("stringZ", "foo.bar")], "${stringZ/./}", "foobar"),
    ];
    for (params, input, output) in cases {
        assert_eq!(eval(input, params).as_deref(), Ok(*output), "{input}");
    }
}

/// envsubst's `Test_substr` (funcs_test.go), through `${VAR:offset:length}`.
#[test]
fn go_substr_cases() {
    // A `-` straight after the `:` would make `:-`, a default, and an argument is either
    // text or one reference: negative numbers come from variables.
    let negative = [("M1", "-1"), ("M3", "-3"), ("M4", "-4"), ("M8", "-8"), ("M300", "-300")];
    let cases = [
        ("123456789123456789", "0:8", "12345678"),
        ("123456789123456789", "1:8", "23456789"),
        ("123456789123456789", "9", "123456789"),
        ("123456789123456789", "9:50", "123456789"),
        ("123456789123456789", "${M3}:2", "78"),
        ("123456789123456789", "${M300}:3", "123"),
        ("12345678", "9:1", ""),
        ("hello world", "2:${M1}", "llo worl"),
        ("hello world", "0:${M3}", "hello wo"),
        ("hello world", "8:${M8}", ""),
        ("hello world", "${M4}:${M1}", "orl"),
        // not numbers: the value whole
        ("hello", "x", "hello"),
        ("hello", " -1", "hello"),
        ("hello", "1:y", "hello"),
    ];
    for (value, args, output) in cases {
        let input = format!("${{V:{args}}}");
        let params: Vec<_> = negative.iter().copied().chain([("V", value)]).collect();
        assert_eq!(eval(&input, &params).as_deref(), Ok(output), "{value} {input}");
    }
    assert_eq!(eval("${V:-1}", &[("V", "hello")]).as_deref(), Ok("hello"), "`:-` is a default");
    assert_eq!(eval("${V:1::2}", &[("V", "hello")]).as_deref(), Ok("el"), "a run of colons is one delimiter");
    assert!(eval("${V:${M1}1}", &[("V", "hello")]).is_err(), "a reference and text make no argument");
}

#[test]
fn substring_offsets_that_overflow_fail_as_go_panics() {
    let out = substitute("${V:1:9223372036854775807}", &vars(&[("V", "abc")]));
    assert_eq!(out.text, "${V:1:9223372036854775807}");
    assert_eq!(
        out.error.as_deref(),
        Some("panic: runtime error: slice bounds out of range [:-9223372036854775808] [recovered]")
    );
    assert_eq!(eval("${V:9223372036854775808}", &[("V", "abc")]).as_deref(), Ok("abc"), "beyond 64 bits is no number");
}

#[test]
fn lengths_and_substrings_count_bytes() {
    assert_eq!(eval("${#V}", &[("V", "héllo")]).as_deref(), Ok("6"));
    assert_eq!(eval("${V:3}", &[("V", "héllo")]).as_deref(), Ok("llo"));
    assert_eq!(eval("${V:0:2}", &[("V", "héllo")]).as_deref(), Ok("h\u{FFFD}"), "half an é");
}

#[test]
fn case_functions_use_simple_case_mapping() {
    let v = [("V", "ßİᾳǅﬀ"), ("W", "élan")];
    assert_eq!(eval("${V^^}|${V,,}", &v).as_deref(), Ok("ßİᾼǄﬀ|ßiᾳǆﬀ"));
    assert_eq!(eval("${W^}|${W^^}|${E^}|${E,,}", &v).as_deref(), Ok("Élan|ÉLAN||"));
}

#[test]
fn trims_match_shell_patterns() {
    let v = [("V", "abc/def$$"), ("F", "a.tar.gz")];
    let cases = [
        ("${V%%c*}", "ab"),
        ("${V%?}", "abc/def$"),
        ("${V#*[b-c]}", "c/def$$"),
        ("${V##*[b-c]}", "/def$$"),
        ("${V#[^b]}", "bc/def$$"),
        ("${V#[!a]}", "bc/def$$"), // `!` is no negation: the class is `!` or `a`
        ("${V#\\a}", "bc/def$$"),
        ("${V#[}", "abc/def$$"), // a malformed pattern trims nothing
        ("${V#*/}", "def$$"),
        ("${F%.*}", "a.tar"),
        ("${F%%.*}", "a"),
        ("${F#*.}", "tar.gz"),
        ("${F##*.}", "gz"),
        ("${F%.t?r.gz}", "a"),
        // `%` and `%%` match the reversed value against the reversed pattern text, so a
        // class must be written backwards and a forward one makes a bad pattern.
        ("${F%[a-z]}", "a.tar.gz"),
        ("${F%]z-a[}", "a.tar.g"),
        ("${F%%[a-z]*}", "a.tar.gz"),
        ("${F#${PAT}}", ".tar.gz"),
    ];
    for (input, output) in cases {
        assert_eq!(eval(input, &[v[0], v[1], ("PAT", "?")]).as_deref(), Ok(output), "{input}");
    }
}

#[test]
fn replacements() {
    let v = [("V", "a-b-c"), ("E", ""), ("S", "/"), ("P", "x/y")];
    let cases = [
        ("${V/-/+}", "a+b-c"),
        ("${V//-/+}", "a+b+c"),
        ("${V//-/}", "abc"),
        ("${V/#a/z}", "z-b-c"),
        ("${V/#b/z}", "a-b-c"),
        ("${V/%c/z}", "a-b-z"),
        ("${V/%b/z}", "a-b-c"),
        ("${V/-/${S}}", "a/b-c"),
        (r"${P/\//\\}", r"x\y"),
        ("${V/$$/x}", "a-b-c"),
        ("${E/a/b}", ""),
        ("${E:=${V//-/.}}", "a.b.c"),
    ];
    for (input, output) in cases {
        assert_eq!(eval(input, &v).as_deref(), Ok(output), "{input}");
    }
}

#[test]
fn escapes_apply_only_where_go_scans_them() {
    let v = [("V", "x"), ("B", "b")];
    // `$$` is an escape outside `${...}` and in `/` arguments, not in a default...
    assert_eq!(eval("$$V $$$ ${E:=$$} ${E:=$${B}}", &v).as_deref(), Ok("$V $$ $$ $b"));
    // ...and a backslash only in `/` arguments.
    assert_eq!(eval(r"\${V} ${E:=\/}", &v).as_deref(), Ok(r"\x \/"));
}

#[test]
fn malformed_expressions_fail_the_text() {
    let cases = [
        ("${", "unable to parse variable name"),
        ("${}", "unable to parse variable name"),
        ("${:}", "unable to parse variable name"),
        ("${ V}", "unable to parse variable name"),
        ("a ${V", "missing closing brace"),
        ("${V }", "missing closing brace"),
        ("${V-x}", "missing closing brace"),
        ("${#}", "bad substitution"),
        ("${#V", "bad substitution"),
        ("${##V}", "bad substitution"),
        ("${V,,,}", "bad substitution"),
        ("${V/a}", "bad substitution"),
        ("${V:é}", "bad substitution"), // Go steps back the width of `é` over the `:`
        ("${V:}", "unable to parse substitution within function"),
        ("${V:1:}", "unable to parse substitution within function"),
        ("${V#}", "unable to parse substitution within function"),
        ("${V:=${W}", "unable to parse substitution within function"),
        ("ok ${V} then ${", "unable to parse variable name"),
    ];
    for (input, error) in cases {
        let out = substitute(input, &vars(&[("V", "v")]));
        assert_eq!(out.error, Some(format!("variable substitution failed: {error}")), "{input}");
        assert_eq!(out.text, input);
        assert!(out.unresolved.is_empty());
        assert!(references(input).is_empty());
    }
}

#[test]
fn odd_but_valid_texts() {
    let v = [("V", "v")];
    let cases = [
        ("$", "$"),
        ("$$", "$"),
        ("}", "}"),
        ("${V}}", "v}"),
        ("${V:=a}b}", "vb}"),
        ("${V==a}${E==a}", "v=a"),
        ("${V/}/y}", "v"),
        ("${é}${V_1}${_}${9}", ""),
        ("a\0b ${V}", "a\0b v"), // Go would stop at the NUL
    ];
    for (input, output) in cases {
        assert_eq!(eval(input, &v).as_deref(), Ok(output), "{input:?}");
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let ok = format!("{}x{}", "${A:=".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
    assert_eq!(eval(&ok, &[]).as_deref(), Ok("x"));
    let deep = "${A:=".repeat(100_000);
    let out = substitute(&deep, &vars(&[]));
    assert_eq!(out.error, Some(format!("variable substitution failed: references nested more than {MAX_NESTING} deep")));
    let many = "${A}".repeat(100_000);
    assert_eq!(substitute(&many, &vars(&[("A", "a")])).text.len(), 100_000);
}
