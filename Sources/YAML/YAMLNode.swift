/// A position in YAML text: 1-based line and column, as libyaml counts them (columns count
/// Unicode scalars, not bytes).
public struct YAMLMark: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The line, from 1.
    public let line: Int
    /// The column, from 1, in Unicode scalars.
    public let column: Int

    /// A mark at `line` and `column`, both 1-based.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// `line L, column C`.
    public var description: String { "line \(line), column \(column)" }

    /// Earlier in the text first.
    public static func < (a: YAMLMark, b: YAMLMark) -> Bool { (a.line, a.column) < (b.line, b.column) }
}

/// How a scalar was written. The text is the same whatever the style; the style tells a
/// plain `10` from a quoted `"10"` for a reader that wants to.
public enum YAMLScalarStyle: Sendable, Hashable {
    /// Unquoted: `10`, `true`, `web`, or nothing at all (an empty value).
    case plain
    /// `'single quoted'`.
    case singleQuoted
    /// `"double quoted"`, with escapes already resolved.
    case doubleQuoted
    /// A `|` block.
    case literal
    /// A `>` block.
    case folded
}

/// A scalar: its text (escapes, folding and quotes already resolved) and how it was written.
/// No type is resolved: `true`, `10` and `~` are text for the reader to interpret.
public struct YAMLScalar: Sendable, Hashable, CustomStringConvertible {
    /// The value, as text.
    public let text: String
    /// How it was written.
    public let style: YAMLScalarStyle

    /// A scalar with `text`, written in `style`.
    public init(_ text: String, style: YAMLScalarStyle = .plain) {
        self.text = text
        self.style = style
    }

    /// Written without quotes or block indicator: only plain scalars are numbers, booleans or null
    /// in YAML's core schema.
    public var isPlain: Bool { style == .plain }

    /// Written in single or double quotes.
    public var isQuoted: Bool { style == .singleQuoted || style == .doubleQuoted }

    /// The text.
    public var description: String { text }
}

/// A mapping's entries, in the order written. Keys are scalars, and no two have the same text
/// (the parser refuses a duplicate key).
public struct YAMLMapping: Sendable, Equatable, RandomAccessCollection {
    /// One `key: value` entry.
    public struct Entry: Sendable, Equatable {
        /// The key.
        public let key: YAMLScalar
        /// Where the key starts.
        public let keyMark: YAMLMark
        /// The value.
        public let value: YAMLNode

        /// An entry `key: value`, the key written at `keyMark`.
        public init(key: YAMLScalar, keyMark: YAMLMark, value: YAMLNode) {
            self.key = key
            self.keyMark = keyMark
            self.value = value
        }
    }

    /// The entries, in the order written.
    public let entries: [Entry]

    /// A mapping of `entries`, in that order.
    public init(_ entries: [Entry]) { self.entries = entries }

    /// The first position: 0.
    public var startIndex: Int { entries.startIndex }
    /// One past the last entry.
    public var endIndex: Int { entries.endIndex }
    /// The entry at `position`.
    public subscript(position: Int) -> Entry { entries[position] }

    /// The value of the entry whose key's text is `key` (the first one, for a mapping built by
    /// hand with repeated keys), or nil.
    public subscript(key: String) -> YAMLNode? { entries.first { $0.key.text == key }?.value }

    /// The keys' texts, in the order written.
    public var keys: [String] { entries.map(\.key.text) }
}

/// A node of a parsed YAML document: a scalar, a sequence or a mapping, with where it starts.
/// Immutable. Aliases are resolved: an alias is the node its anchor named (that node's mark,
/// not the alias's), shared, not copied.
public struct YAMLNode: Sendable, Equatable {
    /// What the node is.
    public enum Kind: Sendable, Equatable {
        /// A scalar: text and style.
        case scalar(YAMLScalar)
        /// A sequence (`- a` lines or `[a, b]`): its items in order.
        case sequence([YAMLNode])
        /// A mapping (`k: v` lines or `{k: v}`): its entries in order.
        case mapping(YAMLMapping)
    }

    /// What the node is.
    public let kind: Kind
    /// Where the node starts (for a scalar, its first character or opening quote; for a block
    /// mapping, its first key; for a block sequence, its first `-`).
    public let mark: YAMLMark

    /// A node of `kind` starting at `mark`.
    public init(_ kind: Kind, mark: YAMLMark) {
        self.kind = kind
        self.mark = mark
    }

    /// The scalar, if the node is one.
    public var scalar: YAMLScalar? {
        if case .scalar(let s) = kind { return s }
        return nil
    }

    /// The scalar's text, if the node is a scalar.
    public var text: String? { scalar?.text }

    /// The items, if the node is a sequence.
    public var sequence: [YAMLNode]? {
        if case .sequence(let items) = kind { return items }
        return nil
    }

    /// The entries, if the node is a mapping.
    public var mapping: YAMLMapping? {
        if case .mapping(let m) = kind { return m }
        return nil
    }

    /// The value for `key` if the node is a mapping that has it, else nil.
    public subscript(key: String) -> YAMLNode? { mapping?[key] }
}

/// Bounds on what a document may make the parser build: the nesting depth (a tree's readers
/// recurse) and how much aliases may add (the "billion laughs": nine aliases of nine aliases of
/// … expand to 10⁹ nodes from a few hundred bytes).
public struct YAMLLimits: Sendable, Hashable {
    /// The deepest nesting of sequences and mappings, aliased ones included (the top-level
    /// collection is level 1). Default 1000, the bound of the libyaml that Yams bundled.
    public var maxDepth: Int
    /// How many nodes all aliases of the document may stand for together, counting every node
    /// of every aliased subtree each time it is aliased. Default 100 000.
    public var maxAliasExpansion: Int

    /// Limits: by default 1000 levels and 100 000 nodes reached through aliases.
    public init(maxDepth: Int = 1000, maxAliasExpansion: Int = 100_000) {
        self.maxDepth = maxDepth
        self.maxAliasExpansion = maxAliasExpansion
    }
}

/// Why a text is not a YAML document this module accepts. Its description is one
/// `line L, column C: problem` phrase, with libyaml's context where it gives one:
/// `line 3, column 1: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 4)`.
/// Keys it quotes (`duplicate key 'a'`) are as written, and may hold line breaks or escapes:
/// make it safe before printing text that came from outside.
public struct YAMLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem.
    public enum Kind: Sendable, Hashable {
        /// Not text YAML reads: invalid UTF-8, a control character (libyaml's reader).
        case invalidText
        /// Not YAML syntax (libyaml's scanner or parser).
        case syntax
        /// A key given twice in one mapping (keys compare by text, whatever their style).
        case duplicateKey
        /// A key that is a sequence or a mapping (`? [a, b]: c`): keys must be scalars.
        case complexKey
        /// An alias (`*name`) with no anchor `&name` before it (or inside its own anchor's node).
        case undefinedAlias
        /// Nested deeper than ``YAMLLimits/maxDepth``.
        case tooDeep
        /// Aliases standing for more nodes than ``YAMLLimits/maxAliasExpansion``.
        case aliasExpansion
        /// More than one document (a second `---`).
        case multipleDocuments
        /// libyaml ran out of memory.
        case outOfMemory
    }

    /// The kind of problem.
    public let kind: Kind
    /// Where the problem is, when known.
    public let mark: YAMLMark?
    /// What is wrong, in libyaml's words for syntax errors (`mapping values are not allowed in this context`).
    public let problem: String
    /// What libyaml was reading when it found the problem (`while parsing a flow sequence`), if it says.
    public let context: String?
    /// Where that started.
    public let contextMark: YAMLMark?

    /// An error of `kind` at `mark`.
    public init(_ kind: Kind, at mark: YAMLMark?, _ problem: String, context: String? = nil, contextMark: YAMLMark? = nil) {
        self.kind = kind
        self.mark = mark
        self.problem = problem
        self.context = context
        self.contextMark = contextMark
    }

    /// `line L, column C: problem (context at line L, column C)`.
    public var description: String {
        var s = mark.map { "\($0): " } ?? ""
        s += problem
        if let context {
            s += " (\(context)\(contextMark.map { " at \($0)" } ?? ""))"
        }
        return s
    }
}
