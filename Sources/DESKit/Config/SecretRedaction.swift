import Foundation
import Synchronization

/// Every secret the process holds (each ``Secret`` made, of 6 characters or more), so that text
/// a server sent back — an error that echoes a password, a URL with its credentials — is
/// redacted before it reaches a log line, stderr or a report: ``redact(_:)``.
public enum SecretRedaction {
    private static let known = Mutex<Set<String>>([])

    /// The shortest secret redacted: shorter values (`""`, `des`, `1234`) would blank ordinary words.
    public static let minimumLength = 6

    /// Remembers `value` as a secret.
    public static func register(_ value: String) {
        guard value.count >= minimumLength else { return }
        _ = known.withLock { $0.insert(value) }
    }

    /// `text` with every known secret replaced by `***`.
    public static func redact(_ text: String) -> String {
        let secrets = known.withLock { $0 }
        guard !secrets.isEmpty else { return text }
        var out = text
        // Longest first, so that a secret holding another is replaced whole.
        for secret in secrets.sorted(by: { $0.count > $1.count }) where out.contains(secret) {
            out = out.replacingOccurrences(of: secret, with: "***")
        }
        return out
    }
}
