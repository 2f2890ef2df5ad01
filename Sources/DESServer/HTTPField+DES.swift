import HTTPTypes

extension HTTPField.Name {
    /// `X-DES-Container`: the key of the container holding the file.
    static let xDESContainer = checked("X-DES-Container")
    /// `X-DES-Shard-Id`: the file's shard.
    static let xDESShardID = checked("X-DES-Shard-Id")
    /// `X-DES-Name`: the DES name of a file read by its path.
    static let xDESName = checked("X-DES-Name")
    /// `X-DES-Version`: the version of a file read by its path.
    static let xDESVersion = checked("X-DES-Version")
    /// `X-DES-Reason`: why a `DELETE /files/{name}` deletes (or `?reason=`).
    static let xDESReason = checked("X-DES-Reason")
    /// `X-Content-Type-Options`.
    static let xContentTypeOptions = checked("X-Content-Type-Options")
    /// `X-Request-Id`: the request's id, as the client sent it or as the server made it.
    static let xRequestID = checked("X-Request-Id")

    /// The name of a header this module spells as a constant (a valid token, so never nil).
    private static func checked(_ name: String) -> HTTPField.Name {
        guard let field = HTTPField.Name(name) else { preconditionFailure("'\(name)' is not an HTTP field name") }
        return field
    }
}
