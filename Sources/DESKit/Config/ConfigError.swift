/// An error in a configuration file, pointing at the place that is wrong.
///
/// The description has the compiler-style form
/// `configs/x.yaml:12:5: sources[0].connection.prot: unknown key 'prot' (did you mean 'port'?)`.
/// Secret values (passwords, secret keys) never appear in the message: where a
/// secret's value would be quoted, the loader writes `<redacted>`.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        /// The config file cannot be read (it does not exist, or is not readable UTF-8).
        public static let unreadable = Code("unreadable")
        /// The text is not valid YAML.
        public static let syntax = Code("syntax")
        /// A key that the schema does not know.
        public static let unknownKey = Code("unknownKey")
        /// A required key is absent.
        public static let missingKey = Code("missingKey")
        /// A value has the wrong type (a word where a number belongs, a list where a mapping belongs).
        public static let wrongType = Code("wrongType")
        /// A value has the right type but is not allowed (out of range, not one of the choices).
        public static let invalidValue = Code("invalidValue")
        /// A `${VAR}` names a variable that is not set and has no default.
        public static let missingVariable = Code("missingVariable")
        /// A `${` is malformed (unterminated, or not a variable name).
        public static let badExpansion = Code("badExpansion")
        /// A key a plugin declares but its configuration never reads: a bug in the plugin, refused
        /// so that no value is accepted and then ignored.
        public static let unreadKey = Code("unreadKey")
        /// A name that must be unique is used twice.
        public static let duplicate = Code("duplicate")
        public var description: String { raw }
    }

    /// The kind of failure.
    public var code: Code
    /// The config file, as given to the loader.
    public var file: String
    /// 1-based line of the offending key or value (0 when the error concerns the whole file).
    public var line: Int
    /// 1-based column of the offending key or value (0 when the error concerns the whole file).
    public var column: Int
    /// Where in the document, like `sources[0].connection.port` (empty for the whole document).
    public var keyPath: String
    /// What is wrong, in words.
    public var message: String
    /// A near-miss the user probably meant (a key name or a choice), shown as `(did you mean '…'?)`.
    public var suggestion: String?

    /// Creates an error.
    public init(
        _ code: Code, file: String, line: Int, column: Int, keyPath: String, message: String, suggestion: String? = nil
    ) {
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
        self.suggestion = suggestion
    }

    /// `FILE:LINE:COL: KEY: message (did you mean 'x'?)`; the position and key are left out when unknown.
    public var description: String {
        var text = file
        if line > 0 { text += ":\(line):\(column)" }
        text += ": "
        if !keyPath.isEmpty { text += keyPath + ": " }
        text += message
        if let suggestion { text += " (did you mean '\(suggestion)'?)" }
        return text
    }
}

/// A key the loader accepted but DES does not honour (yet), pointing at the place it is written.
///
/// The description has the same compiler-style form as ``ConfigError``:
/// `configs/x.yaml:14:21: sources[0].connection.pool_recycle: not honoured: …`.
/// A warning never quotes a secret.
public struct ConfigWarning: Sendable, Hashable, CustomStringConvertible {
    /// The config file, as given to the loader.
    public var file: String
    /// 1-based line of the key's value (0 when unknown).
    public var line: Int
    /// 1-based column of the key's value (0 when unknown).
    public var column: Int
    /// Where in the document, like `sources[0].connection.pool_recycle`.
    public var keyPath: String
    /// What DES does instead, in words.
    public var message: String

    /// Creates a warning.
    public init(file: String, line: Int, column: Int, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    /// `FILE:LINE:COL: KEY: message`; the position and key are left out when unknown.
    public var description: String {
        var text = file
        if line > 0 { text += ":\(line):\(column)" }
        text += ": "
        if !keyPath.isEmpty { text += keyPath + ": " }
        return text + message
    }
}
