/// An error from the framework core: configuration, plugins, sources, storage, metadata.
public struct DESKitError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        /// The configuration is invalid.
        public static let configuration = Code("configuration")
        /// No plugin is registered for a type.
        public static let unknownPlugin = Code("unknownPlugin")
        /// A database reported an error.
        public static let database = Code("database")
        /// A server could not be reached.
        public static let unavailable = Code("unavailable")
        /// The component was closed on purpose (a connection pool after shutdown began): unlike
        /// ``unavailable``, an outage, no retry can help, so none is made.
        public static let closed = Code("closed")
        /// A server refused the credentials (a wrong user or password). The message names the
        /// server and the user, never the password; retrying does not help.
        public static let authentication = Code("authentication")
        /// Storage failed.
        public static let storage = Code("storage")
        /// Data is not what it must be.
        public static let invalidData = Code("invalidData")
        /// Something was not found.
        public static let notFound = Code("notFound")
        /// A fencing token or lease no longer holds.
        public static let fenced = Code("fenced")
        /// A catalog table does not fit its mapping: a mapped column is missing or has a type DES
        /// cannot use. The message names the source, the table and the column.
        public static let catalog = Code("catalog")
        /// The object changed between two reads (its version is not the one asked for).
        public static let changed = Code("changed")
        public var description: String { raw }
    }

    /// The kind of failure.
    public var code: Code
    /// What is wrong.
    public var message: String
    /// Whether retrying may succeed (a dropped connection, a busy database, a timeout).
    public var isTransient: Bool

    /// Creates an error.
    public init(_ code: Code, _ message: String, transient: Bool = false) {
        self.code = code
        self.message = message
        self.isTransient = transient
    }

    public var description: String { message }
}
