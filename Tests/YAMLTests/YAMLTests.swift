import Testing
import YAML

/// Parses `text`, failing the test on an error.
private func parse(_ text: String, limits: YAMLLimits = YAMLLimits()) throws -> YAMLNode? {
    try YAMLNode.parse(text, limits: limits)
}

/// The error parsing `text` gives, or nil if it parses.
private func error(_ text: String, limits: YAMLLimits = YAMLLimits()) -> YAMLError? {
    do {
        _ = try YAMLNode.parse(text, limits: limits)
        return nil
    } catch {
        return error
    }
}

private func error(utf8 bytes: [UInt8]) -> YAMLError? {
    do {
        _ = try YAMLNode.parse(utf8: bytes)
        return nil
    } catch {
        return error
    }
}

private func mark(_ line: Int, _ column: Int) -> YAMLMark { YAMLMark(line: line, column: column) }

@Suite("YAML: scalars")
struct ScalarTests {
    @Test("a scalar's text is what YAML means, quotes and escapes resolved; no type is guessed")
    func texts() throws {
        let root = try #require(
            try parse(
                #"""
                plain: hello world
                number: 10
                float: 1.5
                yes: yes
                null: ~
                single: 'it''s'
                double: "a\tb\u00e9\n"
                empty:
                emptyQuoted: ""
                literal: |
                  line 1
                  line 2
                folded: >
                  one
                  two
                """#))
        let m = try #require(root.mapping)
        #expect(
            m.keys == [
                "plain", "number", "float", "yes", "null", "single", "double", "empty", "emptyQuoted", "literal", "folded",
            ])
        #expect(m["plain"]?.text == "hello world")
        #expect(m["number"]?.text == "10")
        #expect(m["float"]?.text == "1.5")
        #expect(m["yes"]?.text == "yes")
        #expect(m["null"]?.text == "~")
        #expect(m["single"]?.text == "it's")
        #expect(m["double"]?.text == "a\tbé\n")
        #expect(m["empty"]?.scalar == YAMLScalar("", style: .plain))
        #expect(m["emptyQuoted"]?.scalar == YAMLScalar("", style: .doubleQuoted))
        #expect(m["literal"]?.scalar == YAMLScalar("line 1\nline 2\n", style: .literal))
        #expect(m["folded"]?.scalar == YAMLScalar("one two", style: .folded), "no line break at the end of the text: none kept")
    }

    @Test("quoted \"10\" is told from plain 10 by its style")
    func quotedOrPlain() throws {
        let m = try #require(try parse("a: 10\nb: \"10\"\nc: '10'\n")?.mapping)
        #expect(m["a"]?.scalar?.isPlain == true)
        #expect(m["a"]?.scalar?.isQuoted == false)
        #expect(m["b"]?.scalar?.style == .doubleQuoted)
        #expect(m["c"]?.scalar?.style == .singleQuoted)
        #expect(m["b"]?.scalar?.isQuoted == true && m["c"]?.scalar?.isQuoted == true)
        #expect(m["a"]?.text == m["b"]?.text)
        #expect(m["a"] != m["b"], "nodes compare text, style and mark")
    }

    @Test("a document that is one scalar is a scalar root")
    func scalarRoot() throws {
        #expect(try parse("just text")?.scalar == YAMLScalar("just text"))
        #expect(try parse("--- 'x'\n")?.scalar == YAMLScalar("x", style: .singleQuoted))
    }

    @Test("tags are accepted and dropped: the text stays")
    func tags() throws {
        let m = try #require(try parse("a: !!str 10\nb: !custom {x: 1}\nc: !!binary aGVsbG8=\n")?.mapping)
        #expect(m["a"]?.scalar == YAMLScalar("10"))
        #expect(m["b"]?["x"]?.text == "1")
        #expect(m["c"]?.text == "aGVsbG8=")
    }
}

@Suite("YAML: collections")
struct CollectionTests {
    @Test("nested mappings keep their keys in the order written")
    func nestedMappings() throws {
        let root = try #require(
            try parse(
                """
                bridge:
                  id: host1
                  health_file: /run/x
                mqtt:
                  url: mqtt://h:1883
                  tls:
                    ca: /ca.pem
                """))
        #expect(root.mapping?.keys == ["bridge", "mqtt"])
        #expect(root["bridge"]?.mapping?.keys == ["id", "health_file"])
        #expect(root["mqtt"]?["tls"]?["ca"]?.text == "/ca.pem")
        #expect(root["nope"] == nil)
        #expect(root["bridge"]?["id"]?["x"] == nil, "a scalar has no keys")
        let entry = try #require(root.mapping?[1])
        #expect(entry.key == YAMLScalar("mqtt") && entry.keyMark == mark(4, 1))
    }

    @Test("block sequences, of scalars and of mappings")
    func sequences() throws {
        let root = try #require(
            try parse(
                """
                docker:
                  - url: unix:///a
                    id_prefix: a-
                  - url: tcp://h:2375
                names:
                - web
                - db
                """))
        let docker = try #require(root["docker"]?.sequence)
        #expect(docker.count == 2)
        #expect(docker[0]["id_prefix"]?.text == "a-")
        #expect(docker[1]["url"]?.text == "tcp://h:2375")
        #expect(root["names"]?.sequence?.compactMap(\.text) == ["web", "db"])
    }

    @Test("flow style: [a, b] and {k: v}, nested, over several lines")
    func flowStyle() throws {
        let root = try #require(
            try parse("docker: [{url: 'unix:///x', include: [a, \"b\"]}, {url: tcp://h}]\nempty: []\nnone: {}\n"))
        let docker = try #require(root["docker"]?.sequence)
        #expect(docker.count == 2)
        #expect(docker[0]["include"]?.sequence?.map(\.scalar) == [YAMLScalar("a"), YAMLScalar("b", style: .doubleQuoted)])
        #expect(docker[1]["url"]?.text == "tcp://h")
        #expect(root["empty"]?.sequence == [])
        #expect(root["none"]?.mapping?.isEmpty == true)
        let multiLine = try #require(try parse("a: [1,\n  2,\n  3]\n"))
        #expect(multiLine["a"]?.sequence?.compactMap(\.text) == ["1", "2", "3"])
    }

    @Test("comments and blank lines are not content")
    func comments() throws {
        let root = try #require(
            try parse(
                "# head\n\nbridge: # after a key\n  id: x # after a value\n  # alone\nurl: a#b # '#' inside a word is text\n"))
        #expect(root["bridge"]?["id"]?.text == "x")
        #expect(root["url"]?.text == "a#b")
        #expect(root.mapping?.count == 2)
    }
}

@Suite("YAML: marks")
struct MarkTests {
    @Test("every node has its 1-based line and column")
    func marks() throws {
        let root = try #require(try parse("# comment\nbridge:\n  id:   host1\nlist:\n  - a\n  - {k: \"v\"}\n"))
        #expect(root.mark == mark(2, 1), "a block mapping starts at its first key")
        #expect(root.mapping?[0].keyMark == mark(2, 1))
        #expect(root["bridge"]?.mark == mark(3, 3))
        #expect(root["bridge"]?["id"]?.mark == mark(3, 9))
        #expect(root["list"]?.mark == mark(5, 3))
        #expect(root["list"]?.sequence?[1].mark == mark(6, 5))
        #expect(root["list"]?.sequence?[1]["k"]?.mark == mark(6, 9), "a quoted scalar starts at its quote")
        #expect(mark(3, 9).description == "line 3, column 9")
    }

    @Test("columns count characters, not bytes")
    func unicodeColumns() throws {
        let root = try #require(try parse("é😀: x\n"))
        #expect(root["é😀"]?.mark == mark(1, 5))
    }
}

@Suite("YAML: documents")
struct DocumentTests {
    @Test("no document is a nil root: empty text, blank lines, comments")
    func empty() throws {
        #expect(try parse("") == nil)
        #expect(try parse("\n\n   \n") == nil)
        #expect(try parse("# only a comment\n# and another\n") == nil)
        #expect(try YAMLNode.parse(utf8: []) == nil)
    }

    @Test("a document with no content is an empty plain scalar")
    func emptyDocument() throws {
        #expect(try parse("---\n")?.scalar == YAMLScalar(""))
        #expect(try parse("---\n...\n")?.scalar == YAMLScalar(""))
    }

    @Test("one document, with its markers, is accepted")
    func markers() throws {
        #expect(try parse("%YAML 1.1\n---\na: 1\n...\n")?["a"]?.text == "1")
        #expect(try parse("---\na: 1\n")?["a"]?.text == "1")
    }

    @Test("a second document is refused, at its start")
    func secondDocument() {
        let e = error("a: 1\n---\nb: 2\n")
        #expect(e?.kind == .multipleDocuments)
        #expect(e?.mark == mark(2, 1))
        #expect(
            e?.description
                == "line 2, column 1: but found another document (expected a single document in the stream at line 1, column 1)")
        #expect(error("---\na: 1\n...\n---\nb: 2\n")?.kind == .multipleDocuments)
    }
}

@Suite("YAML: errors")
struct ErrorTests {
    @Test("a key given twice is refused with where it was first given")
    func duplicateKeys() {
        let e = error("bridge: {id: x}\nbridge: {id: y}\n")
        #expect(e?.kind == .duplicateKey)
        #expect(e?.mark == mark(1, 1))
        #expect(e?.description == "line 1, column 1: duplicate key 'bridge'")
        #expect(
            error("a: 1\nb: 2\nb: 3\na: 4\n")?.description == "line 1, column 1: duplicate key 'a', 'b'",
            "all of a mapping's, sorted")
        #expect(error("x:\n  k: 1\n  k: 2\n")?.description == "line 2, column 3: duplicate key 'k'")
        #expect(error("{a: 1, a: 2}")?.kind == .duplicateKey, "in flow style too")
        #expect(error("a: 1\n\"a\": 2\n")?.kind == .duplicateKey, "keys compare by text, whatever their style")
        #expect(error("- {a: 1}\n- {a: 2}\n") == nil, "the same key in two mappings is fine")
        #expect(error("a: {a: 1}\n") == nil)
    }

    @Test("a syntax error gives line, column and libyaml's problem, with its context")
    func syntaxErrors() {
        let unclosed = error("a: [\n  b\n c: :\n")
        #expect(unclosed?.kind == .syntax)
        #expect(
            unclosed?.description
                == "line 3, column 3: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 4)")
        let valueInValue = error("a: b: c\n")
        #expect(valueInValue?.description == "line 1, column 5: mapping values are not allowed in this context")
        #expect(
            error("a: [b, {c: d\n")?.description
                == "line 2, column 1: did not find expected ',' or '}' (while parsing a flow mapping at line 1, column 8)")
        #expect(
            error("{{{")?.description
                == "line 2, column 1: did not find expected node content (while parsing a flow node at line 2, column 1)",
            "libyaml ends the text with a line break")
        let tab = error("a:\n\tb: 1\n")
        #expect(tab?.kind == .syntax)
        #expect(tab?.mark == mark(2, 1))
        #expect(tab?.problem == "found character that cannot start any token")
        let indent = error("a:\n  b: 1\n c: 2\n")
        #expect(indent?.mark?.line == 3)
        for e in [unclosed, valueInValue, tab, indent] {
            #expect(e.map { !$0.description.contains("\n") } == true, "one line: \(String(describing: e))")
        }
    }

    @Test("a key that is a sequence or a mapping is refused")
    func complexKeys() {
        let e = error("? [complex, key]\n: value\n")
        #expect(e?.kind == .complexKey)
        #expect(e?.description == "line 1, column 3: a mapping key must be a scalar, not a sequence")
        #expect(error("{a: 1}: x\n")?.mark == mark(1, 1))
        #expect(error("{a: 1}: x\n")?.kind == .complexKey)
        #expect(error("a: &m {x: 1}\n*m : 2\n")?.description == "line 2, column 1: a mapping key must be a scalar, not a mapping")
    }

    @Test("invalid UTF-8 is refused with its line and column")
    func invalidUTF8() {
        let e = error(utf8: Array("a: 1\nb: é".utf8) + [0xFF] + Array(" x\n".utf8))
        #expect(e?.kind == .invalidText)
        #expect(e?.mark == mark(2, 5))
        #expect(e?.description == "line 2, column 5: invalid leading UTF-8 octet (byte 0xFF)")
        #expect(error(utf8: Array("a: ".utf8) + [0xC3])?.kind == .invalidText, "a sequence cut short")
        #expect(error(utf8: Array("a: ".utf8) + [0xE2, 0x28, 0xA1])?.kind == .invalidText, "a bad continuation byte")
        #expect(error(utf8: Array("a: ".utf8) + [0xED, 0xA0, 0x80])?.kind == .invalidText, "a surrogate")
        #expect(error(utf8: Array("a: é😀\n".utf8)) == nil)
    }

    @Test("control characters are refused by the reader")
    func controlCharacters() {
        let e = error("a: 1\nb: x\u{7}y\n")
        #expect(e?.kind == .invalidText)
        #expect(e?.description == "line 2, column 5: control characters are not allowed (U+0007)")
        #expect(error("a: x\u{0}y")?.kind == .invalidText, "NUL too: the length, not a terminator, ends the input")
    }
}

@Suite("YAML: anchors and aliases")
struct AnchorTests {
    @Test("an alias is its anchor's node")
    func resolved() throws {
        let root = try #require(
            try parse("base: &b {stop_timeout: 10s, allow: [start]}\nuse: *b\nname: &n web\nnames: [*n, *n]\n"))
        #expect(root["use"] == root["base"], "the same node, with the anchor's mark")
        #expect(root["use"]?["allow"]?.sequence?.first?.text == "start")
        #expect(root["names"]?.sequence?.compactMap(\.text) == ["web", "web"])
    }

    @Test("the latest anchor of a name wins; an alias as a key is its scalar")
    func redefined() throws {
        let root = try #require(try parse("a: &x 1\nb: &x 2\nc: *x\n&k key: v\nd: {*k : w}\n"))
        #expect(root["c"]?.text == "2")
        #expect(root["d"]?["key"]?.text == "w")
    }

    @Test("an alias without its anchor, or inside its own anchor, is refused")
    func undefined() {
        let e = error("bridge: *nope\n")
        #expect(e?.kind == .undefinedAlias)
        #expect(e?.description == "line 1, column 9: found undefined alias")
        #expect(error("a: &a [x, *a]\n")?.kind == .undefinedAlias)
        #expect(error("a: *later\nb: &later 1\n")?.kind == .undefinedAlias)
    }

    @Test("the billion laughs stop at the alias limit, at once and in little memory")
    func billionLaughs() throws {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1...9 {
            text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        let clock = ContinuousClock()
        let start = clock.now
        let e = error(text)
        #expect(clock.now - start < .seconds(2))
        #expect(e?.kind == .aliasExpansion)
        #expect(e?.description.hasSuffix("aliases expand to more than 100000 nodes") == true, "\(String(describing: e))")
        #expect(error(text, limits: YAMLLimits(maxAliasExpansion: 10)) != nil)
        var deeper = text
        for i in 10...40 {
            deeper += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        #expect(
            try parse(deeper, limits: YAMLLimits(maxAliasExpansion: .max)) != nil,
            "9^41 nodes: counted without overflow, and shared, not copied")
    }

    @Test("aliases within the limit are fine, and the limit counts what aliases stand for")
    func withinLimit() throws {
        let text = "a: &a [1, 2, 3]\nb: [*a, *a]\n"  // each *a stands for 4 nodes
        #expect(try parse(text, limits: YAMLLimits(maxAliasExpansion: 8))?["b"]?.sequence?.count == 2)
        #expect(error(text, limits: YAMLLimits(maxAliasExpansion: 7))?.mark == mark(2, 9))
    }
}

@Suite("YAML: depth")
struct DepthTests {
    /// How deep a tree nests, walked without recursion.
    func depth(_ node: YAMLNode) -> Int {
        var deepest = 0
        var todo: [(YAMLNode, Int)] = [(node, 0)]
        while let (n, d) = todo.popLast() {
            switch n.kind {
            case .scalar: deepest = max(deepest, d)
            case .sequence(let items):
                deepest = max(deepest, d + 1)
                todo += items.map { ($0, d + 1) }
            case .mapping(let m):
                deepest = max(deepest, d + 1)
                todo += m.map { ($0.value, d + 1) }
            }
        }
        return deepest
    }

    @Test("4096 levels of nesting are refused past the limit, without recursion")
    func deep() throws {
        let text = String(repeating: "[", count: 4096) + String(repeating: "]", count: 4096)
        let e = error(text)
        #expect(e?.kind == .tooDeep)
        #expect(e?.description == "line 1, column 1001: nested deeper than 1000 levels")
        #expect(
            try parse(String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)) != nil, "1000 levels are fine")
        let root = try #require(try parse(text, limits: YAMLLimits(maxDepth: 4096)))
        #expect(depth(root) == 4096)
        #expect(error(text, limits: YAMLLimits(maxDepth: 4095))?.kind == .tooDeep)
    }

    @Test("an unclosed flood of brackets or braces stops at the limit")
    func flood() {
        #expect(error("x: " + String(repeating: "[", count: 20_000))?.kind == .tooDeep)
        #expect(error("x: " + String(repeating: "{a: ", count: 5_000))?.kind == .tooDeep)
        var block = ""
        for i in 0..<1100 { block += String(repeating: " ", count: i) + "k:\n" }
        #expect(error(block)?.kind == .tooDeep, "block mappings too")
    }

    @Test("aliases count for depth: nesting an alias of a deep node is bounded too")
    func deepAlias() throws {
        let deep = "a: &d " + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "\n"
        #expect(try parse(deep + "b: *d\n") != nil)
        let e = error(deep + "b: " + String(repeating: "[", count: 600) + "*d" + String(repeating: "]", count: 600) + "\n")
        #expect(e?.kind == .tooDeep)
        #expect(e?.description == "line 2, column 604: the alias *d nests deeper than 1000 levels", "\(String(describing: e))")
    }
}
