import CYAML

extension YAMLNode {
    /// Parses one YAML document with libyaml's event parser.
    ///
    /// - Returns: the root node, or nil when the text holds no document (empty, or only
    ///   comments and blank lines). A document that is only `---` is an empty plain scalar.
    /// - Throws: ``YAMLError``: a syntax error; a duplicate key; a key that is not a scalar; an
    ///   undefined alias; nesting or aliases past `limits`; a second document (refused: the
    ///   input must be one document).
    ///
    /// Anchors and aliases are resolved (an alias shares its anchor's node). Tags (`!!str`,
    /// `!custom`) are accepted and dropped: scalars carry text and style only, and the reader
    /// decides what a scalar means. Directives (`%YAML 1.1`) are libyaml's to accept or refuse.
    public static func parse(_ text: String, limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> YAMLNode? {
        var text = text
        // withUTF8 rethrows untyped errors: carry the typed one out in a Result.
        return try text.withUTF8 { bytes in Result { () throws(YAMLError) in try parseDocument(bytes, limits: limits) } }.get()
    }

    /// Parses one YAML document from UTF-8 bytes, which need not be valid UTF-8: invalid
    /// sequences are refused with their line and column (``YAMLError/Kind/invalidText``).
    /// Otherwise as ``parse(_:limits:)``.
    public static func parse(utf8 bytes: [UInt8], limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> YAMLNode? {
        try bytes.withUnsafeBufferPointer { (b) throws(YAMLError) -> YAMLNode? in try parseDocument(b, limits: limits) }
    }

    private static func parseDocument(_ bytes: UnsafeBufferPointer<UInt8>, limits: YAMLLimits) throws(YAMLError) -> YAMLNode? {
        guard !bytes.isEmpty else { return nil }
        let events = try EventReader(bytes)
        var builder = TreeBuilder(limits: limits)
        guard case .streamStart = try events.next() else { throw YAMLError(.syntax, at: nil, "no stream start") }
        let first = try events.next()
        guard case .documentStart(let documentMark) = first else { return nil }  // stream end: no document
        while builder.root == nil {
            try builder.add(events.next())
        }
        guard case .documentEnd = try events.next() else { throw YAMLError(.syntax, at: nil, "no document end") }
        let after = try events.next()
        if case .documentStart(let mark) = after {
            throw YAMLError(
                .multipleDocuments, at: mark, "but found another document",
                context: "expected a single document in the stream", contextMark: documentMark)
        }
        return builder.root
    }
}

/// One libyaml event, copied out of C memory.
enum Event {
    case streamStart
    case streamEnd
    case documentStart(YAMLMark)
    case documentEnd
    case alias(anchor: String, YAMLMark)
    case scalar(anchor: String?, YAMLScalar, YAMLMark)
    case sequenceStart(anchor: String?, YAMLMark)
    case sequenceEnd
    case mappingStart(anchor: String?, YAMLMark)
    case mappingEnd
}

/// libyaml's parser over a byte buffer that outlives it. The only place C pointers live.
final class EventReader {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private let bytes: UnsafeBufferPointer<UInt8>

    init(_ bytes: UnsafeBufferPointer<UInt8>) throws(YAMLError) {
        self.bytes = bytes
        parser = .allocate(capacity: 1)
        guard yaml_parser_initialize(parser) == 1 else {
            parser.deallocate()
            throw YAMLError(.outOfMemory, at: nil, "out of memory")
        }
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(parser, bytes.baseAddress, bytes.count)
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
    }

    func next() throws(YAMLError) -> Event {
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else { throw error() }
        defer { yaml_event_delete(&event) }
        let mark = Self.mark(event.start_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT: return .streamStart
        case YAML_STREAM_END_EVENT: return .streamEnd
        case YAML_DOCUMENT_START_EVENT: return .documentStart(mark)
        case YAML_DOCUMENT_END_EVENT: return .documentEnd
        case YAML_ALIAS_EVENT: return .alias(anchor: Self.string(event.data.alias.anchor) ?? "", mark)
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let text = s.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: s.length), as: UTF8.self) } ?? ""
            let style: YAMLScalarStyle =
                switch s.style {
                case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
                case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
                case YAML_LITERAL_SCALAR_STYLE: .literal
                case YAML_FOLDED_SCALAR_STYLE: .folded
                default: .plain
                }
            return .scalar(anchor: Self.string(s.anchor), YAMLScalar(text, style: style), mark)
        case YAML_SEQUENCE_START_EVENT: return .sequenceStart(anchor: Self.string(event.data.sequence_start.anchor), mark)
        case YAML_SEQUENCE_END_EVENT: return .sequenceEnd
        case YAML_MAPPING_START_EVENT: return .mappingStart(anchor: Self.string(event.data.mapping_start.anchor), mark)
        case YAML_MAPPING_END_EVENT: return .mappingEnd
        default: throw YAMLError(.syntax, at: mark, "unexpected libyaml event \(event.type.rawValue)")
        }
    }

    private static func mark(_ m: yaml_mark_t) -> YAMLMark { YAMLMark(line: Int(m.line) + 1, column: Int(m.column) + 1) }

    private static func string(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? { p.map { String(cString: $0) } }

    /// The parser's error, as libyaml describes it.
    private func error() -> YAMLError {
        let p = parser.pointee
        let problem = p.problem.map { String(cString: $0) } ?? "unknown error"
        switch p.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(.outOfMemory, at: nil, "out of memory")
        case YAML_READER_ERROR:
            // The reader gives a byte offset, not a mark.
            var detail = ""
            if p.problem_value >= 0 {
                let hex = String(p.problem_value, radix: 16, uppercase: true)
                detail =
                    problem.contains("octet")
                    ? " (byte 0x\(hex.count < 2 ? "0" + hex : hex))"
                    : " (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))"
            }
            return YAMLError(.invalidText, at: markOfByte(p.problem_offset), problem + detail)
        default:  // scanner, parser
            let context = p.context.map { String(cString: $0) }
            return YAMLError(
                .syntax, at: Self.mark(p.problem_mark), problem, context: context,
                contextMark: context == nil ? nil : Self.mark(p.context_mark))
        }
    }

    /// Line and column (in Unicode scalars) of a byte offset into the input.
    private func markOfByte(_ offset: Int) -> YAMLMark {
        var line = 1
        var column = 1
        var previous: UInt8 = 0
        for b in bytes.prefix(min(offset, bytes.count)) {
            switch b {
            case 0x0A:
                if previous != 0x0D { line += 1 }
                column = 1
            case 0x0D:
                line += 1
                column = 1
            case 0x80...0xBF: break  // a continuation byte
            default: column += 1
            }
            previous = b
        }
        return YAMLMark(line: line, column: column)
    }
}

/// Builds the tree from events without recursion, so that no input can exhaust the stack.
struct TreeBuilder {
    /// A node with what bounds its readers: how many nodes it stands for and how deep it nests.
    struct Built {
        var node: YAMLNode
        var size: Int
        var height: Int
    }

    /// An open sequence or mapping.
    struct Frame {
        var isMapping: Bool
        var mark: YAMLMark
        var anchor: String?
        var items: [YAMLNode] = []
        var entries: [YAMLMapping.Entry] = []
        var pendingKey: (YAMLScalar, YAMLMark)? = nil
        var firstMarks: [String: YAMLMark] = [:]
        var duplicates: Set<String> = []
        var size = 1
        var height = 1
    }

    let limits: YAMLLimits
    var stack: [Frame] = []
    var anchors: [String: Built] = [:]
    var aliased = 0
    var root: YAMLNode? = nil

    init(limits: YAMLLimits) { self.limits = limits }

    /// a + b, or Int.max past it (aliases of aliases grow exponentially under a lifted limit).
    private static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    mutating func add(_ event: Event) throws(YAMLError) {
        switch event {
        case .scalar(let anchor, let scalar, let mark):
            try complete(Built(node: YAMLNode(.scalar(scalar), mark: mark), size: 1, height: 0), anchor: anchor, at: mark)
        case .alias(let name, let mark):
            guard let target = anchors[name] else { throw YAMLError(.undefinedAlias, at: mark, "found undefined alias") }
            if stack.count + target.height > limits.maxDepth {
                throw YAMLError(.tooDeep, at: mark, "the alias *\(name) nests deeper than \(limits.maxDepth) levels")
            }
            aliased = Self.add(aliased, target.size)
            if aliased > limits.maxAliasExpansion {
                throw YAMLError(.aliasExpansion, at: mark, "aliases expand to more than \(limits.maxAliasExpansion) nodes")
            }
            try complete(target, anchor: nil, at: mark)
        case .sequenceStart(let anchor, let mark):
            try open(Frame(isMapping: false, mark: mark, anchor: anchor))
        case .mappingStart(let anchor, let mark):
            try open(Frame(isMapping: true, mark: mark, anchor: anchor))
        case .sequenceEnd, .mappingEnd:
            let f = stack.removeLast()
            if f.isMapping {
                if let first = f.duplicates.min() {
                    let keys = f.duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
                    throw YAMLError(.duplicateKey, at: f.firstMarks[first], "duplicate key \(keys)")
                }
                try complete(
                    Built(node: YAMLNode(.mapping(YAMLMapping(f.entries)), mark: f.mark), size: f.size, height: f.height),
                    anchor: f.anchor, at: f.mark)
            } else {
                try complete(
                    Built(node: YAMLNode(.sequence(f.items), mark: f.mark), size: f.size, height: f.height), anchor: f.anchor,
                    at: f.mark)
            }
        case .streamStart, .streamEnd, .documentStart, .documentEnd:
            throw YAMLError(.syntax, at: nil, "unexpected \(event) inside a document")
        }
    }

    private mutating func open(_ frame: Frame) throws(YAMLError) {
        // A collection as a key is refused once it is complete (in `complete`), so that a syntax
        // error inside it (`{{{`) is reported as libyaml words it.
        if stack.count + 1 > limits.maxDepth {
            throw YAMLError(.tooDeep, at: frame.mark, "nested deeper than \(limits.maxDepth) levels")
        }
        stack.append(frame)
    }

    /// A finished node, written at `mark` (an alias's own mark, not its anchor's): into its
    /// parent, or the root; under its anchor for later aliases.
    private mutating func complete(_ built: Built, anchor: String?, at mark: YAMLMark) throws(YAMLError) {
        if let anchor { anchors[anchor] = built }
        guard !stack.isEmpty else {
            root = built.node
            return
        }
        let i = stack.count - 1
        stack[i].size = Self.add(stack[i].size, built.size)
        stack[i].height = max(stack[i].height, built.height + 1)
        guard stack[i].isMapping else {
            stack[i].items.append(built.node)
            return
        }
        if let (key, keyMark) = stack[i].pendingKey {
            stack[i].entries.append(YAMLMapping.Entry(key: key, keyMark: keyMark, value: built.node))
            stack[i].pendingKey = nil
            return
        }
        guard let key = built.node.scalar else {
            throw YAMLError(
                .complexKey, at: mark,
                "a mapping key must be a scalar, not a \(built.node.mapping != nil ? "mapping" : "sequence")")
        }
        stack[i].pendingKey = (key, mark)
        if stack[i].firstMarks[key.text] == nil {
            stack[i].firstMarks[key.text] = mark
        } else {
            stack[i].duplicates.insert(key.text)
        }
    }
}
