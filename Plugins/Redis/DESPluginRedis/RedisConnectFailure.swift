import DESKit

/// Why the Redis index cache has no connection: the server cannot be reached, it refused the
/// login, or it refused another setup step. Messages name the server, never the password.
enum RedisConnectFailure: Error, Sendable {
    /// No connection (refused, timed out, lost): hiredis's reason.
    case unreachable(String)
    /// `AUTH` was refused (`WRONGPASS`, `ERR invalid password`), or a command met `NOAUTH`.
    case authentication(String)
    /// Another setup step was refused (`SELECT` of a database the server does not have).
    case refused(String)

    /// Whether a Redis error reply is about the login.
    static func isAuthentication(_ message: String) -> Bool {
        let upper = message.uppercased()
        return upper.hasPrefix("NOAUTH") || upper.hasPrefix("WRONGPASS") || upper.contains("INVALID PASSWORD")
            || upper.contains("INVALID USERNAME-PASSWORD") || upper.contains("AUTHENTICATION REQUIRED")
            || upper.contains("AUTH <PASSWORD> CALLED WITHOUT ANY PASSWORD CONFIGURED")
    }

    /// One line for logs and errors.
    func describe(_ settings: RedisIndexCache.Settings, role: String = "Redis index cache") -> String {
        switch self {
        case .unreachable(let why):
            return "\(role) at \(settings.server) unreachable: \(why)"
        case .authentication(let reply):
            // The key the login goes in: the event stream's url is events.publish.url.
            let key = role.hasPrefix("Redis event stream") ? "events.publish.url" : "cache.url"
            let hint = reply.uppercased().hasPrefix("NOAUTH")
                ? " (the server wants a login: give user and password in \(key), redis://user:password@host)" : ""
            return "\(role) at \(settings.server): authentication failed: \(reply)\(hint)"
        case .refused(let why):
            return "\(role) at \(settings.server): \(why)"
        }
    }

    /// The failure as a typed error: `authentication` for a refused login, `unavailable` otherwise.
    func error(_ settings: RedisIndexCache.Settings, role: String = "Redis index cache") -> DESKitError {
        if case .authentication = self { return DESKitError(.authentication, describe(settings, role: role)) }
        return DESKitError(.unavailable, describe(settings, role: role))
    }
}
