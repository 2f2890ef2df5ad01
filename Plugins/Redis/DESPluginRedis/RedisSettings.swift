import DESKit
import Foundation

extension RedisIndexCache {
    /// Where Redis is and how to log in: `redis://[user[:password]@]host[:port][/db]`.
    ///
    /// With a user, the cache logs in with `AUTH user password` (a Redis 6 ACL user); with only
    /// a password (`redis://:password@host`), with `AUTH password` (the `default` user, or
    /// `requirepass`). User and password may be percent-encoded (`%40` for `@`, `%3A` for `:`).
    /// `/db` selects a database by number. No message of this type ever shows the password.
    public struct Settings: Sendable, Hashable {
        /// The server's host name or address (an IPv6 address without its brackets).
        public var host = "127.0.0.1"
        /// The server's port.
        public var port = 6379
        /// The ACL user to log in as (nil: the `default` user).
        public var username: String?
        /// The password (nil: no `AUTH`).
        public var password: String?
        /// The database selected after login (`SELECT`), 0 by default.
        public var database = 0
        /// What every key starts with (`{prefix}:idx:…`, `{prefix}:ver:…`).
        public var keyPrefix = "des"
        /// How long an entry lives (nil: until evicted).
        public var ttlSeconds: Double? = 3600
        /// Longest wait for Redis on one command (a slow Redis is treated as down).
        public var timeoutSeconds: Double = 0.5
        /// Creates default settings.
        public init() {}

        /// Where the server is, for messages: `host:port`, and the user when there is one (never the password).
        public var server: String {
            let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            return username.map { "\(address) (user '\($0)')" } ?? address
        }

        /// Settings from `redis://[user[:password]@]host[:port][/db]`; anything else is a
        /// `configuration` error that says what is wrong without repeating the URL (it may hold a password).
        public init(url: String) throws {
            func refuse(_ why: String) -> DESKitError {
                DESKitError(.configuration, "cache.url must be redis://[user[:password]@]host[:port][/db]: \(why)")
            }
            guard let schemeEnd = url.range(of: "://") else { throw refuse("it has no scheme") }
            let scheme = url[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "redis" else {
                if scheme == "rediss" { throw refuse("TLS (rediss://) is not supported by this build") }
                let plain = scheme.count <= 16 && scheme.allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
                throw refuse(plain ? "the scheme is '\(scheme)', not redis" : "the scheme is not redis")
            }
            var rest = Substring(url[schemeEnd.upperBound...])
            guard !rest.contains("?"), !rest.contains("#") else { throw refuse("query strings and fragments are not supported") }
            if let at = rest.lastIndex(of: "@") {
                let auth = rest[..<at]
                rest = rest[rest.index(after: at)...]
                let user: Substring, secret: Substring?
                if let colon = auth.firstIndex(of: ":") {
                    (user, secret) = (auth[..<colon], auth[auth.index(after: colon)...])
                } else {
                    (user, secret) = (auth, nil)
                }
                guard let decodedUser = String(user).removingPercentEncoding else {
                    throw refuse("the user is not valid percent-encoding")
                }
                var decodedSecret: String?
                if let secret {
                    guard let decoded = String(secret).removingPercentEncoding else {
                        throw refuse("the password is not valid percent-encoding (write % as %25)")
                    }
                    decodedSecret = decoded
                }
                if !decodedUser.isEmpty { username = decodedUser }
                if let decodedSecret, !decodedSecret.isEmpty { password = decodedSecret }
                if username != nil && password == nil { throw refuse("a user needs a password (redis://user:password@host)") }
            }
            if let slash = rest.firstIndex(of: "/") {
                let db = rest[rest.index(after: slash)...]
                if !db.isEmpty {
                    guard let n = Int(db), (0...1_000_000).contains(n) else { throw refuse("the database after '/' must be a number") }
                    database = n
                }
                rest = rest[..<slash]
            }
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { throw refuse("an IPv6 address needs its closing ']'") }
                host = String(rest[rest.index(after: rest.startIndex)..<close])
                rest = rest[rest.index(after: close)...]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":") else { throw refuse("unexpected text after the IPv6 address") }
                    port = try Self.port(rest.dropFirst(), refuse)
                }
            } else {
                if let colon = rest.lastIndex(of: ":") {
                    port = try Self.port(rest[rest.index(after: colon)...], refuse)
                    rest = rest[..<colon]
                }
                guard !rest.isEmpty else { throw refuse("it names no host") }
                host = String(rest)
            }
            guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "@" }) else {
                throw refuse("the host is not a host name or address")
            }
        }

        private static func port(_ text: Substring, _ refuse: (String) -> DESKitError) throws -> Int {
            guard let p = Int(text), (1...65_535).contains(p) else { throw refuse("the port must be 1–65535") }
            return p
        }
    }
}

extension RedisIndexCache.Settings {
    /// The server and login of a plugin section's required `url` key (`what` names the section in
    /// its error). A URL every command would refuse is refused here, at its line; the message
    /// never repeats the URL.
    init(section: ConfigSection, url key: ConfigKey, what: String) throws {
        guard let url = try section.secret(key) else {
            throw section.error(key.name, "\(what) needs '\(key.name)' (redis://host:6379)")
        }
        do {
            self = try Self(url: url.value)
        } catch let error as DESKitError {
            let message = error.message.hasPrefix("cache.url ") ? String(error.message.dropFirst("cache.url ".count)) : error.message
            throw section.error(key.name, message)
        }
    }
}
