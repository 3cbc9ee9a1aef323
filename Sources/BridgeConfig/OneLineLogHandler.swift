import IdlewatcherCore
import Logging

/// Wraps the executable's log handler so that every log entry is one line whatever it quotes.
///
/// Log lines quote what arrives from the network: request ids, unknown actions, container
/// ids from topics. A request id `x\n2026-… error …` would otherwise forge a log line, an
/// ANSI escape would repaint the operator's terminal (found by the fuzz test). Messages and
/// metadata values are escaped with `String.oneLine()` before the wrapped handler formats them.
public struct OneLineLogHandler: LogHandler {
    var wrapped: any LogHandler

    /// Wraps `wrapped`, which still formats and writes every entry.
    public init(_ wrapped: any LogHandler) { self.wrapped = wrapped }

    /// Escapes the message and the event's metadata values to one line each, then passes the entry on.
    public func log(event: LogEvent) {
        var e = event
        e.message = Logger.Message(stringLiteral: event.message.description.oneLine())
        e.metadata = event.metadata.map(Self.escape)
        wrapped.log(event: e)
    }

    static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata { metadata.mapValues(escape) }

    static func escape(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let s): .string(s.oneLine())
        case .stringConvertible(let c): .string(c.description.oneLine())
        case .array(let a): .array(a.map(escape))
        case .dictionary(let d): .dictionary(escape(d))
        }
    }

    /// The wrapped handler's.
    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    /// The wrapped handler's metadata, passed through unchanged.
    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    /// The wrapped handler's level.
    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    /// One of the wrapped handler's metadata values, passed through unchanged.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }
}
