#if canImport(Glibc)
import Glibc
#endif
import DESKit
import Foundation
import Logging

/// `DES_LOG_FORMAT=json`: one JSON object per line on stderr, for log shippers.
///
/// Each line has `ts` (RFC 3339, UTC, milliseconds), `level`, `logger` (the label, `des.packer`),
/// `msg`, and the metadata as fields of their own — `request_id` on every line of an HTTP
/// request among them. A metadata key that is one of those four names is written as `meta.<key>`.
/// A line is written with one `write(2)`, so lines of concurrent tasks never interleave.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let reserved: Set<String> = ["ts", "level", "logger", "msg"]

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        if let error = event.error, all["error"] == nil { all["error"] = .string("\(error)") }
        var out = "{\"ts\":\"" + Self.timestamp() + "\",\"level\":\"" + event.level.rawValue + "\",\"logger\":"
        out += Self.quoted(label) + ",\"msg\":" + Self.quoted(event.message.description)
        for key in all.keys.sorted() {
            guard let value = all[key] else { continue }
            out += "," + Self.quoted(Self.reserved.contains(key) ? "meta." + key : key) + ":" + Self.json(value)
        }
        out += "}\n"
        var bytes = Array(out.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(2, base + offset, buffer.count - offset)
                if n <= 0 { if n < 0 && errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }

    /// A metadata value as JSON: strings quoted, arrays and dictionaries as such.
    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return quoted(s)
        case .stringConvertible(let c): return quoted(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.sorted { $0.key < $1.key }.map { quoted($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        }
    }

    /// `text` as a JSON string: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            // C0 and C1 controls, and the line and paragraph separators that JavaScript and Python's
            // splitlines() take for line breaks.
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Now as `2026-12-06T09:00:00.123Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var t = now.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(now.tv_nsec / 1_000_000))
    }
}

/// Wraps a log handler so that no known secret (``SecretRedaction``) reaches the log: the message
/// and every metadata value are redacted first (a database or cache that echoes a password in
/// its error text is logged with `***` in its place).
struct RedactingLogHandler: LogHandler {
    var base: any LogHandler
    /// Whether control characters in the message and metadata are written as escapes (`\n`,
    /// `\u{1B}`): a text log is one line per event, and a value holding a line break (a client's
    /// text) must not forge another. JSON lines escape them already.
    var escapesControls = false

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }
    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }
    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        let escape = escapesControls
        event.message = Logger.Message(stringLiteral: Self.clean(SecretRedaction.redact(event.message.description), escape))
        event.metadata = event.metadata?.mapValues { Self.redact($0, escapingControls: escape) }
        var base = self.base
        let own = base.metadata
        if own.values.contains(where: { Self.needsRedaction($0) || (escape && Self.hasControls($0)) }) {
            base.metadata = own.mapValues { Self.redact($0, escapingControls: escape) }
        }
        base.log(event: event)
    }

    /// `text` with each control character (``isControl(_:)``) written as an escape, when `escape`.
    static func clean(_ text: String, _ escape: Bool) -> String {
        guard escape, text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out += isControl(scalar) ? "\\u{\(String(scalar.value, radix: 16, uppercase: true))}" : String(scalar)
            }
        }
        return out
    }

    /// Whether a text log writes `scalar` as an escape: controls (C0, C1), the line and paragraph
    /// separators, and format characters (bidi overrides that reorder what a terminal shows, zero-width ones).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator, .format: return true
        default: return false
        }
    }

    static func hasControls(_ value: Logger.Metadata.Value) -> Bool {
        switch value {
        case .string(let s): return s.unicodeScalars.contains(where: isControl)
        case .stringConvertible(let c): return c.description.unicodeScalars.contains(where: isControl)
        case .array(let a): return a.contains(where: hasControls)
        case .dictionary(let d): return d.values.contains(where: hasControls)
        }
    }

    static func needsRedaction(_ value: Logger.Metadata.Value) -> Bool {
        if case .string(let s) = value { return SecretRedaction.redact(s) != s }
        return false
    }

    static func redact(_ value: Logger.Metadata.Value, escapingControls escape: Bool = false) -> Logger.Metadata.Value {
        switch value {
        case .string(let s): return .string(clean(SecretRedaction.redact(s), escape))
        case .stringConvertible(let c): return .string(clean(SecretRedaction.redact(c.description), escape))
        case .array(let a): return .array(a.map { redact($0, escapingControls: escape) })
        case .dictionary(let d): return .dictionary(d.mapValues { redact($0, escapingControls: escape) })
        }
    }
}
