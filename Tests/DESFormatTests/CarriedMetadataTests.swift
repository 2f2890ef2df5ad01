import DESFormat
import Testing

/// Compaction copies entries into a new archive with the caller's metadata and the recorded
/// digest taken from each META record; a record of DES's own keys only skips the JSON parser.
/// Both ways must agree on every record.
@Suite("Carried META")
struct CarriedMetadataTests {
    static let hex = String(repeating: "0123456789abcdef", count: 4)

    /// What the parser makes of `record`, DES's keys split off as the carrier does.
    static func parsed(_ record: String) throws -> DESCarriedMetadata? {
        var meta = try Array(record.utf8).withUnsafeBytes { try DESMetadata.parse($0) }
        let (digest, external) = (meta["sha256"]?.stringValue?.lowercased(), meta["external_key"]?.stringValue)
        for key in DESArchiveWriter.reservedMetadataKeys { meta[key] = nil }
        var carried = try Array(#"{"size":0}"#.utf8).withUnsafeBytes { try DESCarriedMetadata(record: $0) }
        (carried.metadata, carried.sha256, carried.externalKey) = (meta, digest, external)
        return carried
    }

    static func carried(_ record: String) throws -> DESCarriedMetadata {
        try Array(record.utf8).withUnsafeBytes { try DESCarriedMetadata(record: $0) }
    }

    @Test(
        "Every record splits as the parser splits it",
        arguments: [
            #"{"size":0}"#, #"{"size":4096}"#, "{\"size\":4096,\"sha256\":\"\(hex)\"}",
            "{\"size\":18446744073709551615,\"sha256\":\"\(hex)\"}",
            // Not DES's own form: parsed.
            "{\"size\":4096,\"sha256\":\"\(hex.uppercased())\"}", #"{"size":4096,"sha256":"abc"}"#,
            "{\"content_type\":\"text/plain\",\"size\":5,\"sha256\":\"\(hex)\"}",
            "{\"size\":5,\"is_external\":true,\"external_key\":\"big/1\",\"sha256\":\"\(hex)\"}",
            "{\"sha256\":\"\(hex)\",\"size\":5}", #"{"size":5,"note":"x"}"#, #"{"size":-1}"#, #"{"size":1.5}"#,
            "{ \"size\":5}", #"{"size":05}"#,
        ])
    func agreesWithParser(_ record: String) throws {
        #expect(try Self.carried(record) == Self.parsed(record))
    }

    @Test("The fast form's fields", arguments: [("{\"size\":7,\"sha256\":\"\(hex)\"}", hex as String?), (#"{"size":7}"#, nil)])
    func fastForm(_ record: String, digest: String?) throws {
        let carried = try Self.carried(record)
        #expect(carried.metadata == DESMetadata())
        #expect(carried.sha256 == digest)
        #expect(carried.externalKey == nil)
    }

    @Test("A record that is not JSON is refused, fast form or not", arguments: [#"{"size":5"#, #"{"size":}"#, "{\"size\":5,\"sha256\":\"\(hex)\"", "not json"])
    func refused(_ record: String) {
        #expect(throws: DESFormatError.self) { try Self.carried(record) }
    }
}
