@testable import DESCLI
import Logging
import Synchronization
import Testing

/// What a ``Capturing`` handler was asked to write.
private final class Written: Sendable {
    let lines = Mutex<[(String, Logger.Metadata)]>([])
}

/// A log handler that keeps what it is asked to write.
private struct Capturing: LogHandler {
    let written: Written
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        written.lines.withLock { $0.append((event.message.description, merged)) }
    }
}

@Suite("Log lines cannot be forged")
struct LogEscapingTests {
    @Test("Text logs write control characters in the message and metadata as escapes; JSON logs are left to JSON's own escaping")
    func escapesControls() {
        for escapes in [true, false] {
            let written = Written()
            var logger = Logger(label: "t") { _ in RedactingLogHandler(base: Capturing(written: written), escapesControls: escapes) }
            logger[metadataKey: "request"] = "r1\nforged level=critical"
            logger.notice("file deleted\r\nfake line", metadata: ["reason": "x\n2026-01-01 critical: fake", "list": ["a\u{1B}[31m"], "plain": "ok é"])
            let (message, metadata) = written.lines.withLock { $0[0] }
            if escapes {
                #expect(message == "file deleted\\r\\nfake line")
                #expect(metadata["reason"] == "x\\n2026-01-01 critical: fake" && metadata["request"] == "r1\\nforged level=critical")
                #expect(metadata["list"] == ["a\\u{1B}[31m"] && metadata["plain"] == "ok é")
            } else {
                #expect(message == "file deleted\r\nfake line" && metadata["reason"] == "x\n2026-01-01 critical: fake")
            }
        }
    }

    @Test("The CLI's error line is one line: a path or name holding a line break, an escape or a line separator is written with escapes")
    func errorLineIsOneLine() throws {
        try withTempDir { dir in
            let hostile = "/nonexistent\n2026-01-01T00:00:00+0000 critical des: FORGED\u{1B}[31m\u{2028}x\u{202E}.des"
            let r = try runDES(["cat", hostile, "a"], in: dir)
            #expect(r.status != 0)
            let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(lines.count == 1 && lines[0].hasPrefix("des: error: "), "\(r.stderr)")
            #expect(r.stderr.contains("\\n2026-01-01T00:00:00+0000 critical") && r.stderr.contains("\\u{1B}[31m") && r.stderr.contains("\\u{2028}") && r.stderr.contains("\\u{202E}"), "\(r.stderr)")
        }
    }
}
