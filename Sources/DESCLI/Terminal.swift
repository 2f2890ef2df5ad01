import DESKit
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writing to stdout/stderr, progress lines on a TTY, and number formatting.
enum Terminal {
    /// Whether stderr is a terminal (progress lines are shown only then).
    static let stderrIsTTY = isatty(2) == 1

    /// The value of `DES_LOG_FORMAT` (trimmed, lower case; empty when unset).
    private static let logFormat = ProcessInfo.processInfo.environment["DES_LOG_FORMAT"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
    /// `DES_LOG_FORMAT=json`: stderr carries one JSON object per line, these lines included.
    static let jsonLines = logFormat == "json"
    /// A `DES_LOG_FORMAT` that is neither `text` nor `json` (nil when it is one of them, or unset).
    static let unknownLogFormat: String? = ["", "text", "json"].contains(logFormat) ? nil : logFormat

    /// Writes a line to stderr.
    static func warn(_ text: String) { stderrLine("warning", "des: warning: ", text) }

    /// Writes a notice line to stderr (what a user starting a long-running process needs to know).
    static func note(_ text: String) { stderrLine("notice", "des: ", text) }

    /// Writes an error line to stderr.
    static func error(_ text: String) { stderrLine("error", "des: error: ", text) }

    /// One line on stderr, as text after `prefix` (control characters written as escapes) or as
    /// a JSON log line of `level`; no known secret in it (``SecretRedaction``).
    private static func stderrLine(_ level: String, _ prefix: String, _ text: String) {
        clearProgress()
        let text = SecretRedaction.redact(text)
        let line =
            jsonLines
            ? "{\"ts\":\"" + JSONLogHandler.timestamp() + "\",\"level\":\"" + level + "\",\"logger\":\"des\",\"msg\":" + JSONLogHandler.quoted(text) + "}"
            : prefix + RedactingLogHandler.clean(text, true)  // one line: a name or path given or found cannot forge another
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Writes text to stdout (no known secret in it: a dependency's error in a report is redacted).
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(SecretRedaction.redact(text).utf8))
    }

    /// Writes raw bytes to stdout, retrying short writes.
    static func outBytes(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = write(1, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIFailure(message: "writing to stdout failed: \(String(cString: strerror(errno)))", exitCode: 74)
            }
            p += n
            left -= n
        }
    }

    nonisolated(unsafe) private static var progressShown = false
    nonisolated(unsafe) private static var lastProgress: UInt64 = 0

    /// Shows a progress line on a TTY, at most ten times a second.
    static func progress(_ text: @autoclosure () -> String) {
        guard stderrIsTTY else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if now - lastProgress < 100_000_000 { return }
        lastProgress = now
        progressShown = true
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text()).utf8))
    }

    /// Removes the progress line.
    static func clearProgress() {
        guard progressShown else { return }
        progressShown = false
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    /// Seconds since an arbitrary start, for timing.
    static func seconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// A time (seconds since 1970) as ISO 8601 UTC.
    static func time(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    /// `1.5 MiB`-style sizes.

    static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }

    /// Compact JSON text of a Foundation object, keys sorted.
    static func json(_ object: Any) -> String {
        guard JSONSerialization.isValidJSONObject(object),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}
