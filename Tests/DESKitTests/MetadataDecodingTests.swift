import DESFormat
import DESKit
import Testing

/// Catalog values as META values, by the column's reflected kind.
@Suite("SQL metadata decoding")
struct MetadataDecodingTests {
    @Test("Timestamps become ISO 8601 in UTC: offsets applied across days and the epoch, fractions kept without trailing zeros", arguments: [
        ("2025-01-01 12:30:00", "2025-01-01T12:30:00Z"),
        ("2025-01-01T12:30:00.500000+00", "2025-01-01T12:30:00.5Z"),
        ("2025-03-01 00:30:00+01:00", "2025-02-28T23:30:00Z"),
        ("2024-02-28 23:30:00-01:00", "2024-02-29T00:30:00Z"),
        ("1970-01-01 00:30:00+01:00", "1969-12-31T23:30:00Z"),
        ("1969-12-31 23:30:00 -01:00", "1970-01-01T00:30:00Z"),
        ("2025-06-30 09:15:07.1234567 +05:30", "2025-06-30T03:45:07.1234567Z"),
        ("2025-01-01 12:30", "2025-01-01T12:30:00Z"),
    ])
    func timestamps(text: String, iso: String) {
        #expect(SQLMetadataDecoding.iso8601UTC(text) == iso)
        #expect(SQLMetadataDecoding.value(.text(text), kind: .timestampWithTimeZone) == .string(iso))
    }

    @Test("Text that is not a timestamp is kept as it is", arguments: ["2025-01-01", "2025-13-01 00:00:00", "yesterday", "2025-01-01 12:30:00 UTC+"])
    func notTimestamps(text: String) {
        #expect(SQLMetadataDecoding.iso8601UTC(text) == nil)
        #expect(SQLMetadataDecoding.value(.text(text), kind: .timestamp) == .string(text))
    }

    @Test("JSON stays JSON, numbers and booleans keep their kind, bytes are base64 under key_base64")
    func kinds() {
        #expect(SQLMetadataDecoding.value(.text("{\"a\":[1,true]}"), kind: .json) == .object(["a": .array([.int(1), .bool(true)])]))
        #expect(SQLMetadataDecoding.value(.text("not json"), kind: .json) == .string("not json"))
        #expect(SQLMetadataDecoding.value(.int(1), kind: .boolean) == .bool(true))
        #expect(SQLMetadataDecoding.value(.text("f"), kind: .boolean) == .bool(false))
        #expect(SQLMetadataDecoding.value(.double(7), kind: .integer) == .int(7))
        #expect(SQLMetadataDecoding.value(.text("1.25"), kind: .decimal) == .double(1.25))
        #expect(SQLMetadataDecoding.value(.blob([0, 255]), kind: .binary) == .string("AP8="))
        #expect(SQLMetadataDecoding.key("photo", kind: .binary) == "photo_base64")
        #expect(SQLMetadataDecoding.key("photo", kind: .text) == "photo")
        #expect(SQLMetadataDecoding.value(.null, kind: .json) == .null)
    }

    @Test("Type names classify as most databases spell them", arguments: [
        ("timestamp(6) with time zone", SQLColumnKind.timestampWithTimeZone), ("TIMESTAMP(6) WITH LOCAL TIME ZONE", .timestampWithTimeZone),
        ("datetimeoffset", .timestampWithTimeZone), ("timestamp without time zone", .timestamp), ("datetime2", .timestamp),
        ("bigint(20) unsigned", .integer), ("int4", .integer), ("bigserial", .integer), ("interval", .other),
        ("character varying(64)", .text), ("enum('a','b')", .text), ("uniqueidentifier", .uuid), ("jsonb", .json),
        ("bytea", .binary), ("double precision", .float), ("numeric(10,2)", .decimal), ("point", .other),
    ])
    func classify(type: String, kind: SQLColumnKind) {
        #expect(SQLColumnKind.classify(type) == kind)
    }
}
