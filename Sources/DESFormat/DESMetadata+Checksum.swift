extension DESMetadata {
    /// The SHA-256 this META records for its body (`sha256`): 64 lowercase hex digits; nil when
    /// it records none (the original's archives). A value that is not 64 hex digits is
    /// ``DESFormatError/Code/badMetadata`` naming `entry` (and `path`, when given).
    public func recordedSHA256(entry: String, path: String? = nil) throws -> String? {
        guard let value = self["sha256"] else { return nil }
        guard let hex = value.stringValue?.lowercased(), hex.utf8.count == 64, hex.utf8.allSatisfy(isHexDigit) else {
            throw DESFormatError(.badMetadata, "\(DESNameRules.quoted(entry)): META sha256 is not a 64-digit hex string", path: path)
        }
        return hex
    }
}
