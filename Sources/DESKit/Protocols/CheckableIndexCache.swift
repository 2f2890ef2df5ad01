/// An index cache on a server of its own (Redis) that can say whether it is usable, so that
/// `des health` reports a cache the process cannot use — unreachable, or refusing its login —
/// which lookups alone never do (a cache that is down only makes every lookup a miss).
public protocol CheckableIndexCache: IndexCache {
    /// Connects (or uses the open connection) and asks the server for an answer. Throws
    /// ``DESKitError`` `authentication` when the server refuses the credentials, `unavailable`
    /// when it cannot be reached; the message names the server, never the password.
    func healthCheck() async throws
}
